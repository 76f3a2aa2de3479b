package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/internal/testutil"
)

// Stand-ins for two GPUs: character devices of drivers any user may open
// (fuse and tun), so that opening one shows whether the kernel's device
// controller lets the server at it.
var standInGPUs = []struct {
	path         string
	major, minor uint32
}{{"/dev/hubtest-gpu0", 10, 229}, {"/dev/hubtest-gpu1", 10, 200}}

const gpuProfiles = `
gpu_shared_devices = []

[[spawner.profiles]]
name = "small"
display_name = "CPU, 200 MB"
default = true
[spawner.profiles.systemd]
memory_max = "200M"

[[spawner.profiles]]
name = "gpu"
gpus = 1

[[spawner.profiles]]
name = "two"
gpus = 2

[[spawner.gpus]]
index = 0
device = "/dev/hubtest-gpu0"

[[spawner.gpus]]
index = 1
device = "/dev/hubtest-gpu1"
`

// deviceCheck is a cell: the server's CUDA_VISIBLE_DEVICES and what
// opening each stand-in GPU gives ("ok" or the errno).
const deviceCheck = `import os
def can(p):
    try:
        open(p, 'rb').close()
        return 'ok'
    except OSError as e:
        return e.errno
(os.environ.get('CUDA_VISIBLE_DEVICES'), can('/dev/hubtest-gpu0'), can('/dev/hubtest-gpu1'))`

// spawnProfile starts name's server with a profile through the spawn
// page's link form, logging in first, and waits until it answers.
func spawnProfile(t *testing.T, b *browser, name, pw, profile string) {
	t.Helper()
	if b.cookie("/hub/", "jupyterhub-hub-login") == "" {
		readAll(b.login(name, pw))
	}
	readAll(b.do("GET", "/hub/spawn?profile="+profile, nil, nil))
	if err := waitFor(90*time.Second, func() error {
		r := b.do("GET", "/user/"+name+"/api", nil, nil)
		if body := readAll(r); r.StatusCode != 200 {
			return fmt.Errorf("status %d: %.200s", r.StatusCode, body)
		}
		return nil
	}); err != nil {
		t.Fatalf("%s's %s server never answered: %v", name, profile, err)
	}
}

// cell runs code in a fresh kernel of name's server.
func cell(t *testing.T, b *browser, name, code string) string {
	t.Helper()
	openTree(t, b, name)
	kernel := startKernel(t, b, name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := b.execute(ctx, name, kernel, code)
	if err != nil {
		t.Fatalf("cell in %s's server: %v", name, err)
	}
	return out
}

// gpusOf are the GPUs the admin socket says name's server holds.
func gpusOf(t *testing.T, socket, name string) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := (&client.Client{Socket: socket}).Sessions(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, sess := range s.Sessions {
		if sess.User == name {
			return sess.GPUs
		}
	}
	return nil
}

// progressSays reads name's spawn progress stream until an event holds
// want.
func progressSays(t *testing.T, b *browser, name, want string) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.base+"/hub/api/users/"+name+"/server/progress", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := b.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var seen []string
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data:") {
			seen = append(seen, line)
			if strings.Contains(line, want) {
				return
			}
		}
	}
	t.Fatalf("the progress of %s's start never said %q: %q", name, want, seen)
}

