package admin

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestCPUPercent feeds the sampler made-up scans.
func TestCPUPercent(t *testing.T) {
	ps := newProcSampler(time.Now)
	t0 := time.Unix(1000, 0)
	// Started 50 s after boot, scanned at uptime 150 s with 50 s of CPU:
	// 50% over its lifetime.
	sn := &procSnapshot{at: t0, uptime: 150}
	st := treeStats{pids: []int{7}, ticks: 50 * userHZ, start: 50 * userHZ}
	if got := ps.cpuPercent(sn, 7, st); math.Abs(got-50) > 1e-9 {
		t.Fatalf("first sample: %.2f%%, want the lifetime 50%%", got)
	}
	// A second caller of the same scan gets the same answer.
	if got := ps.cpuPercent(sn, 7, st); math.Abs(got-50) > 1e-9 {
		t.Fatalf("same scan again: %.2f%%", got)
	}
	// Two seconds later, 3 s of CPU more: 150%.
	sn2 := &procSnapshot{at: t0.Add(2 * time.Second), uptime: 152}
	st.ticks += 3 * userHZ
	if got := ps.cpuPercent(sn2, 7, st); math.Abs(got-150) > 1e-9 {
		t.Fatalf("between scans: %.2f%%, want 150%%", got)
	}
	// A busy child left the tree: its ticks went with it, so fall back
	// to the lifetime average rather than report something negative.
	sn3 := &procSnapshot{at: t0.Add(3 * time.Second), uptime: 153}
	st.ticks -= 2 * userHZ
	if got := ps.cpuPercent(sn3, 7, st); got < 0 || got > 100 {
		t.Fatalf("after ticks went down: %.2f%%", got)
	}
}

func TestParseProcStat(t *testing.T) {
	line := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 30 20 5 5 20 0 1 0 12345 1000000 250 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0"
	sid, p, ok := parseProcStat([]byte(line), 4096)
	if !ok || sid != 4242 || p.ticks != 60 || p.start != 12345 || p.rss != 250*4096 {
		t.Fatalf("sid %d, %+v, ok %v", sid, p, ok)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", strings.Replace(line, ") S", ") Z", 1), strings.Replace(line, "12345", "x", 1)} {
		if _, _, ok := parseProcStat([]byte(bad), 4096); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestParseComputeApps(t *testing.T) {
	got := parseComputeApps("123, 100\n456, [N/A]\n123, 50\ngarbage\n789,1\n")
	want := map[int]int64{123: 150 << 20, 789: 1 << 20}
	if len(got) != len(want) || got[123] != want[123] || got[789] != want[789] {
		t.Fatalf("got %v", got)
	}
}
