package admin

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFreshNeverStale: whatever the interleaving, a caller's answer comes
// from a read that began after the caller asked.
func TestFreshNeverStale(t *testing.T) {
	var f fresh[int64]
	var reads atomic.Int64
	read := func(context.Context) (int64, error) { return reads.Add(1), nil }
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 50 {
				before := reads.Load()
				got, err := f.get(context.Background(), read)
				if err != nil || got <= before {
					t.Errorf("answer from read %d, but read %d had already begun when asked (err %v)", got, before, err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d reads for %d calls", reads.Load(), 64*50)
}

// TestFreshFailureStaysInItsRound: callers that arrive while a read is
// failing get a later read's answer, not the failure.
func TestFreshFailureStaysInItsRound(t *testing.T) {
	var f fresh[int]
	gate := make(chan struct{})
	first := make(chan struct{})
	var reads atomic.Int32
	go func() {
		_, _ = f.get(context.Background(), func(context.Context) (int, error) {
			reads.Add(1)
			close(first)
			<-gate
			return 0, context.DeadlineExceeded
		})
	}()
	<-first
	// Every caller from here on waits for the next read, which can only
	// start after the first ends.
	res := make(chan int, 10)
	for range 10 {
		go func() {
			v, _ := f.get(context.Background(), func(context.Context) (int, error) { return int(reads.Add(1)), nil })
			res <- v
		}()
	}
	close(gate)
	for range 10 {
		if v := <-res; v < 2 {
			t.Fatalf("got the failed first read's answer (%d)", v)
		}
	}
	// A caller that gives up waiting gets its own context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &freshCall[int]{done: make(chan struct{})}
	if _, err := c.wait(ctx); err != context.Canceled {
		t.Fatalf("wait with a cancelled context: %v", err)
	}
}
