package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The login benchmark's host setup: a group, two accounts and a PAM
// service identical to the one hubd ships, removed again at the end.
const (
	pamService = "hubd-bench"
	pamGroup   = "hubd-bench"
	alice      = "hubd-bench-alice"
	bob        = "hubd-bench-bob"
	alicePW    = "alice-bench-pw-1"
	bobPW      = "bob-bench-pw-1"
)

var hostReady atomic.Bool

func setupHost(o *opts) error {
	pamFile, err := os.ReadFile(filepath.Join(o.repo, "core/host/templates/pam.d-hubd"))
	if err != nil {
		return fmt.Errorf("shipped PAM file: %w", err)
	}
	hostReady.Store(true)
	steps := [][]string{
		{"groupadd", "-f", pamGroup},
		// -G as well as -g: JupyterHub's allowed_groups reads the group's
		// member list, which does not name primary members.
		{"useradd", "-M", "-N", "-g", pamGroup, "-G", pamGroup, "-s", "/usr/sbin/nologin", alice},
		{"useradd", "-M", "-N", "-g", pamGroup, "-G", pamGroup, "-s", "/usr/sbin/nologin", bob},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil && !strings.Contains(string(out), "already exists") {
			return fmt.Errorf("%s: %w: %s", strings.Join(s, " "), err, out)
		}
	}
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(alice + ":" + alicePW + "\n" + bob + ":" + bobPW + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chpasswd: %w: %s", err, out)
	}
	if err := os.WriteFile("/etc/pam.d/"+pamService, pamFile, 0o644); err != nil {
		return fmt.Errorf("PAM service: %w", err)
	}
	return nil
}

func cleanupHost() {
	if !hostReady.Swap(false) {
		return
	}
	_ = exec.Command("userdel", alice).Run()
	_ = exec.Command("userdel", bob).Run()
	_ = exec.Command("groupdel", pamGroup).Run()
	_ = os.Remove("/etc/pam.d/" + pamService)
}

// loginClient posts the login form from its own source address (127.x.y.z:
// the per-address fairness and throttle of hubd see distinct clients).
type loginClient struct {
	base, xsrf string
	c          *http.Client
}

func newLoginClient(base, src string) (*loginClient, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	lc := &loginClient{base: base, c: &http.Client{
		Timeout:       60 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	// hubd wants the form's XSRF token (JupyterHub 3.0 has none): take it
	// once from the login page and send the same one every time.
	resp, err := lc.c.Get(base + "/hub/login")
	if err != nil {
		return nil, fmt.Errorf("login page: %w", err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "_xsrf" {
			lc.xsrf = ck.Value
		}
	}
	return lc, nil
}

// login returns the status: 302 is a successful login.
func (lc *loginClient) login(user, pw string) (int, error) {
	form := url.Values{"username": {user}, "password": {pw}, "_xsrf": {lc.xsrf}}
	req, _ := http.NewRequest(http.MethodPost, lc.base+"/hub/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if lc.xsrf != "" {
		req.AddCookie(&http.Cookie{Name: "_xsrf", Value: lc.xsrf})
	}
	resp, err := lc.c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("login: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// benchLogin is P9 with PAM on both hubs, through the same PAM service.
func benchLogin(ctx context.Context, o *opts, r *report) error {
	if os.Getuid() != 0 {
		return errors.New("needs root (test accounts, PAM service, /etc/shadow)")
	}
	if err := setupHost(o); err != nil {
		return err
	}
	defer cleanupHost()
	h, err := newHubd(o, filepath.Join(o.work, "hubd-login"))
	if err != nil {
		return err
	}
	if err := h.seedDB(ctx, seed{}); err != nil {
		return err
	}
	j, err := newJH(o, filepath.Join(o.work, "jh-login"), "pam")
	if err != nil {
		return err
	}
	d := 5 * time.Second
	if o.quick {
		d = 2 * time.Second
	}
	t := r.table("P9: PAM login",
		fmt.Sprintf("Both hubs check passwords with the same PAM service (a copy of hubd's shipped /etc/pam.d/hubd: pam_unix nodelay) and real accounts. Throughput: 10 clients, each from its own loopback address, posting a correct login form for %s. Under attack: 50 clients from 50 other addresses post wrong passwords for another account as fast as answered while one client logs in correctly every 100 ms for %s; hubd runs with its default throttle (5 failures per user, 20 per address in 5 min), JupyterHub 3.0 has none. Goal: the correct login's p99 ≤ 4 s.", d, d),
		[]string{"hubd", "JupyterHub 3.0"}, [2]string{"hubd", "JupyterHub 3.0"})
	for run := 0; run < o.runs; run++ {
		for _, a := range []struct {
			name  string
			start func() (*proc, time.Duration, error)
			stop  func(*proc)
			base  string
		}{
			{"hubd", func() (*proc, time.Duration, error) { return h.start(o.hubd, "hubd-login") }, func(p *proc) { p.stop(30 * time.Second) }, h.base()},
			{"JupyterHub 3.0", func() (*proc, time.Duration, error) { return j.start("jupyterhub-login") }, j.stop, j.base()},
		} {
			p, _, err := a.start()
			if err != nil {
				return err
			}
			err = loginRun(t, a.name, a.base, d)
			a.stop(p)
			if err != nil {
				return fmt.Errorf("%s: %w", a.name, err)
			}
		}
	}
	return nil
}

func loginRun(t *table, arm, base string, d time.Duration) error {
	// Throughput.
	var ok, bad atomic.Int64
	var mu sync.Mutex
	var ds []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for i := range 10 {
		lc, err := newLoginClient(base, fmt.Sprintf("127.0.0.%d", 10+i))
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				t0 := time.Now()
				code, err := lc.login(alice, alicePW)
				if err != nil || code != http.StatusFound {
					bad.Add(1)
					continue
				}
				ok.Add(1)
				mu.Lock()
				ds = append(ds, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 {
		return fmt.Errorf("no successful login (%d failed)", bad.Load())
	}
	slices.Sort(ds)
	t.add("correct logins/s (10 clients)", arm, float64(ok.Load())/d.Seconds())
	t.add("login p50 ms (10 clients)", arm, percentile(ds, 0.5))

	// A correct login while 50 wrong-password clients run.
	stop := make(chan struct{})
	var attempts atomic.Int64
	var awg sync.WaitGroup
	for i := range 50 {
		lc, err := newLoginClient(base, fmt.Sprintf("127.0.1.%d", 1+i))
		if err != nil {
			close(stop)
			awg.Wait()
			return err
		}
		awg.Add(1)
		go func() {
			defer awg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := lc.login(bob, "wrong-password"); err == nil {
					attempts.Add(1)
				}
			}
		}()
	}
	good, err := newLoginClient(base, "127.0.0.9")
	if err == nil {
		ds = ds[:0]
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			t0 := time.Now()
			code, lerr := good.login(alice, alicePW)
			if lerr != nil || code != http.StatusFound {
				err = fmt.Errorf("correct login under attack: status %d, %v", code, lerr)
				break
			}
			ds = append(ds, time.Since(t0))
		}
	}
	close(stop)
	awg.Wait()
	if err != nil {
		return err
	}
	slices.Sort(ds)
	t.add("under attack: correct login p50 ms", arm, percentile(ds, 0.5))
	t.add("under attack: correct login p99 ms", arm, percentile(ds, 0.99))
	t.add("under attack: wrong-password answers/s", arm, float64(attempts.Load())/d.Seconds())
	return nil
}
