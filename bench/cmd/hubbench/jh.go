package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// jhSetup is one JupyterHub 3.0.0 + CHP 5.3.0 anchor instance.
type jhSetup struct {
	o     *opts
	dir   string
	port  int
	token string
	auth  string // dummy | pam
}

func newJH(o *opts, dir, auth string) (*jhSetup, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("jupyterhub dir: %w", err)
	}
	// Three consecutive ports: public, CHP API, hub.
	var port int
	for range 20 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if portFree(p+1) && portFree(p+2) {
			port = p
			break
		}
	}
	if port == 0 {
		return nil, fmt.Errorf("no three free consecutive ports")
	}
	return &jhSetup{o: o, dir: dir, port: port, token: randomHex(16), auth: auth}, nil
}

func portFree(p int) bool {
	l, err := netListen(p)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func (j *jhSetup) db() string   { return filepath.Join(j.dir, "jupyterhub.sqlite") }
func (j *jhSetup) base() string { return fmt.Sprintf("http://127.0.0.1:%d", j.port) }

// seedDB writes a synthetic DB with JupyterHub's own ORM (bench/jh_seed.py).
func (j *jhSetup) seedDB(s seed) error {
	_ = os.Remove(j.db())
	out, err := exec.Command(pythonJH, filepath.Join(j.o.benchDir, "jh_seed.py"), j.db(), strconv.Itoa(s.users), strconv.Itoa(s.servers),
		strconv.Itoa(s.livePID), strconv.Itoa(s.port), strconv.Itoa(max(s.deadPID, 1))).CombinedOutput()
	if err != nil {
		return fmt.Errorf("jh_seed.py: %w: %s", err, out)
	}
	return nil
}

func (j *jhSetup) saveDB() error    { return copyFile(j.db(), j.db()+".seed") }
func (j *jhSetup) restoreDB() error { return copyFile(j.db()+".seed", j.db()) }

// pythonJH is Debian's interpreter, which has the jupyterhub package (a
// pyenv or venv python3 earlier in PATH would not).
const pythonJH = "/usr/bin/python3"

// start runs JupyterHub (which starts CHP in its process group) and waits
// for its API through the proxy; it returns the time from exec to ready.
func (j *jhSetup) start(name string) (*proc, time.Duration, error) {
	env := []string{
		"BENCH_JH_DIR=" + j.dir, "BENCH_JH_PORT=" + strconv.Itoa(j.port), "BENCH_JH_TOKEN=" + j.token,
		"BENCH_CHP=" + j.o.chp, "BENCH_JH_AUTH=" + j.auth, "BENCH_PAM_SERVICE=" + pamService, "BENCH_PAM_GROUP=" + pamGroup,
		// Debian's paths first: spawned mock servers run /usr/bin/python3.
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	}
	t := time.Now()
	p, err := start(name, filepath.Join(j.dir, "hub.log"), env, "/usr/bin/jupyterhub", "-f", filepath.Join(j.o.benchDir, "jupyterhub_config.py"))
	if err != nil {
		return nil, 0, err
	}
	ready, err := waitHTTP(j.base()+"/hub/api", p, t, 10*time.Minute)
	if err != nil {
		p.stop(20 * time.Second)
		return nil, 0, fmt.Errorf("%w (log %s)", err, filepath.Join(j.dir, "hub.log"))
	}
	return p, ready, nil
}

// stop stops JupyterHub, then its CHP if that outlived it (JupyterHub
// starts CHP in a session of its own, outside our process group).
func (j *jhSetup) stop(p *proc) {
	chp := j.proxyPID()
	p.stop(30 * time.Second)
	if chp > 0 && strings.Contains(cmdline(chp), "configurable-http-proxy") {
		_ = syscall.Kill(chp, syscall.SIGKILL)
	}
}

// proxyPID is CHP's pid, from the pid file JupyterHub writes.
func (j *jhSetup) proxyPID() int {
	b, _ := os.ReadFile(filepath.Join(j.dir, "proxy.pid"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// chpSetup is a standalone CHP 5.3.0 for the proxy benchmarks, with routes
// added through its REST API as JupyterHub does.
type chpSetup struct {
	port, apiPort int
	token         string
	p             *proc
}

func startCHP(o *opts, logPath string) (*chpSetup, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	api, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &chpSetup{port: port, apiPort: api, token: randomHex(16)}
	c.p, err = start("chp", logPath, []string{"CONFIGPROXY_AUTH_TOKEN=" + c.token}, o.chp,
		"--ip", "127.0.0.1", "--port", strconv.Itoa(port), "--api-ip", "127.0.0.1", "--api-port", strconv.Itoa(api), "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	// Without the token the routes API answers 403: that means it is up.
	if _, err := waitStatus(fmt.Sprintf("http://127.0.0.1:%d/api/routes", api), http.StatusForbidden, c.p, time.Now(), 30*time.Second); err != nil {
		c.p.stop(5 * time.Second)
		return nil, err
	}
	return c, nil
}

// addRoutes adds /user/u1/ … /user/uN/ to target, 10 requests at a time
// (JupyterHub's own cap on concurrent proxy API calls).
func (c *chpSetup) addRoutes(n int, target string) error {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 10}}
	jobs := make(chan int)
	errc := make(chan error, 10)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				body, _ := json.Marshal(map[string]any{"target": target, "user": fmt.Sprintf("u%d", i)})
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/api/routes/user/u%d", c.apiPort, i), bytes.NewReader(body))
				req.Header.Set("Authorization", "token "+c.token)
				resp, err := client.Do(req)
				if err != nil {
					errc <- fmt.Errorf("add route: %w", err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					errc <- fmt.Errorf("add route: %s", resp.Status)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := 1; i <= n; i++ {
		select {
		case jobs <- i:
		case err = <-errc:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil && len(errc) > 0 {
		err = <-errc
	}
	return err
}
