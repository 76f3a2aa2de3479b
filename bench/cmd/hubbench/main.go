// Command hubbench runs hubd and its anchor (JupyterHub 3.0.0 +
// configurable-http-proxy 5.3.0) side by side on loopback, alternating
// between them, and writes the comparison as Markdown, each table with its goal.
// scripts/bench.sh builds and calls it; it needs root (PAM test users,
// /etc/shadow) and wrk, Debian's jupyterhub and CHP from npm.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

type opts struct {
	hubd, mocksu, chp, benchDir, repo, work, out string
	quick                                        bool
	runs                                         int
	cell, twDur, wsDur                           time.Duration
	only                                         string
}

func main() {
	var o opts
	flag.StringVar(&o.hubd, "hubd", "bin/hubd", "hubd binary")
	flag.StringVar(&o.mocksu, "mocksu", "bench/tmp/mocksu", "mock single-user server binary (bench/cmd/mocksu)")
	flag.StringVar(&o.chp, "chp", "/opt/hubd-bench/chp/bin/configurable-http-proxy", "configurable-http-proxy 5.3.0")
	flag.StringVar(&o.work, "work", "bench/tmp/run", "scratch directory (emptied first)")
	flag.StringVar(&o.out, "out", "bench/tmp/compare.md", "Markdown output")
	flag.BoolVar(&o.quick, "quick", false, "a few seconds per measurement, one run (a smoke test)")
	flag.IntVar(&o.runs, "runs", 3, "runs of each measurement (the report shows medians)")
	flag.StringVar(&o.only, "only", "", "run only this benchmark: proxy, spawn, api, login")
	flag.Parse()
	o.cell, o.twDur, o.wsDur = 5*time.Second, 60*time.Second, 3*time.Second
	if o.quick {
		o.runs, o.cell, o.twDur, o.wsDur = 1, time.Second, 5*time.Second, time.Second
	}
	for _, p := range []*string{&o.hubd, &o.mocksu, &o.work, &o.out} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			fatal(err)
		}
		*p = abs
	}
	exe, _ := os.Getwd()
	o.repo = exe
	o.benchDir = filepath.Join(exe, "bench")

	// On an interrupt, stop every process we started and remove the test
	// accounts before exiting.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigc
		cancel()
		stopAll()
		cleanupHost()
		os.Exit(1)
	}()
	defer stopAll()
	if err := os.RemoveAll(o.work); err != nil {
		fatal(err)
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		fatal(err)
	}
	r := &report{}
	phases := []struct {
		name string
		f    func(context.Context, *opts, *report) error
	}{
		{"proxy", benchProxy}, {"spawn", benchSpawn}, {"api", benchStartupAPI}, {"login", benchLogin},
	}
	for _, ph := range phases {
		if o.only != "" && o.only != ph.name {
			continue
		}
		t := time.Now()
		fmt.Fprintf(os.Stderr, "hubbench: %s…\n", ph.name)
		if err := ph.f(ctx, &o, r); err != nil {
			fmt.Fprintf(os.Stderr, "hubbench: %s failed: %v\n", ph.name, err)
			r.note("**%s benchmark incomplete**: %v", ph.name, err)
		}
		stopAll()
		fmt.Fprintf(os.Stderr, "hubbench: %s done in %s\n", ph.name, time.Since(t).Round(time.Second))
	}
	if err := os.WriteFile(o.out, []byte(r.markdown(&o)), 0o644); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "hubbench:", err)
	stopAll()
	os.Exit(1)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func netListen(port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}
