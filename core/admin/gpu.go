package admin

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GPU memory per server comes from nvidia-smi's list of compute
// processes, attributed by pid to the servers' process trees. A host
// without nvidia-smi simply has no GPU column; a failing nvidia-smi is a
// warning, never an error of the sessions call.

const (
	// gpuMaxAge is how long one nvidia-smi answer is reused: it takes
	// tens to hundreds of milliseconds and wakes the driver.
	gpuMaxAge = 5 * time.Second
	// gpuTimeout bounds a hung driver.
	gpuTimeout = 5 * time.Second
)

type gpuProbe struct {
	command string
	now     func() time.Time

	mu    sync.Mutex
	at    time.Time
	byPID map[int]int64
	found bool
	warn  string
}

func newGPUProbe(command string, now func() time.Time) *gpuProbe {
	return &gpuProbe{command: command, now: now}
}

// usage returns GPU memory in bytes by pid, whether nvidia-smi exists,
// and a warning when it failed.
func (g *gpuProbe) usage(ctx context.Context) (map[int]int64, bool, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if !g.at.IsZero() && now.Sub(g.at) < gpuMaxAge {
		return g.byPID, g.found, g.warn
	}
	g.at = now
	g.byPID, g.found, g.warn = nil, false, ""
	path, err := exec.LookPath(g.command)
	if err != nil {
		return nil, false, ""
	}
	g.found = true
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gpuTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		g.warn = fmt.Sprintf("nvidia-smi failed, so GPU memory is not shown: %v", err)
		return nil, true, g.warn
	}
	g.byPID = parseComputeApps(string(out))
	return g.byPID, true, ""
}

// parseComputeApps reads "pid, used_memory" lines (MiB). Lines it cannot
// read, such as "[N/A]" memory under MIG or without permission, are
// skipped; a process on several GPUs appears once per GPU and is summed.
func parseComputeApps(out string) map[int]int64 {
	m := map[int]int64{}
	for line := range strings.Lines(out) {
		pidStr, memStr, ok := strings.Cut(line, ",")
		if !ok {
			continue
		}
		pid, err1 := strconv.Atoi(strings.TrimSpace(pidStr))
		mib, err2 := strconv.ParseInt(strings.TrimSpace(memStr), 10, 64)
		if err1 != nil || err2 != nil || pid <= 0 || mib < 0 {
			continue
		}
		m[pid] += mib << 20
	}
	return m
}
