// Package dockerlab runs a real Docker Engine (Debian's docker.io, Engine
// 20.10, API 1.41) for tests: its own dockerd on its own socket, bridge and
// cgroup parent, with a data root cached under /var/cache/hubd-test so the
// test images survive between runs.
//
// How it fits this machine: no systemd, so the cgroupfs driver; overlay2 on
// the cache's file system; --iptables=false, --ip-forward=false and
// --ip-masq=false, so the host's netfilter rules and sysctls stay as they
// are. Containers have no way out, and ports published on 127.0.0.1 work
// through docker-proxy, which connects to the container over the lab's
// bridge. Reach containers only through such ports. There is no registry:
// the images are imported from tarballs built by scripts/deps.sh test.
package dockerlab

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testutil"
)

const (
	runDir   = "/run/hubtest-docker"
	lockPath = "/run/hubtest-docker.lock"
	// CachePrefix is where the data roots live, one per engine version.
	CachePrefix = "/var/cache/hubd-test/docker-root-"
	// Docker is Debian's client, the same version as the engine (the
	// /usr/local/bin/docker found first in PATH may be another).
	Docker       = "/usr/bin/docker"
	dockerd      = "/usr/sbin/dockerd"
	bridge       = "hubtest-docker0"
	cgroupParent = "hubtest-docker"
	cgroups      = "/sys/fs/cgroup/*/" + cgroupParent
	// BrokenImage is a tiny image whose command does not exist: a container
	// from it is created but fails to start.
	BrokenImage = "hubtest/broken:1"
)

// Outside its own directories dockerd 20.10 creates these and never removes
// them; the lab removes each one that did not exist before it started. The
// list of those is kept in leftoversFile until the teardown, so that a run
// after one that died still knows which are the lab's.
var hostLeftovers = []string{"/etc/docker/key.json", "/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd"}

const leftoversFile = "/var/cache/hubd-test/docker-lab-creates"

// Options tune the engine.
type Options struct {
	// BridgeCIDR is the address of the lab's bridge (default
	// 172.30.77.1/24); change it if that network is in use here.
	BridgeCIDR string
}

// Engine is a running lab engine.
type Engine struct {
	Host    string // the DOCKER_HOST value
	Version string // the engine's version
	// SingleuserImage is Debian 12 with jupyterhub-singleuser, the classic
	// notebook and ipykernel (tag hubtest/singleuser:<version>).
	SingleuserImage string

	dataRoot string

	t      testing.TB
	daemon *testlab.Daemon
}

