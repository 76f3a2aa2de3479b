package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// backend is a mocksu on its own port: one per arm, so TIME_WAIT sockets
// can be counted per arm.
func backend(o *opts, name string) (*proc, int, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	p, err := start(name, filepath.Join(o.work, name+".log"), nil, o.mocksu, "--port", strconv.Itoa(port))
	if err != nil {
		return nil, 0, err
	}
	if _, err := waitHTTP(fmt.Sprintf("http://127.0.0.1:%d/", port), p, time.Now(), 10*time.Second); err != nil {
		return nil, 0, err
	}
	return p, port, nil
}

// proxyArm is one way of reaching the backend.
type proxyArm struct {
	name, base string
	backend    int
	pids       []int
}

// benchProxy is P1–P3: HTTP through real `hubd serve` (routes re-attached
// from recorded servers that all point at one backend process) and through
// CHP with the same routes added through its API, against the backend
// directly; then websockets.
func benchProxy(ctx context.Context, o *opts, r *report) error {
	var arms []proxyArm
	for _, a := range []struct {
		name   string
		routes int
		chp    bool
	}{{"direct", 0, false}, {"hubd 1k", 1000, false}, {"CHP 1k", 1000, true}, {"hubd 10k", 10000, false}, {"CHP 10k", 10000, true}} {
		bp, bport, err := backend(o, "backend-"+a.name)
		if err != nil {
			return err
		}
		arm := proxyArm{name: a.name, base: fmt.Sprintf("http://127.0.0.1:%d", bport), backend: bport, pids: []int{bp.pid()}}
		switch {
		case a.routes == 0:
		case a.chp:
			c, err := startCHP(o, filepath.Join(o.work, "chp-"+strconv.Itoa(a.routes)+".log"))
			if err != nil {
				return err
			}
			if err := c.addRoutes(a.routes, arm.base); err != nil {
				return err
			}
			arm.base, arm.pids = fmt.Sprintf("http://127.0.0.1:%d", c.port), []int{c.p.pid()}
		default:
			h, err := newHubd(o, filepath.Join(o.work, "hubd-proxy-"+strconv.Itoa(a.routes)))
			if err != nil {
				return err
			}
			if err := h.seedDB(ctx, seed{users: a.routes, servers: a.routes, livePID: bp.pid(), port: bport}); err != nil {
				return err
			}
			p, _, err := h.start(o.hubd, "hubd-"+a.name)
			if err != nil {
				return err
			}
			arm.base, arm.pids = h.base(), []int{p.pid()}
		}
		arms = append(arms, arm)
	}
	byName := map[string]proxyArm{}
	names := make([]string, len(arms))
	for i, a := range arms {
		byName[a.name], names[i] = a, a.name
	}

	// P2 first, while no earlier load has left sockets in TIME_WAIT.
	tw := r.table("P2: upstream connection reuse",
		fmt.Sprintf("`wrk -t1 -c200 -d%s` on /user/u1/small, then `ss -tan state time-wait` to or from the arm's own backend port, before and right after the run. Goal: < 1000 after the run.", o.twDur),
		[]string{"direct", "hubd 1k", "CHP 1k"}, [2]string{"hubd 1k", "CHP 1k"})
	for _, n := range []string{"hubd 1k", "CHP 1k"} {
		a := byName[n]
		// hubd's startup probes of the 1,000 recorded servers closed their
		// connections less than a minute ago: not the run's doing.
		before := timeWait(a.backend)
		res, err := runWrk(ctx, a.base+"/user/u1/small", 200, o.twDur)
		if err != nil {
			return err
		}
		// Those expire during a 60 s run, so report the count after it
		// (an upper bound for the run's own) next to the count before.
		tw.add("TIME_WAIT sockets before the run (startup probes)", n, float64(before))
		tw.add("TIME_WAIT sockets after the run", n, float64(timeWait(a.backend)))
		tw.add("requests/s during it", n, res.rps)
	}

	small := r.table("P1: proxy throughput and latency, 3-byte responses",
		fmt.Sprintf("`wrk -t1 -cC -d%s --latency` on /user/u1/small. hubd: the real `hubd serve` with 1,000 or 10,000 users whose recorded servers all point at one backend (re-attached at startup, so the route table holds 1k/10k routes); CHP 5.3.0 with the same routes added through its REST API; direct: the backend itself. Each arm has its own backend process. Goals: hubd ≥ 2× CHP rps and p99 ≤ CHP's; hubd ≥ 0.4× direct at c=1 and c=50; 10k within 5 %% of 1k.", o.cell),
		names, [2]string{"hubd 1k", "CHP 1k"}, [2]string{"hubd 10k", "CHP 10k"}, [2]string{"hubd 1k", "direct"}, [2]string{"hubd 10k", "hubd 1k"})
	large := r.table("P3: bulk, 1 MiB responses",
		fmt.Sprintf("`wrk -t1 -cC -d%s --latency` on /user/u1/large (1 MiB body), same arms. Goal: hubd ≥ 2× CHP in MB/s.", o.cell),
		names, [2]string{"hubd 1k", "CHP 1k"}, [2]string{"hubd 10k", "CHP 10k"}, [2]string{"hubd 1k", "direct"})
	errs := 0
	for run := 0; run < o.runs; run++ {
		for _, path := range []string{"small", "large"} {
			t := small
			if path == "large" {
				t = large
			}
			for _, c := range []int{1, 10, 50, 200} {
				for _, a := range arms {
					res, err := runWrk(ctx, a.base+"/user/u1/"+path, c, o.cell)
					if err != nil {
						return err
					}
					errs += res.errors
					t.add(fmt.Sprintf("c=%d requests/s", c), a.name, res.rps)
					t.add(fmt.Sprintf("c=%d p50 ms", c), a.name, res.p50ms)
					t.add(fmt.Sprintf("c=%d p99 ms", c), a.name, res.p99ms)
					if path == "large" {
						t.add(fmt.Sprintf("c=%d MiB/s", c), a.name, res.mbps)
					}
				}
			}
		}
	}
	if errs > 0 {
		r.note("wrk counted %d socket errors or non-2xx responses over all proxy cells", errs)
	}

	wsArms := []string{"direct", "hubd 1k", "CHP 1k"}
	ws := r.table("P3: websockets",
		fmt.Sprintf("RFC 6455 echo at /user/u1/ws (coder/websocket client and server). Round trip: one connection, 32-byte messages back to back for %s. Throughput: 64 KiB binary messages echoed, at most 8 in flight per connection, for %s, MiB/s received. Goals: hubd ≥ 2.5× CHP MiB/s; hubd adds ≤ 0.1 ms p50 and ≤ 1 ms p99 to the round trip.", o.wsDur, o.wsDur),
		wsArms, [2]string{"hubd 1k", "CHP 1k"}, [2]string{"hubd 1k", "direct"})
	for run := 0; run < o.runs; run++ {
		for _, n := range wsArms {
			url := "ws" + byName[n].base[len("http"):] + "/user/u1/ws"
			p50, p99, err := wsRTT(ctx, url, o.wsDur)
			if err != nil {
				return err
			}
			ws.add("round trip p50 ms", n, p50)
			ws.add("round trip p99 ms", n, p99)
			for _, conns := range []int{1, 4} {
				mib, err := wsThroughput(ctx, url, conns, o.wsDur)
				if err != nil {
					return err
				}
				ws.add(fmt.Sprintf("64 KiB echo, %d conn MiB/s", conns), n, mib)
			}
		}
	}
	rss := r.table("Proxy footprint after the runs", "VmRSS of each process (MB) after all proxy and websocket runs.",
		names, [2]string{"hubd 1k", "CHP 1k"}, [2]string{"hubd 10k", "CHP 10k"})
	for _, a := range arms {
		var kb float64
		for _, pid := range a.pids {
			kb += rssKB(pid)
		}
		rss.add("RSS MB (proxy; backend for direct)", a.name, kb/1024)
	}
	return nil
}
