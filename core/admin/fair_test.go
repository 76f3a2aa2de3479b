package admin

import (
	"context"
	"testing"
	"time"
)

// A peer with many requests queued gets one turn per round, like a peer
// with one: the lone request is served second, not last.
func TestFairSlotsTakeTurnsByPeer(t *testing.T) {
	f := newFairSlots(1)
	ctx := context.Background()
	if !f.acquire(ctx, 1) {
		t.Fatal("first acquire")
	}
	served := make(chan int, 20)
	queue := func(uid int) {
		go func() {
			if f.acquire(ctx, uid) {
				served <- uid
			}
		}()
	}
	queued := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			f.mu.Lock()
			got := 0
			for _, q := range f.waiting {
				got += len(q)
			}
			f.mu.Unlock()
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d waiters, want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := range 10 {
		queue(1000)
		queued(i + 1)
	}
	queue(0)
	queued(11)
	var order []int
	for range 11 {
		f.release()
		order = append(order, <-served)
	}
	if order[1] != 0 {
		t.Fatalf("service order %v: the lone peer waited behind the flood", order)
	}

	// A waiter that gives up leaves the queue and takes no slot.
	gone, cancel := context.WithCancel(ctx)
	done := make(chan bool)
	go func() { done <- f.acquire(gone, 7) }()
	queued(1)
	cancel()
	if <-done {
		t.Fatal("a cancelled waiter got a slot")
	}
	f.release()
	if !f.acquire(ctx, 8) {
		t.Fatal("the slot was lost with the cancelled waiter")
	}
}
