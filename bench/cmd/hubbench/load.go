package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// wrkResult is what the report takes from one wrk run.
type wrkResult struct {
	rps, p50ms, p99ms, mbps float64
	errors                  int
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkXfer    = regexp.MustCompile(`Transfer/sec:\s+([0-9.]+)([KMG]?B)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkErrors  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	unitScale  = map[string]float64{"us": 1e-3, "ms": 1, "s": 1e3}
	bytesScale = map[string]float64{"B": 1.0 / (1 << 20), "KB": 1.0 / 1024, "MB": 1, "GB": 1024}
)

// runWrk runs wrk with one thread (the machine has two cores and the proxy
// and backend need them) for d at concurrency c.
func runWrk(ctx context.Context, url string, c int, d time.Duration) (wrkResult, error) {
	secs := max(int(d.Seconds()), 1)
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", "-t1", fmt.Sprintf("-c%d", c), fmt.Sprintf("-d%ds", secs), "--timeout", "10s", "--latency", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w: %s", url, err, out)
	}
	var r wrkResult
	if m := wrkRPS.FindSubmatch(out); m != nil {
		r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	} else {
		return r, fmt.Errorf("wrk %s: no Requests/sec in %s", url, out)
	}
	if m := wrkXfer.FindSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		r.mbps = v * bytesScale[string(m[2])]
	}
	for _, m := range wrkPct.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		v *= unitScale[string(m[3])]
		if string(m[1]) == "50" {
			r.p50ms = v
		} else {
			r.p99ms = v
		}
	}
	if m := wrkErrors.FindSubmatch(out); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.Atoi(string(g))
			r.errors += n
		}
	}
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		r.errors += n
	}
	return r, nil
}

// percentile of sorted durations, in ms.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(float64(len(sorted))*p), len(sorted)-1)
	return float64(sorted[i]) / 1e6
}

// latencies runs f sequentially until n calls or d, whichever first, and
// returns p50 and p99 in ms.
func latencies(n int, d time.Duration, f func() error) (p50, p99 float64, err error) {
	var ds []time.Duration
	end := time.Now().Add(d)
	for i := 0; i < n && (i < 5 || time.Now().Before(end)); i++ {
		t := time.Now()
		if err := f(); err != nil {
			return 0, 0, err
		}
		ds = append(ds, time.Since(t))
	}
	slices.Sort(ds)
	return percentile(ds, 0.5), percentile(ds, 0.99), nil
}

// apiClient calls a JupyterHub-style REST API with a token.
type apiClient struct {
	base, token string
	c           *http.Client
}

func newAPI(base, token string) *apiClient {
	return &apiClient{base: base, token: token, c: &http.Client{Timeout: 60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// do sends a request and returns the status and body; want lists the
// acceptable statuses.
func (a *apiClient) do(method, path string, body []byte, want ...int) (int, []byte, error) {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Authorization", "token "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if len(want) > 0 && !slices.Contains(want, resp.StatusCode) {
		return resp.StatusCode, b, fmt.Errorf("%s %s: %s: %.300s", method, path, resp.Status, b)
	}
	return resp.StatusCode, b, nil
}

// wsRTT measures the round trip of 32-byte messages over one websocket.
func wsRTT(ctx context.Context, url string, d time.Duration) (p50, p99 float64, err error) {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("dial %s: %w", url, err)
	}
	defer c.CloseNow()
	msg := bytes.Repeat([]byte("p"), 32)
	return latencies(1_000_000, d, func() error {
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			return fmt.Errorf("ws write: %w", err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			return fmt.Errorf("ws read: %w", err)
		}
		return nil
	})
}

// wsThroughput sends 64 KiB messages on conns websockets for d, each with
// a writer and a reader, and returns the echoed MiB/s summed over them.
func wsThroughput(ctx context.Context, url string, conns int, d time.Duration) (float64, error) {
	const size = 64 << 10
	msg := bytes.Repeat([]byte("w"), size)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		first error
	)
	start := time.Now()
	for range conns {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			return 0, fmt.Errorf("dial %s: %w", url, err)
		}
		c.SetReadLimit(1 << 20)
		// Both directions stop at the deadline; coder/websocket closes
		// the connection when a Read or Write is cancelled.
		wctx, cancel := context.WithDeadline(ctx, start.Add(d))
		// At most 8 messages in flight per connection, so the echo is
		// measured rather than buffering.
		credits := make(chan struct{}, 8)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				select {
				case credits <- struct{}{}:
				case <-wctx.Done():
					return
				}
				if err := c.Write(wctx, websocket.MessageBinary, msg); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			defer cancel()
			defer c.CloseNow()
			var n int64
			for {
				_, b, err := c.Read(wctx)
				if err != nil {
					if wctx.Err() == nil {
						mu.Lock()
						first = fmt.Errorf("ws read: %w", err)
						mu.Unlock()
					}
					break
				}
				n += int64(len(b))
				<-credits
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return float64(total) / (1 << 20) / time.Since(start).Seconds(), nil
}

// timeWait counts TIME_WAIT sockets to or from port.
func timeWait(port int) int {
	out, err := exec.Command("ss", "-Htan", "state", "time-wait", fmt.Sprintf("( dport = :%d or sport = :%d )", port, port)).Output()
	if err != nil {
		return -1
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			n++
		}
	}
	return n
}