// Start starts dockerd, imports the images when its data root lacks them
// and registers the teardown with t.Cleanup: every container is removed,
// exactly the dockerd it started is stopped, and the bridge, cgroups and
// files it made are removed.
func Start(t testing.TB, o Options) *Engine {
	t.Helper()
	testutil.NeedRoot(t)
	for _, bin := range []string{dockerd, Docker, "/usr/bin/containerd", "/usr/sbin/runc"} {
		_, err := os.Stat(bin)
		testutil.Require(t, err == nil, "%s is missing (package docker.io)", bin)
	}
	if o.BridgeCIDR == "" {
		o.BridgeCIDR = "172.30.77.1/24"
	}
	testlab.Lock(t, testlab.CgroupsLock)
	testlab.Lock(t, lockPath)
	rootfs, tag := singleuserRootfs(t)

	version, err := testlab.Run(nil, dockerd, "--version") // "Docker version 20.10.24+dfsg1, build 297e128"
	if err != nil {
		t.Fatal(err)
	}
	version = strings.TrimSuffix(strings.Fields(version)[2], ",")
	e := &Engine{
		Host:            "unix://" + runDir + "/docker.sock",
		Version:         version,
		SingleuserImage: tag,
		dataRoot:        CachePrefix + version,
		t:               t,
	}
	// What a test binary that died before its cleanup left behind: dockerd
	// (with docker-proxy), containerd and its shims, containers, mounts,
	// the bridge.
	testlab.KillLeftovers(runDir + "/")
	if _, err := testlab.KillCgroups(cgroups); err != nil {
		t.Fatal(err)
	}
	unmount()
	testlab.Run(nil, "ip", "link", "del", bridge)
	os.RemoveAll(runDir)
	if err := recordLeftovers(); err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after dockerd has stopped.
	t.Cleanup(e.removeAll)

	for _, d := range []string{runDir, e.dataRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	// Our own (empty) daemon.json: a host /etc/docker/daemon.json must not
	// mix into the lab's flags.
	if err := os.WriteFile(runDir+"/daemon.json", []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"ip", "link", "add", bridge, "type", "bridge"},
		{"ip", "addr", "add", o.BridgeCIDR, "dev", bridge},
		{"ip", "link", "set", bridge, "up"},
	} {
		if _, err := testlab.Run(nil, args...); err != nil {
			t.Fatalf("docker lab bridge: %v", err)
		}
	}
	cmd := exec.Command(dockerd, "--host", e.Host, "--pidfile", runDir+"/dockerd.pid",
		"--exec-root", runDir+"/exec", "--data-root", e.dataRoot, "--config-file", runDir+"/daemon.json",
		"--bridge", bridge, "--iptables=false", "--ip-forward=false", "--ip-masq=false",
		"--cgroup-parent", "/"+cgroupParent, "--exec-opt", "native.cgroupdriver=cgroupfs",
		"--storage-driver", "overlay2", "--log-level", "warn")
	cmd.Env = []string{testlab.SystemPath, "LANG=C.UTF-8"}
	e.daemon, err = testlab.StartDaemon(t, "dockerd", runDir+"/dockerd.log", cmd)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: the containers go before dockerd.
	t.Cleanup(e.removeContainers)
	if err := e.daemon.WaitReady(30*time.Second, func() error {
		_, err := e.Docker("version")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A run that died left its containers in the cached data root.
	e.removeContainers()
	if err := e.ensureImages(rootfs); err != nil {
		t.Fatal(err)
	}
	return e
}

// singleuserRootfs returns the tarball of the singleuser image and its tag.
// scripts/deps.sh test builds it ahead of the tests; when it is missing
// (a run without deps) the same script builds it now, which takes minutes.
func singleuserRootfs(t testing.TB) (rootfs, tag string) {
	t.Helper()
	script, err := testlab.RepoFile("test/lab/docker/singleuser-rootfs.sh")
	if err != nil {
		t.Fatal(err)
	}
	if rootfs, err = testlab.Run(nil, script); err != nil {
		t.Fatalf("docker lab: build the singleuser image (scripts/deps.sh test does this ahead): %v", err)
	}
	// .../singleuser-<version>/rootfs.tar
	version := strings.TrimPrefix(filepath.Base(filepath.Dir(rootfs)), "singleuser-")
	return rootfs, "hubtest/singleuser:" + version
}

// PID is dockerd's process id.
func (e *Engine) PID() int { return e.daemon.Pid() }

// Docker runs the docker client against the lab engine and returns its
// trimmed stdout.
func (e *Engine) Docker(args ...string) (string, error) {
	return testlab.Run(e.Env(), append([]string{Docker}, args...)...)
}

// Inspect returns one container's `docker inspect` record.
func (e *Engine) Inspect(t testing.TB, id string) map[string]any {
	t.Helper()
	out, err := e.Docker("inspect", id)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("docker inspect %s: %v\n%s", id, err, out)
	}
	return recs[0]
}

// Field walks an inspect record: Field(rec, "State", "Pid").
func Field(rec map[string]any, path ...string) any {
	var v any = rec
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

// Env is the environment that points a docker client at the lab engine.
func (e *Engine) Env() []string { return []string{"DOCKER_HOST=" + e.Host} }

// ensureImages imports the images the data root lacks and removes
// hubtest/* images of older versions.
func (e *Engine) ensureImages(rootfs string) error {
	want := []string{e.SingleuserImage, BrokenImage}
	out, err := e.Docker("images", "--format", "{{.Repository}}:{{.Tag}}", "hubtest/*")
	if err != nil {
		return err
	}
	have := strings.Fields(out)
	for _, img := range have {
		if !slices.Contains(want, img) {
			if _, err := e.Docker("rmi", img); err != nil {
				return err
			}
		}
	}
	if !slices.Contains(have, e.SingleuserImage) {
		start := time.Now()
		if _, err := e.Docker("import", "--change", `CMD ["/bin/bash"]`, rootfs, e.SingleuserImage); err != nil {
			return err
		}
		e.t.Logf("docker lab: imported %s in %s", e.SingleuserImage, time.Since(start).Round(time.Millisecond))
	}
	if !slices.Contains(have, BrokenImage) {
		if _, err := testlab.RunInput(e.Env(), brokenTar(), Docker, "import", "--change", `CMD ["/hubtest-missing"]`, "-", BrokenImage); err != nil {
			return err
		}
	}
	return nil
}

// brokenTar is a root file system with one file and no programs.
func brokenTar() []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	body := []byte("an image whose command does not exist, for fault tests\n")
	w.WriteHeader(&tar.Header{Name: "README", Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)})
	w.Write(body)
	w.Close()
	return b.Bytes()
}

