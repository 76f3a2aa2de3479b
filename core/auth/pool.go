package auth

import (
	"context"
	"sync"
	"sync/atomic"
)

// pool bounds concurrent PAM transactions. A PAM call blocks an OS thread
// for its whole duration (pam_faildelay, a slow LDAP server), so an
// unbounded number of them would let a flood of logins eat the machine.
// Each client address may hold only a small share of the workers: its
// extra attempts queue behind its own earlier ones, not in front of other
// people's logins.
type pool struct {
	workers chan struct{}
	perAddr int
	waiting atomic.Int64 // attempts queued for a slot or a worker

	mu    sync.Mutex
	addrs map[string]*addrSlots
}

// addrSlots exists only while an address has attempts running or queued,
// so the map is bounded by in-flight requests, not by history.
type addrSlots struct {
	slots chan struct{}
	refs  int
}

// perAddrShare is how many workers one address may hold: half the pool,
// at most 2, at least 1. With pam_workers = 1 there is nothing to share;
// the single worker is taken in turn.
func perAddrShare(workers int) int {
	return max(1, min(2, workers/2))
}

func newPool(workers int) *pool {
	return &pool{
		workers: make(chan struct{}, workers),
		perAddr: perAddrShare(workers),
		addrs:   make(map[string]*addrSlots),
	}
}

// acquire waits for one of addr's slots, then for a worker, giving up when
// ctx ends. The returned release must be called exactly once.
func (p *pool) acquire(ctx context.Context, addr string) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	a := p.addrs[addr]
	if a == nil {
		a = &addrSlots{slots: make(chan struct{}, p.perAddr)}
		p.addrs[addr] = a
	}
	a.refs++
	p.mu.Unlock()

	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	select {
	case a.slots <- struct{}{}:
	case <-ctx.Done():
		p.unref(addr, a)
		return nil, ctx.Err()
	}
	select {
	case p.workers <- struct{}{}:
	case <-ctx.Done():
		<-a.slots
		p.unref(addr, a)
		return nil, ctx.Err()
	}
	return func() {
		<-p.workers
		<-a.slots
		p.unref(addr, a)
	}, nil
}

func (p *pool) unref(addr string, a *addrSlots) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a.refs--; a.refs == 0 {
		delete(p.addrs, addr)
	}
}

// stats is the pool at this moment: its size, the workers in use and the
// attempts waiting.
func (p *pool) stats() (workers, busy, waiting int) {
	return cap(p.workers), len(p.workers), int(p.waiting.Load())
}
