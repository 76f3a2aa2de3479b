package admin

import (
	"context"
	"sync"
	"time"
)

// fresh shares database reads between requests that arrive together,
// without ever answering from a read older than the request: a caller
// that finds a read in flight (which may have begun before it asked)
// waits for the next one, shared by everyone who arrived meanwhile. A
// hundred hubtui windows polling at once then cost two reads per round
// instead of a hundred queued on the database pool that the web side
// uses too, and an admin who stops a server and refreshes never sees it
// still there.
type fresh[T any] struct {
	mu      sync.Mutex
	running *freshCall[T]
	next    *freshCall[T] // waits for running to end, then runs
}

type freshCall[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// freshTimeout bounds a shared read: it runs detached from the request
// that happens to start it, so one caller hanging up does not fail the
// others.
const freshTimeout = 30 * time.Second

func (f *fresh[T]) get(ctx context.Context, read func(context.Context) (T, error)) (T, error) {
	f.mu.Lock()
	if c := f.next; c != nil {
		f.mu.Unlock()
		return c.wait(ctx)
	}
	c := &freshCall[T]{done: make(chan struct{})}
	prev := f.running
	if prev == nil {
		f.running = c
	} else {
		f.next = c
	}
	f.mu.Unlock()
	if prev != nil {
		<-prev.done
		f.mu.Lock()
		f.running, f.next = c, nil
		f.mu.Unlock()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), freshTimeout)
	c.v, c.err = read(rctx)
	cancel()
	f.mu.Lock()
	f.running = nil
	f.mu.Unlock()
	close(c.done)
	return c.v, c.err
}

func (c *freshCall[T]) wait(ctx context.Context) (T, error) {
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
