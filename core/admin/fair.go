package admin

import (
	"context"
	"sync"
)

// fairSlots bounds how many requests run at once and hands free slots to
// waiting peers in turn (round robin by uid), so a peer with a hundred
// requests queued gets one turn per round like a peer with one: a member
// flooding the socket cannot make root wait behind the flood.
type fairSlots struct {
	mu      sync.Mutex
	free    int
	waiting map[int][]chan struct{} // by peer uid, oldest first
	turns   []int                   // peers with waiters, in the order they get a slot
}

func newFairSlots(n int) *fairSlots {
	return &fairSlots{free: n, waiting: map[int][]chan struct{}{}}
}

// acquire waits for a slot for peer uid, or for ctx to end (false).
func (f *fairSlots) acquire(ctx context.Context, uid int) bool {
	f.mu.Lock()
	if f.free > 0 && len(f.turns) == 0 {
		f.free--
		f.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	if len(f.waiting[uid]) == 0 {
		f.turns = append(f.turns, uid)
	}
	f.waiting[uid] = append(f.waiting[uid], ch)
	f.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		select {
		case <-ch:
			// Handed a slot as we gave up: pass it on.
			f.releaseLocked()
		default:
			f.forget(uid, ch)
		}
		return false
	}
}

// queued counts the requests waiting for a slot.
func (f *fairSlots) queued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, q := range f.waiting {
		n += len(q)
	}
	return n
}

// release frees a slot: the next peer in turn gets it.
func (f *fairSlots) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releaseLocked()
}

func (f *fairSlots) releaseLocked() {
	if len(f.turns) == 0 {
		f.free++
		return
	}
	uid := f.turns[0]
	f.turns = f.turns[1:]
	q := f.waiting[uid]
	next := q[0]
	if len(q) > 1 {
		f.waiting[uid] = q[1:]
		f.turns = append(f.turns, uid) // to the back of the round
	} else {
		delete(f.waiting, uid)
	}
	close(next)
}

// forget drops a waiter that gave up.
func (f *fairSlots) forget(uid int, ch chan struct{}) {
	q := f.waiting[uid]
	for i, c := range q {
		if c == ch {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) > 0 {
		f.waiting[uid] = q
		return
	}
	delete(f.waiting, uid)
	for i, u := range f.turns {
		if u == uid {
			f.turns = append(f.turns[:i:i], f.turns[i+1:]...)
			break
		}
	}
}
