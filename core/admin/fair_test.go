package admin

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/internal/testutil"
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

// A member that announces a body and never sends it holds no slot: root's
// status answers at once, and the member gets 408 when its time is up.
func TestSilentBodyDoesNotFreezeTheSocket(t *testing.T) {
	u := users.get(t)
	sock := filepath.Join(socketDir(t), "hubd.sock")
	e := newTestEnv(t, func(c *config.Config) { c.Admin.Socket = sock })
	e.srv.bodyTimeout = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.srv.Serve(ctx) }()
	c := &client.Client{Socket: sock}
	testutil.WaitFor(t, "the admin socket", func() bool { _, err := c.Status(ctx); return err == nil })

	stall := exec.Command("setpriv", "--reuid="+usrMember, "--regid="+usrMember, "--init-groups", "--", u.bin)
	stall.Env = append(os.Environ(), envRole+"=stall", envSocket+"="+sock)
	out, err := stall.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := stall.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stall.Process.Kill(); _ = stall.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "sent" {
		t.Fatalf("stall helper: %q", lines.Text())
	}
	answered := make(chan string, 1)
	go func() {
		lines.Scan()
		answered <- lines.Text()
	}()
	for range 3 {
		if _, err := c.Status(ctx); err != nil {
			t.Fatalf("root's status while a member stalls: %v", err)
		}
		if _, err := c.Restart(ctx, ""); err != nil && !strings.Contains(err.Error(), "moments ago") {
			t.Fatalf("root's restart while a member stalls: %v", err)
		}
	}
	select {
	case got := <-answered:
		t.Fatalf("the member was answered (%q) before root's requests, which did not wait for it", got)
	default:
	}
	select {
	case got := <-answered:
		if !strings.HasPrefix(got, "HTTP/1.1 408") {
			t.Errorf("the silent member got %q, want 408", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the silent member was never answered")
	}
}
