package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testutil"
)

// extraHub is a second hub beside the shared one (same accounts, sudo
// rule and binary), with its own data and configuration.
type extraHub struct {
	*hubProcess
	dir, base string
	ca        *testutil.CA
}

// startExtraHub starts a hub configured with the shared replacements plus
// extra; with tls, it serves HTTPS with a certificate from a fresh CA.
func startExtraHub(t *testing.T, tls bool, extra ...string) *extraHub {
	t.Helper()
	dir, err := os.MkdirTemp("", "hubtest-e2e-extra-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, gid, err := makeHubDirs(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := &extraHub{dir: dir, hubProcess: &hubProcess{log: filepath.Join(dir, "hubd.log"), uid: uid, gid: gid}}
	scheme := "http"
	if tls {
		scheme = "https"
		h.ca = testutil.NewCA(t)
		cert, key := h.issue(t, 100)
		extra = append(extra, `cert = ""`, fmt.Sprintf("cert = %q", cert), `key = ""`, fmt.Sprintf("key = %q", key))
	}
	cfg, public, err := writeHubConfig(dir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	h.base = scheme + "://" + public
	h.config, h.public, h.hubProcess.client = cfg, h.base, h.client(true)
	if err := h.start(); err != nil {
		t.Fatalf("start the hub: %v\n%s", err, h.logTail())
	}
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("hub log:\n%s", h.logTail())
		}
	})
	return h
}

