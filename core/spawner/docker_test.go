package spawner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hubd/hubd/internal/testlab/dockerlab"
	"github.com/hubd/hubd/internal/testutil"
)

const (
	dkGroup = "hubtest-dk"
	dkAlice = "hubtest-dk-alice"
	// dkGateway is the docker lab's bridge address (dockerlab's default).
	dkGateway = "172.30.77.1"
)

// probeServer stands in for the single-user server: it asks the hub's API
// URL from its environment (what it got is written to the home), then
// serves the home directory on the container's port.
const probeServer = `
import http.server, os, pathlib, urllib.request
home = os.environ["HOME"]
try:
    got = urllib.request.urlopen(os.environ["JUPYTERHUB_API_URL"], timeout=5).read().decode()
except Exception as e:
    got = "ERR %s" % e
pathlib.Path(home, "hubtest-probe").write_text(got)
os.chdir(home)
http.server.HTTPServer(("0.0.0.0", 8888), http.server.SimpleHTTPRequestHandler).serve_forever()
`

// dockerLab starts the lab engine, a member with a supplementary group,
// and a stand-in for the hub's API on the lab bridge's gateway.
type dockerLab struct {
	e       *dockerlab.Engine
	acct    *user.User
	group   *user.Group
	hubPort int
	logDir  string
}

func newDockerLab(t *testing.T) *dockerLab {
	t.Helper()
	testutil.NeedRoot(t)
	e := dockerlab.Start(t, dockerlab.Options{})
	var h testutil.Host
	t.Cleanup(h.Cleanup)
	if err := h.Group(dkGroup); err != nil {
		t.Fatal(err)
	}
	if err := h.User(dkAlice, "", dkGroup); err != nil {
		t.Fatal(err)
	}
	acct, err := user.Lookup(dkAlice)
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup(dkGroup)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", dkGateway+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hub api at "+r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &dockerLab{e: e, acct: acct, group: g, hubPort: ln.Addr().(*net.TCPAddr).Port, logDir: t.TempDir()}
}

func (l *dockerLab) spawner(t *testing.T, o DockerOptions) *Docker {
	t.Helper()
	o.Host = l.e.Host
	if o.Image == "" {
		o.Image = l.e.SingleuserImage
	}
	o.HubPort = l.hubPort
	o.NamePrefix = "hubtest"
	d, err := NewDocker(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func (l *dockerLab) request(server string, command ...string) Request {
	if len(command) == 0 {
		command = []string{"/usr/bin/python3", "-c", probeServer}
	}
	return Request{
		User: dkAlice, Server: server, Command: command[:1], Args: command[1:],
		Env: map[string]string{
			"JUPYTERHUB_API_TOKEN":   "hubtest-secret",
			"JUPYTERHUB_API_URL":     "http://127.0.0.1:8081/hub/api",
			"JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:9999/user/" + dkAlice + "/",
		},
		Path: systemPath, LogPath: filepath.Join(l.logDir, dkAlice+server+".log"),
	}
}

func get(addr, path string) (string, error) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s", resp.Status)
	}
	return string(b), err
}

