package hub

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
)

// gpuHub has a pool of two GPUs, a "gpu" profile taking one and a
// "small" one taking none.
func gpuHub(t *testing.T, startTimeout time.Duration) *fixture {
	return newFixture(t, config.Culler{}, func(o *Options) {
		o.Config.Spawner.Profiles = []config.Profile{{Name: "small", Default: true}, {Name: "gpu", GPUs: 1}, {Name: "two", GPUs: 2}}
		o.Config.Spawner.StartTimeout = config.Duration(startTimeout)
		o.GPUPool = []store.GPU{{Index: 0, Device: "/dev/hubtest-gpu0"}, {Index: 1, Device: "/dev/hubtest-gpu1"}}
	})
}

func (f *fixture) startWith(t *testing.T, name, profile string) (store.User, *Op) {
	t.Helper()
	u, err := f.store.EnsureUser(context.Background(), name, false)
	if err != nil {
		t.Fatal(err)
	}
	op, err := f.hub.StartWith(context.Background(), u, "", `{"profile": "`+profile+`"}`)
	if err != nil {
		t.Fatal(err)
	}
	return u, op
}

func TestGPUsHandedOutExclusively(t *testing.T) {
	f := gpuHub(t, 20*time.Second)
	ctx := context.Background()
	alice, op := f.startWith(t, "alice", "gpu")
	if err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_, op = f.startWith(t, "bob", "gpu")
	if err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_, op = f.startWith(t, "dave", "small")
	if err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	f.sp.mu.Lock()
	a, b, d := f.sp.reqs["alice"], f.sp.reqs["bob"], f.sp.reqs["dave"]
	f.sp.mu.Unlock()
	if a.Env["CUDA_VISIBLE_DEVICES"] != "0" || len(a.Resources.GPUs) != 1 || a.Resources.GPUs[0].Device != "/dev/hubtest-gpu0" || !a.Resources.Restrict {
		t.Errorf("alice's start: CUDA_VISIBLE_DEVICES=%q resources %+v", a.Env["CUDA_VISIBLE_DEVICES"], a.Resources)
	}
	if b.Env["CUDA_VISIBLE_DEVICES"] != "1" || b.Resources.GPUs[0].Index != 1 {
		t.Errorf("bob's start: CUDA_VISIBLE_DEVICES=%q resources %+v", b.Env["CUDA_VISIBLE_DEVICES"], b.Resources)
	}
	if v, ok := d.Env["CUDA_VISIBLE_DEVICES"]; !ok || v != "" || len(d.Resources.GPUs) != 0 || !d.Resources.Restrict {
		t.Errorf("a server without GPUs must see none: CUDA_VISIBLE_DEVICES=%q (set %v), resources %+v", v, ok, d.Resources)
	}
	if st := StateOf(f.server(t, store.Server{UserID: alice.ID})); len(st.GPUs) != 1 || st.GPUs[0] != 0 {
		t.Errorf("alice's recorded GPUs %v", st.GPUs)
	}

	// carol waits and sees who holds the GPUs; alice stopping frees one.
	_, op = f.startWith(t, "carol", "gpu")
	waitEvent(t, op, "GPU 0: alice", "GPU 1: bob")
	if err := f.hub.Stop(ctx, alice, "", "done", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(ctx); err != nil {
		t.Fatalf("carol after alice stopped: %v", err)
	}
	f.sp.mu.Lock()
	c := f.sp.reqs["carol"]
	f.sp.mu.Unlock()
	if c.Env["CUDA_VISIBLE_DEVICES"] != "0" {
		t.Errorf("carol got %q, want alice's GPU 0", c.Env["CUDA_VISIBLE_DEVICES"])
	}

	// A server that dies behind the hub's back frees its GPU when noticed.
	bobSrv := f.server(t, store.Server{UserID: f.user(t, "bob").ID})
	f.sp.Stop(ctx, "bob", StateOf(bobSrv), time.Second)
	f.hub.Poll(ctx)
	holders, err := f.store.GPUHolders(ctx)
	if err != nil || len(holders) != 1 || holders[0].User != "carol" {
		t.Errorf("holders after bob's server died: %+v %v", holders, err)
	}
}

func TestGPUWaitEndsAtTheStartTimeout(t *testing.T) {
	f := gpuHub(t, time.Second)
	ctx := context.Background()
	_, op := f.startWith(t, "alice", "two")
	if err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	erin, op := f.startWith(t, "erin", "gpu")
	err := op.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "no GPU became free") || !strings.Contains(err.Error(), "GPU 1: alice") {
		t.Fatalf("erin's start: %v", err)
	}
	if srv := f.server(t, store.Server{UserID: erin.ID}); srv.State != store.StateFailed || !strings.Contains(srv.StopReason, "GPU") {
		t.Errorf("erin's server: %s %q", srv.State, srv.StopReason)
	}
	// More than the pool holds never waits.
	u, _ := f.store.EnsureUser(ctx, "fred", false)
	f.hub.cfg.Spawner.Profiles = append(f.hub.cfg.Spawner.Profiles, config.Profile{Name: "three", GPUs: 3})
	op, err = f.hub.StartWith(ctx, u, "", `{"profile": "three"}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(ctx); err == nil || !strings.Contains(err.Error(), "asks for 3 GPUs but the hub has 2") {
		t.Errorf("three GPUs of two: %v", err)
	}
}

func TestParseOptions(t *testing.T) {
	for in, want := range map[string]string{"": "", "{}": "", `{"profile": "gpu"}`: "gpu"} {
		if got, err := ParseOptions(in); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{`[]`, `null`, `{"profile": 1}`, `{"profile": null}`, `{"cpus": 4}`, `{"profile": "a", "x": 1}`, `nope`} {
		if _, err := ParseOptions(bad); !errors.As(err, new(*OptionsError)) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// waitEvent waits for a progress event of op containing every want.
func waitEvent(t *testing.T, op *Op, want ...string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := 0; ; {
		events, done, changed := op.Since(i)
		i += len(events)
		for _, e := range events {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(e.Message, w)
			}
			if ok {
				return
			}
		}
		if done {
			t.Fatalf("the op ended without an event saying %q", want)
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no event saying %q", want)
		}
	}
}

func (f *fixture) user(t *testing.T, name string) store.User {
	t.Helper()
	u, err := f.store.UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