// issue writes a certificate with the given serial (and its key) where
// the hub's configuration points, readable by the hub account only, and
// returns the paths. Each file is replaced atomically, as certbot does.
func (h *extraHub) issue(t *testing.T, serial int64) (cert, key string) {
	t.Helper()
	tmp := t.TempDir()
	c, k := h.ca.Issue(t, tmp, "hub", serial)
	cert, key = filepath.Join(h.dir, "hub.pem"), filepath.Join(h.dir, "hub.key")
	for src, dst := range map[string]string{c: cert, k: key} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		next := dst + ".new"
		if err := os.WriteFile(next, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(next, h.uid, h.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(next, dst); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key
}

// client trusts the hub's CA; h2 offers HTTP/2.
func (h *extraHub) client(h2 bool) *http.Client {
	tr := &http.Transport{ForceAttemptHTTP2: h2, MaxIdleConnsPerHost: 16}
	if h.ca != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: h.ca.Pool()}
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

func (h *extraHub) browser(t *testing.T) *browser {
	b := newBrowserAt(t, h.base)
	b.client.Transport = h.client(true).Transport
	return b
}

// memberWithServer logs name in on this hub and starts their server,
// stopped again when the test ends (before the hub stops: servers outlive
// their hub). Only the processes this start added are waited for: a
// server another test left behind is not this test's failure.
func (h *extraHub) memberWithServer(t *testing.T, name, pw string) *browser {
	t.Helper()
	b := h.browser(t)
	mine := h.startServer(t, b, name, pw)
	t.Cleanup(func() { h.stopServer(t, b, name, mine) })
	return b
}

// startServer starts name's server and returns the server processes it
// added.
func (h *extraHub) startServer(t *testing.T, b *browser, name, pw string) []int {
	t.Helper()
	before := serverPIDs(t, name)
	startServer(t, b, name, pw)
	return newPIDs(t, name, before)
}

// newPIDs lists name's server processes that are not in before.
func newPIDs(t *testing.T, name string, before []int) []int {
	var out []int
	for _, p := range serverPIDs(t, name) {
		if !slices.Contains(before, p) {
			out = append(out, p)
		}
	}
	return out
}

// stopServer stops name's server through the API and waits until the
// processes mine are gone.
func (h *extraHub) stopServer(t *testing.T, b *browser, name string, mine []int) {
	t.Helper()
	r := b.do("DELETE", "/hub/api/users/"+name+"/server", nil, map[string]string{"X-XSRFToken": b.cookie("/hub/", "_xsrf")})
	if body := readAll(r); r.StatusCode != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.StatusCode, body)
	}
	if err := waitFor(15*time.Second, func() error {
		for _, p := range mine {
			if syscall.Kill(p, 0) == nil {
				return fmt.Errorf("still running: %d", p)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// servedSerial is the serial number of the certificate the hub presents.
func (h *extraHub) servedSerial(t *testing.T) string {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(h.base, "https://"), &tls.Config{RootCAs: h.ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// A certificate replaced on disk is served after `hubd restart`, and not
// one request fails meanwhile: HTTP/2 clients, the proxy to a user's
// server and the hub API under steady load across the restart.
func TestTLSRestartServesTheRenewedCertificate(t *testing.T) {
	need(t)
	h := startExtraHub(t, true)
	b := h.memberWithServer(t, bob, bobPW)
	resp, _ := b.follow("/user/" + bob + "/tree")
	readAll(resp)
	if resp.ProtoMajor != 2 {
		t.Errorf("the Go client got %s, want HTTP/2 over TLS", resp.Proto)
	}
	if got := h.servedSerial(t); got != "100" {
		t.Fatalf("served serial %s, want 100", got)
	}

	ok, failed, sample := underLoad(t, b, bob, func() error {
		h.issue(t, 200)
		return waitFor(30*time.Second, func() error { return hubdRestartOf(h.config, "root") })
	})
	if failed != 0 {
		t.Errorf("%d of %d requests failed across the restart: %v", failed, failed+ok, sample)
	}
	if got := h.servedSerial(t); got != "200" {
		t.Errorf("after the restart the hub serves serial %s, want the renewed 200", got)
	}
	t.Logf("%d requests over HTTPS, %d failed, across a restart with a new certificate", ok+failed, failed)
}

// Headless Chromium, trusting the test CA through an NSS database (as a
// browser trusts a site's CA), logs in over HTTPS with HTTP/2, reaches the
// Notebook tree, and runs a kernel over a wss:// websocket through the
// proxy: Go advertises no extended CONNECT, so Chromium opens the
// websocket over HTTP/1.1.
func TestTLSChromiumHTTP2AndKernelWebsocket(t *testing.T) {
	need(t)
	_, err := exec.LookPath("certutil")
	testutil.Require(t, err == nil, "certutil is missing (apt-get install libnss3-tools)")
	h := startExtraHub(t, true)
	home := t.TempDir()
	nssdb := "sql:" + filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(home, "ca.pem")
	if err := os.WriteFile(caFile, h.ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-N", "-d", nssdb, "--empty-password"}, {"-A", "-d", nssdb, "-t", "C,,", "-n", "hubtest-ca", "-i", caFile}} {
		if out, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	script := filepath.Join(repoRoot(), "test/browser/hub-login.js")
	shot := filepath.Join(repoRoot(), "test-artifacts", "e2e-tls-tree.png")
	_ = os.MkdirAll(filepath.Dir(shot), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	before := serverPIDs(t, alice)
	t.Cleanup(func() {
		// The browser started alice's server; stop it as she would.
		mine := newPIDs(t, alice, before)
		b := h.browser(t)
		readAll(b.login(alice, alicePW))
		h.stopServer(t, b, alice, mine)
	})
	cmd := exec.CommandContext(ctx, "node", script, h.base, alice, alicePW, shot)
	cmd.Env = append(os.Environ(), "HOME="+home, "HUB_LOGIN_KERNEL=1")
	out, err := cmd.CombinedOutput()
	var res struct {
		OK       bool   `json:"ok"`
		Protocol string `json:"protocol"`
		Kernel   string `json:"kernel"`
		Error    string `json:"error"`
	}
	_ = json.Unmarshal([]byte(lastJSONLine(string(out))), &res)
	if err != nil || !res.OK {
		t.Fatalf("browser over HTTPS: %v\n%s", err, out)
	}
	if res.Protocol != "h2" {
		t.Errorf("Chromium reached the hub over %q, want h2", res.Protocol)
	}
	if res.Kernel != "42" {
		t.Errorf("kernel over wss:// answered %q, want 42", res.Kernel)
	}
}

func lastJSONLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") {
			return lines[i]
		}
	}
	return ""
}

// spawner.app = "jupyter-server" runs Jupyter Server (Debian's
// python3-jupyter-server) on purpose, and a kernel runs through the proxy
// with a token, as scripts and JupyterLab's API clients use it. The shared
// hub, whose app is "notebook", serves /tree with the same packages
// installed (TestEndToEnd).
func TestJupyterServerAppRunsKernelsThroughTheProxy(t *testing.T) {
	need(t)
	_, err := os.Stat("/usr/lib/python3/dist-packages/jupyter_server")
	testutil.Require(t, err == nil, "python3-jupyter-server is not installed")
	h := startExtraHub(t, false, `app = "notebook"`, `app = "jupyter-server"`)
	b := h.memberWithServer(t, alice, alicePW)
	r := b.do("GET", "/user/"+alice+"/api", nil, nil)
	var api struct{ Version string }
	if err := json.Unmarshal([]byte(readAll(r)), &api); err != nil || !strings.HasPrefix(api.Version, "1.") {
		t.Fatalf("/user/%s/api: %q %v; want Jupyter Server 1.x", alice, api.Version, err)
	}
	// The landing page of bare Jupyter Server is what doctor warns about.
	resp, final := b.follow("/user/" + alice + "/tree")
	readAll(resp)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/tree on bare Jupyter Server: %d at %s; want 404", resp.StatusCode, final)
	}

	// A token of alice's for her own server.
	rr := b.do("POST", "/hub/api/users/"+alice+"/tokens", strings.NewReader(`{"scopes":["access:servers!user=`+alice+`"],"note":"e2e"}`),
		map[string]string{"Content-Type": "application/json", "X-XSRFToken": b.cookie("/hub/", "_xsrf")})
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(readAll(rr)), &tok); err != nil || tok.Token == "" {
		t.Fatalf("create a token: %d %v", rr.StatusCode, err)
	}
	jar, _ := cookiejar.New(nil)
	api2 := &browser{t: t, base: h.base, client: &http.Client{Jar: jar, Timeout: 60 * time.Second}, jar: jar, auth: "token " + tok.Token}
	resp, body := api2.serverAPI("POST", alice, "/api/kernels", `{"name": "python3"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("start a kernel on Jupyter Server: %d %s", resp.StatusCode, body)
	}
	var k struct{ ID string }
	_ = json.Unmarshal([]byte(body), &k)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if got, err := api2.execute(ctx, alice, k.ID, "6*7"); err != nil || got != "42" {
		t.Fatalf("execute 6*7 on Jupyter Server = %q, %v", got, err)
	}
}