// removeContainers force-removes every container of the data root (all of
// them are the lab's) with their anonymous volumes, and the networks tests
// made.
func (e *Engine) removeContainers() {
	t := e.t
	if e.daemon.Exited() {
		t.Error("docker lab: dockerd exited before the end of the test")
		return
	}
	ids, err := e.Docker("ps", "-aq")
	if err != nil {
		t.Errorf("docker lab: %v", err)
		return
	}
	if ids != "" {
		if _, err := e.Docker(append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			t.Errorf("docker lab: remove the containers: %v", err)
		}
	}
	if _, err := e.Docker("network", "prune", "-f"); err != nil {
		t.Errorf("docker lab: %v", err)
	}
	if _, err := e.Docker("volume", "prune", "-f"); err != nil {
		t.Errorf("docker lab: %v", err)
	}
	if ids, err := e.Docker("ps", "-aq"); err != nil || ids != "" {
		t.Errorf("docker lab: containers left after removal: %q %v", ids, err)
	}
}

// removeAll is the last step of the teardown, after dockerd has stopped:
// anything of the lab still running is killed and reported, and the
// mounts, cgroups, bridge and files it made are removed.
func (e *Engine) removeAll() {
	t := e.t
	if pids := testlab.KillLeftovers(runDir + "/"); len(pids) > 0 {
		t.Errorf("docker lab: containerd processes outlived dockerd and were killed: %v", pids)
	}
	if pids, err := testlab.KillCgroups(cgroups); err != nil || len(pids) > 0 {
		t.Errorf("docker lab: container processes outlived dockerd and were killed: %v (%v)", pids, err)
	}
	if n := unmount(); n > 0 {
		t.Errorf("docker lab: %d mounts outlived dockerd and were unmounted", n)
	}
	if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
		if _, err := testlab.Run(nil, "ip", "link", "del", bridge); err != nil {
			t.Errorf("docker lab: remove the bridge: %v", err)
		}
	}
	if err := removeLeftovers(); err != nil {
		t.Errorf("docker lab: %v", err)
	}
	if err := os.RemoveAll(runDir); err != nil {
		t.Error(err)
	}
}

// recordLeftovers adds the hostLeftovers missing now to leftoversFile.
func recordLeftovers() error {
	data, _ := os.ReadFile(leftoversFile)
	created := strings.Fields(string(data))
	for _, p := range hostLeftovers {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) && !slices.Contains(created, p) {
			created = append(created, p)
		}
	}
	if err := os.MkdirAll(filepath.Dir(leftoversFile), 0o755); err != nil {
		return err
	}
	return os.WriteFile(leftoversFile, []byte(strings.Join(created, "\n")+"\n"), 0o644)
}

// removeLeftovers removes what leftoversFile lists (with their contents,
// such as the sockets of shims killed after a crash), then the list.
func removeLeftovers() error {
	data, err := os.ReadFile(leftoversFile)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range strings.Fields(string(data)) {
		if slices.Contains(hostLeftovers, p) {
			errs = append(errs, os.RemoveAll(p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.Remove(leftoversFile)
}

// unmount lazily unmounts what is still mounted under the lab's run
// directory or data root (deepest first) and returns how many.
func unmount() int {
	data, _ := os.ReadFile("/proc/self/mounts")
	var points []string
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && (strings.HasPrefix(f[1], runDir+"/") || strings.HasPrefix(f[1], CachePrefix)) {
			points = append(points, f[1])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		testlab.Run(nil, "umount", "-l", points[i])
	}
	return len(points)
}