func TestDocker(t *testing.T) {
	l := newDockerLab(t)
	ctx := context.Background()
	d := l.spawner(t, DockerOptions{MemoryMax: 256 << 20, CPUQuotaPercent: 50, PidsMax: 128, ReadOnlyRoot: true})

	t.Run("ServerAsMember", func(t *testing.T) {
		st, err := d.Start(ctx, l.request(""))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Stop(ctx, dkAlice, st, time.Second) })
		if st.Container != "hubtest-hubtest_2ddk_2dalice" || st.Host != "127.0.0.1" || st.Port == 0 {
			t.Errorf("state %+v", st)
		}
		var body string
		testutil.WaitFor(t, "the server in the container to answer", func() bool {
			body, err = get(st.Addr(), "/hubtest-probe")
			return err == nil
		})
		if want := "hub api at /hub/api"; body != want {
			t.Errorf("the server reached the hub's API with %q, want %q", body, want)
		}
		var fst syscall.Stat_t
		if err := syscall.Stat(filepath.Join(l.acct.HomeDir, "hubtest-probe"), &fst); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(fst.Uid) != l.acct.Uid || fmt.Sprint(fst.Gid) != l.acct.Gid {
			t.Errorf("the home file is owned by %d:%d, want %s:%s", fst.Uid, fst.Gid, l.acct.Uid, l.acct.Gid)
		}
		rec := l.e.Inspect(t, st.Container)
		pid := int(dockerlab.Field(rec, "State", "Pid").(float64))
		uid, gid, groups, _ := (testutil.Proc{PID: pid}).IDs()
		if uid != l.acct.Uid || gid != l.acct.Gid || !slices.Contains(groups, l.group.Gid) {
			t.Errorf("the server runs as %s:%s groups %v, want %s:%s with %s", uid, gid, groups, l.acct.Uid, l.acct.Gid, l.group.Gid)
		}
		for _, c := range []struct {
			path []string
			want any
		}{
			{[]string{"HostConfig", "Memory"}, float64(256 << 20)},
			{[]string{"HostConfig", "MemorySwap"}, float64(256 << 20)},
			{[]string{"HostConfig", "NanoCpus"}, float64(5e8)},
			{[]string{"HostConfig", "PidsLimit"}, float64(128)},
			{[]string{"HostConfig", "ReadonlyRootfs"}, true},
			{[]string{"Config", "Labels", LabelUser}, dkAlice},
		} {
			if got := dockerlab.Field(rec, c.path...); got != c.want {
				t.Errorf("%s = %v, want %v", strings.Join(c.path, "."), got, c.want)
			}
		}
		if got := fmt.Sprint(dockerlab.Field(rec, "HostConfig", "CapDrop")); got != "[ALL]" {
			t.Errorf("CapDrop %s", got)
		}
		if got := fmt.Sprint(dockerlab.Field(rec, "HostConfig", "SecurityOpt")); got != "[no-new-privileges]" {
			t.Errorf("SecurityOpt %s", got)
		}
		for port, binds := range dockerlab.Field(rec, "HostConfig", "PortBindings").(map[string]any) {
			for _, b := range binds.([]any) {
				if ip := b.(map[string]any)["HostIp"]; ip != "127.0.0.1" {
					t.Errorf("port %s published on %v, want 127.0.0.1 only", port, ip)
				}
			}
		}
		status := (testutil.Proc{PID: pid}).Read("status")
		if !strings.Contains(string(status), "NoNewPrivs:\t1") || !strings.Contains(string(status), "CapEff:\t0000000000000000") {
			t.Errorf("the server's process has privileges:\n%s", status)
		}

		if ps, err := d.Poll(ctx, dkAlice, st); err != nil || !ps.Running {
			t.Errorf("Poll of a running server: %+v %v", ps, err)
		}
		// A hub restarted: a new spawner finds the container by its name
		// and labels.
		again := l.spawner(t, DockerOptions{})
		if ps, err := again.Poll(ctx, dkAlice, st); err != nil || !ps.Running {
			t.Errorf("Poll after a restart: %+v %v", ps, err)
		}
		use, err := again.Usage(ctx, dkAlice, st)
		if err != nil || use.MemoryBytes == 0 || use.MemoryLimit != 256<<20 || use.Pids == 0 || use.CPUPercent <= 0 || !strings.HasPrefix(use.ID, dockerlab.Field(rec, "Id").(string)) {
			t.Errorf("Usage %+v %v", use, err)
		}
		// Someone else's name: never stopped, never reported as running.
		if ps, err := again.Poll(ctx, "hubtest-dk-mallory", st); err != nil || ps.Running {
			t.Errorf("Poll as another user: %+v %v", ps, err)
		}
		if err := again.Stop(ctx, dkAlice, st, time.Second); err != nil {
			t.Fatal(err)
		}
		if out, _ := l.e.Docker("ps", "-aq", "--filter", "name="+st.Container); out != "" {
			t.Errorf("container left after Stop: %s", out)
		}
		testutil.WaitFor(t, "the server's process to end", func() bool { return !(testutil.Proc{PID: pid}).Alive() })
		if ps, err := d.Poll(ctx, dkAlice, st); err != nil || ps.Running || !strings.Contains(ps.Reason, "gone") {
			t.Errorf("Poll after Stop: %+v %v", ps, err)
		}
		if err := d.Stop(ctx, dkAlice, st, time.Second); err != nil {
			t.Errorf("Stop of a server that is gone: %v", err)
		}
	})

	t.Run("OOMKilled", func(t *testing.T) {
		small := l.spawner(t, DockerOptions{MemoryMax: 64 << 20})
		r := l.request("oom", "/usr/bin/python3", "-c",
			"import time\nb = []\nfor i in range(40):\n    b.append(bytearray(16 << 20)); time.sleep(0.05)\n")
		st, err := small.Start(ctx, r)
		if err != nil {
			var se *StartError
			if errors.As(err, &se) && strings.Contains(se.Reason, "OOM") {
				return // killed before Start saw it run: reported the same way
			}
			t.Fatal(err)
		}
		exited, stop := small.Watch(st)
		defer stop()
		select {
		case ps := <-exited:
			if !strings.Contains(ps.Reason, "OOM killer") || !strings.Contains(ps.Reason, "64 MiB") || ps.ExitCode != 137 {
				t.Errorf("watched exit %+v, want an OOM kill with exit 137 naming the limit", ps)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("no exit reported")
		}
		ps, err := small.Poll(ctx, dkAlice, st)
		if err != nil || ps.Running || !strings.Contains(ps.Reason, "OOM killer") {
			t.Errorf("Poll of the killed server: %+v %v", ps, err)
		}
		if out, _ := l.e.Docker("ps", "-aq", "--filter", "name="+st.Container); out != "" {
			t.Errorf("a dead container is left after Poll recorded it: %s", out)
		}
	})

	t.Run("ProfileResources", func(t *testing.T) {
		// A profile's image (the lab image under another name), its own
		// limits over the hub's, and one GPU of the pool: a stand-in
		// character device, the only one of the pool the container gets.
		image := "hubtest/profile:1"
		if _, err := l.e.Docker("tag", l.e.SingleuserImage, image); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.e.Docker("rmi", image) })
		gpu0, gpu1 := "/dev/hubtest-dk-gpu0", "/dev/hubtest-dk-gpu1"
		for _, p := range []string{gpu0, gpu1} {
			os.Remove(p)
			if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(p) })
		}
		r := l.request("profile")
		r.Env["CUDA_VISIBLE_DEVICES"] = "0"
		r.Resources = Resources{Profile: "r", Restrict: true,
			GPUs:   []GPU{{Index: 0, Device: gpu0}},
			Docker: DockerLimits{Image: image, MemoryMax: 128 << 20, PidsMax: 64}}
		st, err := d.Start(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Stop(ctx, dkAlice, st, time.Second) })
		rec := l.e.Inspect(t, st.Container)
		for _, c := range []struct {
			path []string
			want any
		}{
			{[]string{"Config", "Image"}, image},
			{[]string{"HostConfig", "Memory"}, float64(128 << 20)},
			{[]string{"HostConfig", "PidsLimit"}, float64(64)},
			// What the profile leaves unset stays the hub's.
			{[]string{"HostConfig", "NanoCpus"}, float64(5e8)},
		} {
			if got := dockerlab.Field(rec, c.path...); got != c.want {
				t.Errorf("%s = %v, want %v", strings.Join(c.path, "."), got, c.want)
			}
		}
		pid := int(dockerlab.Field(rec, "State", "Pid").(float64))
		root := fmt.Sprintf("/proc/%d/root", pid)
		var dev syscall.Stat_t
		if err := syscall.Stat(root+gpu0, &dev); err != nil || dev.Mode&syscall.S_IFMT != syscall.S_IFCHR {
			t.Errorf("the container's GPU %s: %v, mode %o", gpu0, err, dev.Mode)
		}
		if err := syscall.Stat(root+gpu1, &dev); err == nil {
			t.Errorf("the container sees %s, a GPU it was not given", gpu1)
		}
		env := string((testutil.Proc{PID: pid}).Read("environ"))
		if !strings.Contains(env, "CUDA_VISIBLE_DEVICES=0\x00") {
			t.Errorf("CUDA_VISIBLE_DEVICES not in the server's environment")
		}
	})

	t.Run("MissingImage", func(t *testing.T) {
		r := l.request("noimage")
		r.Resources.Docker.Image = "hubtest/missing:1"
		_, err := d.Start(ctx, r)
		if err == nil || !strings.Contains(err.Error(), "image hubtest/missing:1 is not on the Docker Engine") {
			t.Errorf("Start with a missing image: %v", err)
		}
	})

	t.Run("CommandNotInImage", func(t *testing.T) {
		r := l.request("broken")
		r.Resources.Docker.Image = dockerlab.BrokenImage
		// The engine's init starts and then fails to run the command: the
		// start, or the watch right after it, says so.
		var reason, out string
		st, err := d.Start(ctx, r)
		if se, ok := errors.AsType[*StartError](err); ok {
			reason, out = se.Reason, se.Output
		} else if err != nil {
			t.Fatal(err)
		} else {
			exited, stop := d.Watch(st)
			defer stop()
			select {
			case ps := <-exited:
				reason, out = ps.Reason, ps.Output
			case <-time.After(30 * time.Second):
				t.Fatal("no exit reported")
			}
			if ps, err := d.Poll(ctx, dkAlice, st); err != nil || ps.Running {
				t.Errorf("Poll: %+v %v", ps, err)
			}
		}
		if !strings.Contains(reason, dockerlab.BrokenImage) || !strings.Contains(out, "/usr/bin/python3") {
			t.Errorf("a command the image lacks: %q, output %q", reason, out)
		}
		if out, _ := l.e.Docker("ps", "-aq"); out != "" {
			t.Errorf("a failed start left containers: %s", out)
		}
	})

	t.Run("Leftovers", func(t *testing.T) {
		name, _ := d.ContainerName(dkAlice, "left")
		// A hubd container of that name from an earlier run is replaced.
		if _, err := l.e.Docker("create", "--name", name, "--label", LabelUser+"="+dkAlice, l.e.SingleuserImage, "true"); err != nil {
			t.Fatal(err)
		}
		st, err := d.Start(ctx, l.request("left"))
		if err != nil {
			t.Fatalf("Start over a leftover: %v", err)
		}
		// A start the hub never recorded: Reclaim removes the container
		// by its name, once.
		if n, err := d.Reclaim(ctx, Orphan{User: dkAlice, Server: "left"}, time.Second); err != nil || n != 1 {
			t.Errorf("Reclaim = %d, %v; want the container", n, err)
		}
		if out, _ := l.e.Docker("ps", "-aq", "--filter", "name="+st.Container); out != "" {
			t.Errorf("the reclaimed container is still there: %s", out)
		}
		if n, err := d.Reclaim(ctx, Orphan{User: dkAlice, Server: "left"}, time.Second); err != nil || n != 0 {
			t.Errorf("a second Reclaim = %d, %v", n, err)
		}
		d.Stop(ctx, dkAlice, st, time.Second)
		// Anything else of that name is the admin's: refused, kept.
		if _, err := l.e.Docker("create", "--name", name, l.e.SingleuserImage, "true"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.e.Docker("rm", "-f", name) })
		if _, err := d.Start(ctx, l.request("left")); err == nil || !strings.Contains(err.Error(), "is not a hubd server") {
			t.Errorf("Start over a foreign container: %v", err)
		}
	})

	t.Run("EngineDown", func(t *testing.T) {
		down, err := NewDocker(DockerOptions{Host: "unix:///run/hubtest-no-docker.sock", Image: "x", HubPort: 1})
		if err != nil {
			t.Fatalf("NewDocker must not need the engine: %v", err)
		}
		_, err = down.Start(ctx, l.request("down"))
		if err == nil || !strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), "unix:///run/hubtest-no-docker.sock") {
			t.Errorf("Start with the engine down: %v", err)
		}
	})

	t.Run("NameEscaping", func(t *testing.T) {
		for _, c := range [][3]string{
			{"alice", "", "hubtest-alice"},
			{"a-b", "", "hubtest-a_2db"},
			{"a", "b-c", "hubtest-a-b_2dc"},
			{"a-b", "c", "hubtest-a_2db-c"},
			{"a.b_c", "", "hubtest-a.b_5fc"},
		} {
			if got, err := d.ContainerName(c[0], c[1]); err != nil || got != c[2] || !ValidContainerName(got) {
				t.Errorf("ContainerName(%q, %q) = %q %v, want %q", c[0], c[1], got, err, c[2])
			}
		}
		if _, err := d.ContainerName("-rf", ""); err == nil {
			t.Error("ContainerName accepted an option-like user name")
		}
	})
}
