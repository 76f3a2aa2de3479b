package hub

import (
	"context"
	"sync"
)

// Event is one step of a spawn, in the shape of JupyterHub's progress
// stream (`GET /hub/api/users/<u>/server/progress`).
type Event struct {
	Progress int    `json:"progress"`
	Message  string `json:"message"`
	Ready    bool   `json:"ready,omitempty"`
	Failed   bool   `json:"failed,omitempty"`
	URL      string `json:"url,omitempty"`
}

// Op is an in-flight start or stop of one server. Readers follow its
// events; the last event of a start is either Ready or Failed.
type Op struct {
	Kind string // "start" or "stop"

	mu       sync.Mutex
	events   []Event
	done     bool
	err      error
	changed  chan struct{}
	cancel   context.CancelFunc
	finished chan struct{}
}

func newOp(kind string, cancel context.CancelFunc) *Op {
	return &Op{Kind: kind, changed: make(chan struct{}), cancel: cancel, finished: make(chan struct{})}
}

func (o *Op) add(e Event) {
	o.mu.Lock()
	o.events = append(o.events, e)
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
}

func (o *Op) finish(err error) {
	o.mu.Lock()
	o.done, o.err = true, err
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
	close(o.finished)
}

// Since returns the events from index i on, whether the op has finished,
// and a channel closed at the next change.
func (o *Op) Since(i int) ([]Event, bool, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Event
	if i < len(o.events) {
		out = append(out, o.events[i:]...)
	}
	return out, o.done, o.changed
}

// Wait blocks until the op finishes or ctx ends, and returns its error.
func (o *Op) Wait(ctx context.Context) error {
	select {
	case <-o.finished:
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done reports whether the op has finished.
func (o *Op) Done() bool {
	select {
	case <-o.finished:
		return true
	default:
		return false
	}
}