func TestProfilesUnderSystemd(t *testing.T) {
	need(t)
	for _, d := range standInGPUs {
		os.Remove(d.path)
		if err := unix.Mknod(d.path, syscall.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.path, 0o666); err != nil { // whatever the umask
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(d.path) })
	}
	n := startNSHub(t)
	cfg := regexp.MustCompile(`(?m)^(profiles|gpus|gpu_shared_devices) = .*$`).ReplaceAllString(n.configs["systemd"], "")
	n.configs["profiles"] = strings.Replace(cfg, "[spawner.environment]", gpuProfiles+"\n[spawner.environment]", 1)
	n.useConfig("profiles")
	n.exec("systemctl", "start", nsUnit)
	socket := n.dir + "/run/hubd.sock"
	alices, bobs := newBrowserAt(t, n.public), newBrowserAt(t, n.public)
	stop := func(b *browser, name string) {
		t.Helper()
		r := b.do("DELETE", "/hub/api/users/"+name+"/server", nil, map[string]string{"X-XSRFToken": b.cookie("/hub/", "_xsrf")})
		if body := readAll(r); r.StatusCode != http.StatusNoContent {
			t.Fatalf("stop %s: %d %s", name, r.StatusCode, body)
		}
	}

	t.Run("the small profile's MemoryMax is what the kernel enforces", func(t *testing.T) {
		spawnProfile(t, alices, alice, alicePW, "small")
		units := n.exec("systemctl", "list-units", "--plain", "--no-legend", "hubtest-e2e-srv-*")
		unit := strings.Fields(units)[0]
		if got := n.exec("systemctl", "show", "-p", "MemoryMax", "--value", unit); got != "209715200" {
			t.Errorf("the unit's MemoryMax=%s, want the profile's 200M (209715200) instead of the global 300M", got)
		}
		pids := serverPIDs(t, alice)
		if len(pids) != 1 {
			t.Fatalf("alice's server processes: %v", pids)
		}
		if lim, err := (testutil.Proc{PID: pids[0]}).MemoryLimit(); err != nil || lim != 200<<20 {
			t.Errorf("the memory limit of the server's cgroup: %d (%v), want %d", lim, err, 200<<20)
		}
		// With a GPU pool, a server without GPUs sees none and may open none.
		if got := cell(t, alices, alice, deviceCheck); got != "('', 1, 1)" {
			t.Errorf("a server without GPUs: %s, want ('', 1, 1): no GPU visible, both refused (EPERM)", got)
		}
		stop(alices, alice)
	})

	t.Run("a GPU profile: one GPU, exclusively, enforced by the device controller", func(t *testing.T) {
		spawnProfile(t, alices, alice, alicePW, "gpu")
		if got := cell(t, alices, alice, deviceCheck); got != "('0', 'ok', 1)" {
			t.Errorf("alice's GPU server: %s, want ('0', 'ok', 1)", got)
		}
		if g := gpusOf(t, socket, alice); fmt.Sprint(g) != "[0]" {
			t.Errorf("the admin socket says alice holds GPUs %v", g)
		}
	})

	t.Run("assignments survive a hub restart", func(t *testing.T) {
		n.exec("systemctl", "restart", nsUnit)
		if err := waitFor(30*time.Second, n.answers); err != nil {
			t.Fatal(err)
		}
		if g := gpusOf(t, socket, alice); fmt.Sprint(g) != "[0]" {
			t.Errorf("after the restart alice holds GPUs %v", g)
		}
	})

	t.Run("a user waiting for GPUs sees who holds them, and gets them when freed", func(t *testing.T) {
		readAll(bobs.login(bob, bobPW))
		form := readAll(bobs.do("GET", "/hub/spawn", nil, nil))
		if !strings.Contains(form, "1 of 2 GPUs free; in use: GPU 0: "+alice) {
			t.Errorf("the spawn form does not say who holds the GPUs:\n%s", form)
		}
		readAll(bobs.do("GET", "/hub/spawn?profile=two", nil, nil))
		progressSays(t, bobs, bob, "GPU 0: "+alice)
		stop(alices, alice)
		spawnProfile(t, bobs, bob, bobPW, "two")
		if got := cell(t, bobs, bob, deviceCheck); got != "('0,1', 'ok', 'ok')" {
			t.Errorf("bob's two-GPU server: %s, want ('0,1', 'ok', 'ok')", got)
		}
		if g := gpusOf(t, socket, bob); fmt.Sprint(g) != "[0 1]" {
			t.Errorf("the admin socket says bob holds GPUs %v", g)
		}
		stop(bobs, bob)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := (&client.Client{Socket: socket}).Sessions(ctx, "")
		if err != nil || len(s.Sessions) != 0 {
			t.Errorf("sessions left: %+v %v", s.Sessions, err)
		}
	})
	n.exec("systemctl", "stop", nsUnit)
}
