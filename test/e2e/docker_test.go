package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testlab/dockerlab"
)

// dockerHub is a second hub, beside the shared (sudo) one and sharing its
// members, PAM service and shares root, that runs every server in a
// container of the docker lab's engine. It runs as root: the engine's
// socket is root's.
type dockerHub struct {
	*hubProcess
	dir, public, config string
	e                   *dockerlab.Engine
}

const dockerShare = "proj"

func startDockerHub(t *testing.T, e *dockerlab.Engine) *dockerHub {
	t.Helper()
	dir, err := os.MkdirTemp("", "hubtest-e2e-docker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if _, _, err := makeHubDirs(dir); err != nil {
		t.Fatal(err)
	}
	cfg, public, err := writeHubConfig(dir,
		`kind = "sudo"`, `kind = "docker"`,
		// The shares stay the shared hub's: both hubs' servers see them.
		`root = "/srv/hubd/shares"`, `root = "`+env.dataDir+`/shares"`,
		"[spawner.docker]\nhost = \"\"\nimage = \"\"\n", fmt.Sprintf("[spawner.docker]\nhost = %q\nimage = %q\n", e.Host, e.SingleuserImage),
		`name_prefix = "hubd"`, `name_prefix = "hubtest-e2e"`,
		"memory_max = \"0\"\ncpu_quota_percent = 0\npids_max = 4096", "memory_max = \"384M\"\ncpu_quota_percent = 100\npids_max = 256",
	)
	if err != nil {
		t.Fatal(err)
	}
	h := &dockerHub{dir: dir, public: "http://" + public, config: cfg, e: e}
	// Root: the engine's socket is root's.
	h.hubProcess = &hubProcess{config: h.config, log: filepath.Join(dir, "hubd.log"), public: h.public}
	if err := h.start(); err != nil {
		t.Fatalf("start the docker hub: %v\n%s", err, h.logTail())
	}
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("docker hub log:\n%s", h.logTail())
		}
	})
	return h
}

// containers lists the engine's containers: name → id.
func (h *dockerHub) containers(t *testing.T) map[string]string {
	t.Helper()
	out, err := h.e.Docker("ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.ID}}")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if name, id, ok := strings.Cut(line, " "); ok {
			m[name] = id
		}
	}
	return m
}

// runCell starts a kernel on name's server and runs code in it over the
// kernel's websocket, through the proxy.
func runCell(t *testing.T, b *browser, name, code string) string {
	t.Helper()
	kernel := startKernel(t, b, name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := b.execute(ctx, name, kernel, code)
	if err != nil {
		t.Fatalf("run %q on %s's server: %v", code, name, err)
	}
	return out
}

func owner(t *testing.T, path string) (uid, gid string) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(st.Uid), fmt.Sprint(st.Gid)
}

