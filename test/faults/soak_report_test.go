package faults

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// writeSoakReport writes <prefix>.md (machine, load, samples, verdict) and
// <prefix>.png (RSS, open files and goroutines over time).
func writeSoakReport(prefix, version string, duration, interval time.Duration, churners int, samples []soakSample, v soakVerdict, l *soakLoad) error {
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		return err
	}
	if err := plotSoak(prefix+".png", samples); err != nil {
		return err
	}
	var b strings.Builder
	yes := map[bool]string{true: "yes", false: "**no**"}
	fmt.Fprintf(&b, "# hubd soak, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "| what | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| machine | %s |\n", machine())
	fmt.Fprintf(&b, "| go | %s |\n", runtime.Version())
	fmt.Fprintf(&b, "| hubd | %s |\n", version)
	fmt.Fprintf(&b, "| duration | %s, sampled every %s |\n", duration, interval)
	fmt.Fprintf(&b, "| load | proxied GETs at ~200/s from 8 clients to 10 mock servers (bench/cmd/mocksu, local spawner); %d websockets churning (open, echo 2–9 messages over a few seconds, close); every 2 s one server stopped through the API or killed with SIGKILL behind the hub's back, 5+ websockets aimed at it, then started again |\n", churners)
	fmt.Fprintf(&b, "| reproduce | `make soak` (`SOAK_MINUTES=N` to shorten) |\n\n")
	fmt.Fprintf(&b, "## Totals\n\n| what | count |\n|---|---|\n")
	fmt.Fprintf(&b, "| proxied requests | %d (%d answered 200; the rest went to the server being stopped or killed) |\n", l.requests.Load(), l.okRequests.Load())
	fmt.Fprintf(&b, "| websocket sessions | %d |\n", l.websockets.Load())
	fmt.Fprintf(&b, "| upgrades aimed at gone servers, refused with a prompt 503 | %d |\n", l.refusedWS.Load())
	fmt.Fprintf(&b, "| servers stopped / killed | %d / %d |\n", l.stopped.Load(), l.killed.Load())
	fmt.Fprintf(&b, "| failures (unexpected answers, hangs) | %d |\n\n", len(l.failures))
	fmt.Fprintf(&b, "## Samples\n\n![RSS, open files and goroutines](%s)\n\n", filepath.Base(prefix)+".png")
	fmt.Fprintf(&b, "| minute | RSS MiB | open files | goroutines | requests | websockets |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| baseline (quiet) | %.1f | %d | %d | | |\n", mib(v.base.rss), v.base.fds, v.base.goroutines)
	for _, s := range samples {
		fmt.Fprintf(&b, "| %.1f | %.1f | %d | %d | %d | %d |\n", s.at.Minutes(), mib(s.rss), s.fds, s.goroutines, s.requests, s.websockets)
	}
	fmt.Fprintf(&b, "| end (quiet) | %.1f | %d | %d | | |\n\n", mib(v.end.rss), v.end.fds, v.end.goroutines)
	fmt.Fprintf(&b, "## Goals (P11)\n\n| goal | result | met |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| RSS drift < 10 %% after warm-up | %.1f → %.1f MiB from minute %.1f to the end (%+.1f %%) | %s |\n",
		mib(v.afterWarmup.rss), mib(v.last.rss), v.afterWarmup.at.Minutes(), v.rssGrowth(), yes[v.rssFlat()])
	fmt.Fprintf(&b, "| open files back to baseline (±5 %%) | %d → %d | %s |\n", v.base.fds, v.end.fds, yes[v.fdsBack()])
	fmt.Fprintf(&b, "| goroutines back to baseline | %d → %d | %s |\n", v.base.goroutines, v.end.goroutines, yes[v.goroutinesBack()])
	fmt.Fprintf(&b, "| no connections pile up towards the error handler | open files under load stay between %d and %d | %s |\n",
		minFds(samples), maxFds(samples), yes[v.fdsBack()])
	fmt.Fprintf(&b, "| every upgrade to a gone server refused promptly | %d refused, %d failures | %s |\n",
		l.refusedWS.Load(), len(l.failures), yes[len(l.failures) == 0])
	for _, f := range l.failures {
		fmt.Fprintf(&b, "\n- failure: %s", f)
	}
	return os.WriteFile(prefix+".md", []byte(b.String()), 0o644)
}

