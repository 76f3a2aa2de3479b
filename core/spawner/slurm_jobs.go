package spawner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// jobInfo is what squeue says about one job.
type jobInfo struct {
	ID     string
	State  string // PENDING, RUNNING, TIMEOUT, ...
	Reason string // Resources, Priority, TimeLimit, None, ...
	Nodes  string // the node list once it runs
	User   string
}

// active reports whether the job waits, runs or is still ending: a
// COMPLETING job's processes are being killed, and its final state (with
// the reason it ended) comes once they are gone.
func (j jobInfo) active() bool {
	switch j.State {
	case "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "RESIZING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT":
		return true
	}
	return false
}

// running reports whether the job's processes run on its node.
func (j jobInfo) running() bool { return j.State == "RUNNING" || j.State == "CONFIGURING" }

// jobEnds explains the final states of a job.
var jobEnds = map[string]string{
	"TIMEOUT":       "reached its time limit",
	"CANCELLED":     "was cancelled (scancel) outside the hub",
	"NODE_FAIL":     "ended because its node failed",
	"FAILED":        "failed: the job script or the server exited with an error",
	"COMPLETED":     "ended: the server exited",
	"OUT_OF_MEMORY": "ran out of memory",
	"PREEMPTED":     "was preempted by another job",
	"BOOT_FAIL":     "could not start: its node failed to boot",
	"DEADLINE":      "reached its deadline",
	"REVOKED":       "was revoked",
}

// describe says in words why a job that is not active ended.
func (j jobInfo) describe() string {
	what, ok := jobEnds[j.State]
	if !ok {
		what = "ended"
	}
	msg := fmt.Sprintf("Slurm job %s %s (state %s", j.ID, what, j.State)
	if j.Reason != "" && j.Reason != "None" {
		msg += ", reason " + j.Reason
	}
	return msg + ")"
}

// queueField separates squeue's output fields: no field holds it.
const queueField = "|"

// squeueFormat asks for the fields of jobInfo, in its order.
const squeueFormat = "%i|%T|%r|%N|%u"

// parseQueue reads squeue's output in squeueFormat.
func parseQueue(out string) map[string]jobInfo {
	jobs := map[string]jobInfo{}
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimSpace(line), queueField)
		if len(f) != 5 || !jobIDRE.MatchString(f[0]) {
			continue
		}
		jobs[f[0]] = jobInfo{ID: f[0], State: f[1], Reason: f[2], Nodes: f[3], User: f[4]}
	}
	return jobs
}

// jobTable answers "what is job N doing" for many callers with few squeue
// runs: a caller asks for one job, and every job asked about meanwhile is
// looked up by the same squeue. With hundreds of servers polled, or twenty
// spawns waiting in the queue, slurmctld sees one query per round, not one
// per job.
type jobTable struct {
	query  func(ctx context.Context, ids []string) (map[string]jobInfo, error)
	now    func() time.Time
	maxAge time.Duration // an answer this recent is reused
	gather time.Duration // how long a query waits for more jobs to ask about

	mu      sync.Mutex
	want    map[string]time.Time // job → when it was last asked about
	answers map[string]jobAnswer // job → the latest query that included it
	running chan struct{}        // closed when the query in flight ends; nil when none
}

// jobAnswer is one job's part of a query's result.
type jobAnswer struct {
	at    time.Time // when the query started
	info  jobInfo
	found bool
	err   error
}

// forgetAfter drops a job nobody asked about for this long from the
// queries.
const forgetAfter = 5 * time.Minute

func newJobTable(query func(context.Context, []string) (map[string]jobInfo, error), now func() time.Time, maxAge time.Duration) *jobTable {
	return &jobTable{query: query, now: now, maxAge: maxAge, gather: 10 * time.Millisecond,
		want: map[string]time.Time{}, answers: map[string]jobAnswer{}}
}

// get returns what squeue said about the job no longer than maxAge ago,
// running a query (for every job asked about) when there is no such
// answer. found is false for a job squeue no longer knows.
func (t *jobTable) get(ctx context.Context, id string) (jobInfo, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	asked := t.now()
	t.want[id] = asked
	for {
		if a, ok := t.answers[id]; ok && !a.at.Before(asked.Add(-t.maxAge)) {
			return a.info, a.found, a.err
		}
		if t.running == nil {
			t.running = make(chan struct{})
			go t.run(t.running)
		}
		done := t.running
		t.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			t.mu.Lock()
			return jobInfo{}, false, ctx.Err()
		}
		t.mu.Lock()
	}
}

// run is one query for every job asked about recently.
func (t *jobTable) run(done chan struct{}) {
	time.Sleep(t.gather) // callers arriving together share the query
	t.mu.Lock()
	start := t.now()
	var ids []string
	for id, at := range t.want {
		if start.Sub(at) > forgetAfter {
			delete(t.want, id)
			delete(t.answers, id)
			continue
		}
		ids = append(ids, id)
	}
	t.mu.Unlock()
	slices.Sort(ids)
	ctx, cancel := context.WithTimeout(context.Background(), slurmTimeout)
	jobs, err := t.query(ctx, ids)
	cancel()
	t.mu.Lock()
	for _, id := range ids {
		j, found := jobs[id]
		t.answers[id] = jobAnswer{at: start, info: j, found: found, err: err}
	}
	t.running = nil
	t.mu.Unlock()
	close(done)
}

// squeueJobs is the query of a jobTable: squeue for these jobs in every
// state (a finished job stays listed for slurmctld's MinJobAge, with the
// reason it ended). squeue leaves out jobs it no longer knows, and fails
// only when it knows none of a single one.
func squeueJobs(program string) func(context.Context, []string) (map[string]jobInfo, error) {
	return func(ctx context.Context, ids []string) (map[string]jobInfo, error) {
		out, err := slurmCommand(ctx, []string{"PATH=" + systemPath, "LANG=C.UTF-8"}, "",
			program, "--noheader", "--states=all", "--jobs="+strings.Join(ids, ","), "--format="+squeueFormat)
		if se, ok := errors.AsType[*slurmError](err); ok && strings.Contains(se.msg, "Invalid job id specified") {
			return map[string]jobInfo{}, nil
		}
		if err != nil {
			return nil, err
		}
		return parseQueue(out), nil
	}
}