func TestDockerSpawner(t *testing.T) {
	need(t)
	e := dockerlab.Start(t, dockerlab.Options{})
	h := startDockerHub(t, e)
	aliceAcct, _ := user.Lookup(alice)
	container := "hubtest-e2e-hubtest_2de2e_2dalice"
	a := newBrowserAt(t, h.public)

	t.Run("ServerInAContainerAsTheMember", func(t *testing.T) {
		startServer(t, a, alice, alicePW)
		rec := e.Inspect(t, container)
		pid := int(dockerlab.Field(rec, "State", "Pid").(float64))
		if got := procUID(pid); got != aliceAcct.Uid {
			t.Errorf("the container's server runs as uid %s, want %s", got, aliceAcct.Uid)
		}
		openTree(t, a, alice)
		got := runCell(t, a, alice, "import os; open(os.path.expanduser('~/hubtest-docker.txt'), 'w').write('x'); os.getuid()")
		if got != aliceAcct.Uid {
			t.Errorf("the cell ran as uid %s, want %s", got, aliceAcct.Uid)
		}
		if uid, gid := owner(t, filepath.Join(aliceAcct.HomeDir, "hubtest-docker.txt")); uid != aliceAcct.Uid || gid != aliceAcct.Gid {
			t.Errorf("the file the cell wrote in the home is %s:%s, want %s:%s", uid, gid, aliceAcct.Uid, aliceAcct.Gid)
		}
		// The API token is in the container's environment: whoever may use
		// the engine's socket sees it, a member may not.
		out, err := exec.Command("runuser", "-u", bob, "--", dockerlab.Docker, "-H", e.Host, "inspect", container).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "permission denied") {
			t.Errorf("a member ran docker inspect on another's server: %v\n%s", err, out)
		}
		if _, err := exec.Command("runuser", "-u", bob, "--", "cat", fmt.Sprintf("/proc/%d/environ", pid)).CombinedOutput(); err == nil {
			t.Error("another member read the server's environment")
		}
	})

	t.Run("Kill9ReattachesTheContainer", func(t *testing.T) {
		before := h.containers(t)[container]
		h.kill9()
		if err := h.start(); err != nil {
			t.Fatalf("restart: %v", err)
		}
		if after := h.containers(t)[container]; after != before || before == "" {
			t.Fatalf("container %s before the kill, %s after", before, after)
		}
		if !strings.Contains(h.logTail(), "restored=1") {
			t.Errorf("the restarted hub did not re-attach: %s", h.logTail())
		}
		openTree(t, a, alice)
		if got := runCell(t, a, alice, "1 + 1"); got != "2" {
			t.Errorf("a cell after the restart gave %q", got)
		}
	})

	t.Run("StopRemovesTheContainer", func(t *testing.T) {
		r := a.do("DELETE", "/hub/api/users/"+alice+"/server", nil, map[string]string{"X-XSRFToken": a.cookie("/hub/", "_xsrf")})
		if body := readAll(r); r.StatusCode != 204 {
			t.Fatalf("stop: %d %s", r.StatusCode, body)
		}
		if _, ok := h.containers(t)[container]; ok {
			t.Error("the container is left after the stop")
		}
	})

	t.Run("OverTheMemoryLimit", func(t *testing.T) {
		startServer(t, a, alice, alicePW)
		openTree(t, a, alice)
		kernel := startKernel(t, a, alice)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// The server itself (the kernel's parent) is made the OOM killer's
		// first choice, so going over the limit ends the container.
		_, _ = a.execute(ctx, alice, kernel, "import os; open('/proc/%d/oom_score_adj' % os.getppid(), 'w').write('1000'); b = bytearray(600 << 20)")
		var page string
		if err := waitFor(30*time.Second, func() error {
			page = readAll(a.do("GET", "/hub/home", nil, nil))
			if !strings.Contains(page, "OOM killer") {
				return fmt.Errorf("home page: %.300s", page)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(page, "384 MiB") || !strings.Contains(page, "exit code 137") {
			t.Errorf("the home page does not name the limit and exit code: %s", page)
		}
		if _, ok := h.containers(t)[container]; ok {
			t.Error("the killed container is left")
		}
	})

	t.Run("SharesFromDockerAndSudo", func(t *testing.T) {
		// Root's CLI makes the share and the public area.
		if out, err := h.hubd("share", "create", dockerShare, alice, bob); err != nil {
			t.Fatalf("share create: %v\n%s", err, out)
		}
		if out, err := h.hubd("share", "create", "--public"); err != nil {
			t.Fatalf("share create --public: %v\n%s", err, out)
		}
		sharePath := filepath.Join(env.dataDir, "shares", dockerShare)
		pub := filepath.Join(env.dataDir, "shares", "public")

		// alice in a container, bob through sudo on the shared hub.
		startServer(t, a, alice, alicePW)
		openTree(t, a, alice)
		b := memberWithServer(t, bob, bobPW)
		openTree(t, b, bob)
		runCell(t, a, alice, fmt.Sprintf("open(%q, 'w').write('from docker\\n'); open(%q, 'w').write('paper'); 1",
			sharePath+"/notes.txt", pub+"/"+alice+"/paper.txt"))
		got := runCell(t, b, bob, fmt.Sprintf("import os; open(os.path.expanduser('~/shares/%s/notes.txt'), 'a').write('from sudo\\n'); open(os.path.expanduser('~/shares/public/%s/paper.txt')).read()",
			dockerShare, alice))
		if got != "'paper'" {
			t.Errorf("bob read %s from alice's public folder, want 'paper'", got)
		}
		if got := runCell(t, a, alice, fmt.Sprintf("open(%q).read()", sharePath+"/notes.txt")); got != `'from docker\nfrom sudo\n'` {
			t.Errorf("alice reads %s from the share", got)
		}
		if got := runCell(t, b, bob, fmt.Sprintf("import os\ntry:\n    open(%q, 'a').write('x'); r = 'wrote'\nexcept PermissionError:\n    r = 'refused'\nr", pub+"/"+alice+"/paper.txt")); got != "'refused'" {
			t.Errorf("bob writing into alice's public folder: %s", got)
		}
		// A file alice moved in privately (mv: the home and the share are
		// two mounts, so a copy that keeps the mode): check finds it,
		// repair fixes it.
		runCell(t, a, alice, fmt.Sprintf("import os, shutil; os.umask(0o077); open(os.path.expanduser('~/draft.txt'), 'w').write('draft'); shutil.move(os.path.expanduser('~/draft.txt'), %q); 1", sharePath+"/draft.txt"))
		if out, err := h.hubd("share", "check", dockerShare); err == nil || !strings.Contains(out, sharePath+"/draft.txt") {
			t.Errorf("share check missed the moved file: %v\n%s", err, out)
		}
		if out, err := h.hubd("share", "repair", dockerShare); err != nil {
			t.Errorf("share repair: %v\n%s", err, out)
		}
		if got := runCell(t, b, bob, fmt.Sprintf("open(%q).read()", sharePath+"/draft.txt")); got != "'draft'" {
			t.Errorf("bob reads %s from the repaired file", got)
		}

		// alice leaves the share: her running server keeps it, her next
		// one has neither the mount nor the group.
		if out, err := h.hubd("share", "remove", dockerShare, alice); err != nil {
			t.Fatalf("share remove: %v\n%s", err, out)
		}
		stopServer(t, a, alice)
		startServer(t, a, alice, alicePW)
		openTree(t, a, alice)
		if got := runCell(t, a, alice, fmt.Sprintf("import os; os.path.exists(%q)", sharePath+"/notes.txt")); got != "False" {
			t.Errorf("alice's next server still sees the share: %s", got)
		}
		stopServer(t, a, alice)
	})

	t.Run("MissingImageAndEngineDown", func(t *testing.T) {
		good, err := os.ReadFile(h.config)
		if err != nil {
			t.Fatal(err)
		}
		restartWith := func(old, repl string) {
			t.Helper()
			h.stop()
			if err := os.WriteFile(h.config, []byte(strings.Replace(string(good), old, repl, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := h.start(); err != nil {
				t.Fatalf("the hub does not start: %v\n%s", err, h.logTail())
			}
		}
		t.Cleanup(func() {
			h.stop()
			os.WriteFile(h.config, good, 0o644)
			h.start()
		})
		spawnFails := func(want string) {
			t.Helper()
			readAll(a.do("GET", "/hub/spawn", nil, nil))
			if err := waitFor(30*time.Second, func() error {
				if page := readAll(a.do("GET", "/hub/home", nil, nil)); !strings.Contains(page, want) {
					return fmt.Errorf("home page: %.400s", page)
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
		}
		restartWith(fmt.Sprintf("image = %q", e.SingleuserImage), `image = "hubtest/missing:1"`)
		spawnFails("image hubtest/missing:1 is not on the Docker Engine")

		restartWith(fmt.Sprintf("host = %q", e.Host), `host = "unix:///run/hubtest-no-docker.sock"`)
		spawnFails("the Docker Engine at unix:///run/hubtest-no-docker.sock does not answer")
		// The sudo hub beside it does not care.
		b := memberWithServer(t, bob, bobPW)
		openTree(t, b, bob)
	})

	t.Run("NoContainerLeftBehind", func(t *testing.T) {
		if left := h.containers(t); len(left) > 0 {
			t.Errorf("containers left after every server stopped: %v", left)
		}
	})
}
