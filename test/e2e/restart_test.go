package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// readyCount counts the shared hub's "hub ready" log lines: one per
// (re)start.
func readyCount() int { return env.hub.readyCount() }

func (p *hubProcess) readyCount() int {
	b, _ := os.ReadFile(p.log)
	return strings.Count(string(b), `msg="hub ready"`)
}

// load sends requests through the proxy and to the hub API until stop is
// closed, counting failures. The Go client retries idempotent requests on
// connections closed while idle, as browsers do.
func load(b *browser, name string, stop <-chan struct{}) (ok, failed *atomic.Int64, errs chan string, wg *sync.WaitGroup) {
	ok, failed, errs, wg = new(atomic.Int64), new(atomic.Int64), make(chan string, 100), new(sync.WaitGroup)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths := []string{"/user/" + name + "/api/status", "/hub/api"}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", b.base+paths[n%2], nil)
				var reused, idle bool
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(i httptrace.GotConnInfo) { reused, idle = i.Reused, i.WasIdle },
				}))
				resp, err := b.client.Do(req)
				if err != nil {
					err = fmt.Errorf("%w (connection reused %v, was idle %v)", err, reused, idle)
				}
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok.Add(1)
						continue
					}
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				failed.Add(1)
				select {
				case errs <- fmt.Sprintf("%s: %v", paths[n%2], err):
				default:
				}
			}
		}()
	}
	return ok, failed, errs, wg
}

// underLoad keeps the load of load on name's server and the hub API while
// during runs, and a moment after, then returns how many requests went
// through, how many failed and the first failures. A during that fails
// fails the test.
func underLoad(t *testing.T, b *browser, name string, during func() error) (ok, failed int64, sample []string) {
	t.Helper()
	stop := make(chan struct{})
	okc, failc, errs, wg := load(b, name, stop)
	err := during()
	if err == nil {
		target := okc.Load() + 20
		_ = waitFor(10*time.Second, func() error {
			if okc.Load() < target {
				return fmt.Errorf("waiting")
			}
			return nil
		})
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		sample = append(sample, e)
	}
	if err != nil {
		t.Fatal(err)
	}
	return okc.Load(), failc.Load(), sample
}

func TestRestartUnderLoadKeepsEveryone(t *testing.T) {
	need(t)
	b := newBrowser(t)
	startServer(t, b, bob, bobPW)
	resp, _ := b.follow("/user/" + bob + "/tree") // OAuth: the browser's cookie for the server
	readAll(resp)
	pids := fmt.Sprint(serverPIDs(t, bob))

	ok, failed, sample := underLoad(t, b, bob, func() error {
		for i := 0; i < 10; i++ {
			// `hubd restart` waits until the new process answers; the rate
			// limit (1 s in this config) may ask it to try again.
			// Alternate `hubd restart` (admin socket) and SIGHUP (what
			// `systemctl reload hubd` sends).
			restart := func() error { return hubdRestart("root") }
			if i%2 == 1 {
				restart = func() error {
					before := readyCount()
					env.hub.cmd.Process.Signal(syscall.SIGHUP)
					return waitFor(30*time.Second, func() error {
						if readyCount() <= before {
							return fmt.Errorf("not ready yet")
						}
						return nil
					})
				}
			}
			if err := waitFor(30*time.Second, restart); err != nil {
				return fmt.Errorf("restart %d: %w\n%s", i+1, err, hubLog())
			}
		}
		return nil
	})
	if failed != 0 {
		t.Errorf("%d of %d requests failed across 10 restarts; first errors: %v", failed, failed+ok, sample)
	}
	if ok < 100 {
		t.Errorf("only %d requests went through; the load was not steady", ok)
	}
	if got := fmt.Sprint(serverPIDs(t, bob)); got != pids {
		t.Errorf("server pids changed across restarts: %s → %s", pids, got)
	}
	t.Logf("%d requests, %d failed, across 10 restarts", ok+failed, failed)
}

// hubdRestart runs `hubd restart` on the shared hub as the given account.
func hubdRestart(as string) error { return hubdRestartOf(env.config, as) }

func hubdRestartOf(config, as string) error {
	args := []string{"restart", "--config", config}
	cmd := exec.Command(helperBin, args...)
	if as != "root" {
		cmd = exec.Command("setpriv", append([]string{"--reuid=" + as, "--regid=" + as, "--init-groups", "--", helperBin}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	if !strings.Contains(string(out), "hub restarted") {
		return fmt.Errorf("unexpected output: %s", out)
	}
	return nil
}

func TestRestartHubByMembersOnly(t *testing.T) {
	need(t)
	if err := waitFor(30*time.Second, func() error { return hubdRestart(alice) }); err != nil {
		t.Fatalf("member restart: %v\n%s", err, hubLog())
	}
	err := hubdRestart(carol)
	if err == nil || !strings.Contains(err.Error(), "group") {
		t.Fatalf("non-member restart: %v; want a refusal naming the group", err)
	}
	// The audit log records the member's restart with their uid: check the
	// hub's log line for it.
	if !strings.Contains(hubLog(), "requested_by="+alice) {
		t.Errorf("restart by %s not logged:\n%s", alice, hubLog())
	}
}

func TestUpgradeThenRestartRunsTheNewBinary(t *testing.T) {
	need(t)
	b := newBrowser(t)
	startServer(t, b, alice, alicePW)
	pids := fmt.Sprint(serverPIDs(t, alice))

	// Install a new build over the binary the hub runs, as a package upgrade
	// does (write beside, rename over).
	next := filepath.Join(binDir, ".hubd.new")
	build := exec.Command("go", "build", "-ldflags", "-X github.com/hubd/hubd/internal/version.Version=9.9.9-upgraded", "-o", next, "./cmd/hubd")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if err := os.Rename(next, helperBin); err != nil {
		t.Fatal(err)
	}
	before := readyCount()
	if err := env.hub.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(60*time.Second, func() error {
		if readyCount() <= before {
			return fmt.Errorf("not ready again yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, hubLog())
	}
	if !strings.Contains(hubLog(), "9.9.9-upgraded") {
		t.Errorf("the restarted hub is not the upgraded binary:\n%s", hubLog())
	}
	if got := fmt.Sprint(serverPIDs(t, alice)); got != pids {
		t.Errorf("server pids changed across the upgrade: %s → %s", pids, got)
	}
	r := b.do("GET", "/user/"+alice+"/api", nil, nil)
	readAll(r)
	if r.StatusCode != 200 {
		t.Errorf("alice's server after the upgrade: %d", r.StatusCode)
	}
}