func minFds(s []soakSample) int {
	m := s[0].fds
	for _, x := range s {
		m = min(m, x.fds)
	}
	return m
}

func maxFds(s []soakSample) int {
	m := s[0].fds
	for _, x := range s {
		m = max(m, x.fds)
	}
	return m
}

func machine() string {
	out, _ := exec.Command("sh", "-c", `echo "$(nproc) CPUs, $(free -h | awk '/Mem:/{print $2}') RAM, Linux $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"`).Output()
	return strings.TrimSpace(string(out))
}

func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// plotSoak draws three stacked line charts (RSS in MiB, open files,
// goroutines) against minutes, with the standard image packages and
// x/image's fixed font.
func plotSoak(path string, samples []soakSample) error {
	const w, panelH, margin = 900, 220, 60
	img := image.NewRGBA(image.Rect(0, 0, w, 3*panelH+20))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	series := []struct {
		title string
		y     func(soakSample) float64
		c     color.RGBA
	}{
		{"RSS (MiB)", func(s soakSample) float64 { return mib(s.rss) }, color.RGBA{200, 40, 40, 255}},
		{"open files", func(s soakSample) float64 { return float64(s.fds) }, color.RGBA{40, 90, 200, 255}},
		{"goroutines", func(s soakSample) float64 { return float64(s.goroutines) }, color.RGBA{30, 140, 60, 255}},
	}
	xmax := samples[len(samples)-1].at.Minutes()
	if xmax <= 0 {
		xmax = 1
	}
	for i, s := range series {
		top := i*panelH + 20
		plot := image.Rect(margin, top+10, w-20, top+panelH-30)
		lo, hi := s.y(samples[0]), s.y(samples[0])
		for _, x := range samples {
			lo, hi = min(lo, s.y(x)), max(hi, s.y(x))
		}
		lo, hi = 0, hi*1.1+1 // from zero: drift shows as what it is
		label(img, margin, top+5, s.title, color.Black)
		label(img, 4, plot.Min.Y+10, fmt.Sprintf("%.0f", hi), color.Black)
		label(img, 4, plot.Max.Y, fmt.Sprintf("%.0f", lo), color.Black)
		label(img, plot.Min.X, plot.Max.Y+15, "0 min", color.Black)
		label(img, plot.Max.X-60, plot.Max.Y+15, fmt.Sprintf("%.1f min", xmax), color.Black)
		frame(img, plot, color.RGBA{160, 160, 160, 255})
		px := func(x soakSample) image.Point {
			fx := float64(plot.Min.X) + x.at.Minutes()/xmax*float64(plot.Dx())
			fy := float64(plot.Max.Y) - (s.y(x)-lo)/(hi-lo)*float64(plot.Dy())
			return image.Pt(int(fx), int(fy))
		}
		for j := 1; j < len(samples); j++ {
			line(img, px(samples[j-1]), px(samples[j]), s.c)
		}
		for _, x := range samples {
			p := px(x)
			draw.Draw(img, image.Rect(p.X-2, p.Y-2, p.X+3, p.Y+3), image.NewUniform(s.c), image.Point{}, draw.Src)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func label(img draw.Image, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func frame(img draw.Image, r image.Rectangle, c color.Color) {
	line(img, r.Min, image.Pt(r.Max.X, r.Min.Y), c)
	line(img, image.Pt(r.Max.X, r.Min.Y), r.Max, c)
	line(img, r.Max, image.Pt(r.Min.X, r.Max.Y), c)
	line(img, image.Pt(r.Min.X, r.Max.Y), r.Min, c)
}

// line draws from a to b (Bresenham).
func line(img draw.Image, a, b image.Point, c color.Color) {
	dx, dy := abs(b.X-a.X), -abs(b.Y-a.Y)
	sx, sy := 1, 1
	if a.X > b.X {
		sx = -1
	}
	if a.Y > b.Y {
		sy = -1
	}
	e := dx + dy
	for {
		img.Set(a.X, a.Y, c)
		if a == b {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			a.X += sx
		}
		if e2 <= dx {
			e += dx
			a.Y += sy
		}
	}
}
