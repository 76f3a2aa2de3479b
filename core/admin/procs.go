package admin

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The sessions endpoint reports CPU and memory of each server's whole
// process tree. sudo and local servers run as the leader of their own
// session (setsid; sid = the server's pid), so the tree is every process
// of that session that started no earlier than the leader (a session id
// is not handed out again while any member lives). /proc/<pid>/stat is
// world-readable and holds everything needed, so the unprivileged hub can
// read it for every user's servers.

// userHZ is the unit of the tick counts in /proc/<pid>/stat. It is fixed
// at 100 in the kernel's ABI on every architecture hubd supports (and
// reading sysconf(_SC_CLK_TCK) would need cgo).
const userHZ = 100

// procMaxAge is how long one scan of /proc is reused: many hubtui windows
// polling at once cost one scan a second, not one each.
const procMaxAge = time.Second

// proc is what the sessions endpoint needs from one process.
type proc struct {
	pid   int
	start uint64 // ticks after boot
	ticks uint64 // utime+stime+cutime+cstime: children reaped by the tree stay counted
	rss   int64  // bytes
}

// procSnapshot is one scan of /proc, processes grouped by session.
type procSnapshot struct {
	at     time.Time
	uptime float64 // seconds since boot when scanned
	bySID  map[int][]proc
}

// treeStats are the totals of one server's session.
type treeStats struct {
	pids  []int
	ticks uint64
	rss   int64
	start uint64
}

// tree returns the processes of the session led by (pid, pidStart).
func (sn *procSnapshot) tree(pid int, pidStart uint64) treeStats {
	st := treeStats{start: pidStart}
	for _, p := range sn.bySID[pid] {
		if p.start < pidStart {
			continue
		}
		st.pids = append(st.pids, p.pid)
		st.ticks += p.ticks
		st.rss += p.rss
	}
	return st
}

type cpuKey struct {
	pid   int
	start uint64
}

type cpuSample struct {
	ticks uint64
	at    time.Time
}

// cpuTrack holds the two latest samples of one server's tree.
type cpuTrack struct{ prev, cur cpuSample }

// cpuForget drops the samples of servers not asked about for this long.
const cpuForget = 5 * time.Minute

// procSampler scans /proc at most once per procMaxAge and turns tick
// counts into CPU percentages between consecutive scans.
type procSampler struct {
	now func() time.Time

	mu   sync.Mutex
	snap *procSnapshot
	cpu  map[cpuKey]*cpuTrack
}

func newProcSampler(now func() time.Time) *procSampler {
	return &procSampler{now: now, cpu: map[cpuKey]*cpuTrack{}}
}

// snapshot returns a scan no older than procMaxAge. Callers that arrive
// during a scan wait for it rather than scanning again.
func (ps *procSampler) snapshot() (*procSnapshot, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	if ps.snap != nil && now.Sub(ps.snap.at) < procMaxAge {
		return ps.snap, nil
	}
	sn, err := scanProc(now)
	if err != nil {
		return nil, err
	}
	ps.snap = sn
	for k, tr := range ps.cpu {
		if now.Sub(tr.cur.at) > cpuForget {
			delete(ps.cpu, k)
		}
	}
	return sn, nil
}

// cpuPercent is the tree's CPU use between the two latest scans that saw
// it, or over its lifetime when there is no earlier scan; 100 = one core.
func (ps *procSampler) cpuPercent(sn *procSnapshot, pid int, st treeStats) float64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	key := cpuKey{pid, st.start}
	cur := cpuSample{ticks: st.ticks, at: sn.at}
	tr := ps.cpu[key]
	switch {
	case tr == nil:
		tr = &cpuTrack{cur: cur}
		ps.cpu[key] = tr
	case tr.cur.at.Before(sn.at):
		tr.prev, tr.cur = tr.cur, cur
	}
	// Without an earlier scan, or when a busy process left the tree
	// without being reaped by it (its ticks went with it), the lifetime
	// average is the honest number.
	if tr.prev.at.IsZero() || tr.cur.ticks < tr.prev.ticks {
		elapsed := sn.uptime - float64(st.start)/userHZ
		if elapsed <= 0 {
			return 0
		}
		return 100 * float64(st.ticks) / userHZ / elapsed
	}
	secs := tr.cur.at.Sub(tr.prev.at).Seconds()
	return 100 * float64(tr.cur.ticks-tr.prev.ticks) / userHZ / secs
}

func scanProc(now time.Time) (*procSnapshot, error) {
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return nil, fmt.Errorf("read /proc/uptime: %w", err)
	}
	f := strings.Fields(string(up))
	if len(f) == 0 {
		return nil, fmt.Errorf("read /proc/uptime: empty")
	}
	uptime, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return nil, fmt.Errorf("read /proc/uptime: %w", err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	page := int64(os.Getpagesize())
	sn := &procSnapshot{at: now, uptime: uptime, bySID: map[int][]proc{}}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		sid, p, ok := parseProcStat(b, page)
		if !ok {
			continue
		}
		p.pid = pid
		sn.bySID[sid] = append(sn.bySID[sid], p)
	}
	return sn, nil
}

// parseProcStat reads session, start time, CPU ticks and RSS from a
// /proc/<pid>/stat line; zombies are skipped (their time is about to move
// to the parent's cutime). The command name may contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseProcStat(b []byte, page int64) (sid int, p proc, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, proc{}, false
	}
	// f[0] is field 3 (state); field n is f[n-3].
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 || f[0] == "Z" || f[0] == "X" {
		return 0, proc{}, false
	}
	num := func(n int) uint64 {
		v, err := strconv.ParseUint(f[n-3], 10, 64)
		if err != nil {
			ok = false
		}
		return v
	}
	ok = true
	sid = int(num(6))
	p.ticks = num(14) + num(15) + num(16) + num(17)
	p.start = num(22)
	p.rss = int64(num(24)) * page
	return sid, p, ok
}
