package dockerlab_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testlab/dockerlab"
	"github.com/hubd/hubd/internal/testutil"
)

const member = "hubtest-dockeru"

func TestEngine(t *testing.T) {
	testutil.NeedRoot(t)
	var h testutil.Host
	t.Cleanup(h.Cleanup)
	if err := h.User(member, ""); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup(member)
	if err != nil {
		t.Fatal(err)
	}
	ids := u.Uid + ":" + u.Gid
	var pid int
	var host string
	// dockerd creates these outside its own directories. (One present now
	// may be left by a run that died: the lab removes that too.)
	hostPaths := []string{"/etc/docker/key.json", "/run/docker", "/run/containerd"}
	existed := map[string]bool{}
	for _, p := range hostPaths {
		_, err := os.Stat(p)
		existed[p] = err == nil
	}

	// The engine lives in this subtest; its teardown runs when the subtest
	// ends, and the checks after it see what the teardown left.
	t.Run("engine", func(t *testing.T) {
		start := time.Now()
		e := dockerlab.Start(t, dockerlab.Options{})
		t.Logf("engine %s up with its images in %s", e.Version, time.Since(start).Round(time.Millisecond))
		pid, host = e.PID(), e.Host

		t.Run("SingleuserVersion", func(t *testing.T) {
			out, err := e.Docker("run", "--rm", "--user", ids, e.SingleuserImage, "jupyterhub-singleuser", "--version")
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(out, "\n")
			if v := lines[len(lines)-1]; !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
				t.Errorf("jupyterhub-singleuser --version printed %q", out)
			}
		})

		t.Run("ServerAsMember", func(t *testing.T) {
			marker := "hubtest-from-container"
			id, err := e.Docker("run", "-d", "--user", ids, "--memory", "256m",
				"-v", u.HomeDir+":"+u.HomeDir, "-e", "HOME="+u.HomeDir, "-w", u.HomeDir,
				"-p", "127.0.0.1::8888", e.SingleuserImage,
				"/bin/sh", "-c", "echo hi > "+marker+" && exec python3 -u -m http.server --bind 0.0.0.0 8888")
			if err != nil {
				t.Fatal(err)
			}
			rec := e.Inspect(t, id)
			if m := dockerlab.Field(rec, "HostConfig", "Memory"); m != float64(256<<20) {
				t.Errorf("memory limit %v, want %d", m, 256<<20)
			}
			published, err := e.Docker("port", id, "8888")
			if err != nil {
				t.Fatal(err)
			}
			addr, _, _ := strings.Cut(published, "\n")
			if !strings.HasPrefix(addr, "127.0.0.1:") {
				t.Fatalf("port 8888 published at %q, want 127.0.0.1 only", published)
			}
			var body string
			if !testlab.Poll(20*time.Second, func() bool {
				resp, err := http.Get("http://" + addr + "/")
				if err != nil {
					return false
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body = string(b)
				return resp.StatusCode == 200 && strings.Contains(body, marker)
			}) {
				logs, _ := e.Docker("logs", id)
				t.Fatalf("no listing of the home with %s at %s: %q\n%s", marker, addr, body, logs)
			}
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(u.HomeDir, marker), &st); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(st.Uid) != u.Uid || fmt.Sprint(st.Gid) != u.Gid {
				t.Errorf("the file the container wrote in the home is owned by %d:%d, want %s", st.Uid, st.Gid, ids)
			}
			cpid := int(dockerlab.Field(rec, "State", "Pid").(float64))
			if uid, gid, _, _ := (testutil.Proc{PID: cpid}).IDs(); uid != u.Uid || gid != u.Gid {
				t.Errorf("the container's process runs as %s:%s, want %s", uid, gid, ids)
			}

			if out, err := e.Docker("rm", "-f", id); err != nil {
				t.Fatalf("docker rm: %v %s", err, out)
			}
			if out, _ := e.Docker("ps", "-aq", "--no-trunc", "--filter", "id="+id); out != "" {
				t.Errorf("container %s still listed after rm", id)
			}
			if !testlab.Poll(10*time.Second, func() bool { return !(testutil.Proc{PID: cpid}).Alive() }) {
				t.Errorf("the container's process %d outlived docker rm", cpid)
			}
			if resp, err := http.Get("http://" + addr + "/"); err == nil {
				resp.Body.Close()
				t.Errorf("%s still answers after docker rm", addr)
			}
		})

		t.Run("OOMKilled", func(t *testing.T) {
			id, err := e.Docker("run", "-d", "--user", ids, "--memory", "64m", "--memory-swap", "64m", e.SingleuserImage,
				"python3", "-c", "b = bytearray(300 * 1024 * 1024)")
			if err != nil {
				t.Fatal(err)
			}
			code, err := e.Docker("wait", id)
			if err != nil {
				t.Fatal(err)
			}
			rec := e.Inspect(t, id)
			if dockerlab.Field(rec, "State", "OOMKilled") != true || code != "137" {
				t.Errorf("over its memory limit: OOMKilled=%v exit %s, want true and 137", dockerlab.Field(rec, "State", "OOMKilled"), code)
			}
		})

		t.Run("BrokenImage", func(t *testing.T) {
			_, err := e.Docker("run", "--name", "hubtest-broken", dockerlab.BrokenImage)
			if err == nil || !strings.Contains(err.Error(), "hubtest-missing") {
				t.Errorf("docker run %s: %v, want a failure to start /hubtest-missing", dockerlab.BrokenImage, err)
			}
			if state := dockerlab.Field(e.Inspect(t, "hubtest-broken"), "State", "Status"); state != "created" {
				t.Errorf("the broken container is %v, want created (never started)", state)
			}
		})
	})

	// What the teardown must have left: nothing of the engine.
	if (testutil.Proc{PID: pid}).Alive() {
		t.Errorf("dockerd %d still runs", pid)
	}
	data, _ := os.ReadFile("/proc/self/mounts")
	if strings.Contains(string(data), dockerlab.CachePrefix) || strings.Contains(string(data), "/run/hubtest-docker") {
		t.Errorf("lab mounts left:\n%s", data)
	}
	if _, err := os.Stat("/sys/class/net/hubtest-docker0"); err == nil {
		t.Error("bridge hubtest-docker0 left")
	}
	if _, err := os.Stat(strings.TrimPrefix(host, "unix://")); err == nil {
		t.Error("the engine's socket is left")
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/*/hubtest-docker"); len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
	for _, p := range hostPaths {
		if _, err := os.Stat(p); err == nil && !existed[p] {
			t.Errorf("%s did not exist before the engine and is left", p)
		}
	}
}
