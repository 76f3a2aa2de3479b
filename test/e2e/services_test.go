package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/hubd/hubd/core/spawner"
)

// servicesHub is a second hub, beside the shared one, configured with
// named servers, an idle culler and a web page run as hub services, and
// a service known only by its token file.
type servicesHub struct {
	*hubProcess
	dir, public, config string
	dashToken           string // the dashboard service's token file
}

func startServicesHub(t *testing.T) *servicesHub {
	t.Helper()
	for _, f := range []string{"idle_culler.py", "whoami.py"} {
		data, err := os.ReadFile(filepath.Join(repoRoot(), "test/e2e/testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(binDir, f), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := newHubConfig(t, "hubtest-e2e-svc-", "tokens")
	dir := c.dir
	whoami, _ := spawner.FreePort()
	h := &servicesHub{dir: dir, public: c.public, dashToken: dir + "/tokens/dashboard"}
	set := c.set
	set("admin_users", `["`+bob+`"]`)
	set("named_servers", "true")
	set("named_server_limit_per_user", "2")
	// Proxy traffic counts as activity, so the culler spares a server
	// someone is using.
	set("activity", `"both"`)
	// The [[services]] and [[roles]] tables at the end replace these.
	c.drop("services")
	c.drop("roles")
	c.add(fmt.Sprintf(`
[[roles]]
name = "idle-culler"
scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]

[[roles]]
name = "whoami-users"
scopes = ["access:services!service=whoami"]
users = [%q, %q]

[[services]]
name = "culler"
command = ["/usr/bin/python3", %q, "--timeout=60", "--cull-every=2"]
roles = ["idle-culler"]

[[services]]
name = "whoami"
url = "http://127.0.0.1:%d"
command = ["/usr/bin/python3", %q]
display = true

[[services]]
name = "dashboard"
api_token_file = %q
scopes = ["list:services", "read:services", "list:users", "read:users"]
`, alice, bob, filepath.Join(binDir, "idle_culler.py"), whoami, filepath.Join(binDir, "whoami.py"), h.dashToken))
	h.hubProcess = c.start("services")
	h.config = h.hubProcess.config
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range []string{"culler", "whoami"} {
				b, _ := os.ReadFile(filepath.Join(dir, "logs", "service-"+s+".log"))
				t.Logf("service %s log:\n%s", s, b)
			}
		}
	})
	return h
}

// servicePID is what the services API says the service's pid is.
func (h *servicesHub) servicePID(t *testing.T, admin, name string) int {
	t.Helper()
	_, body := h.api(t, "GET", "/services/"+name, admin, nil)
	var m struct{ PID int }
	_ = json.Unmarshal(body, &m)
	return m.PID
}

// envOf reads one variable of a process's environment.
func envOf(pid int, key string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// jupyterHubSchemas compiles our transcription of JupyterHub 5's REST API
// models (see the file's description).
func jupyterHubSchemas(t *testing.T) func(def string, doc []byte) error {
	t.Helper()
	c := jsonschema.NewCompiler()
	path := filepath.Join(repoRoot(), "test/e2e/testdata/jupyterhub5-api.schema.json")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	const id = "https://hubd.invalid/jupyterhub5-api.schema.json"
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	return func(def string, body []byte) error {
		sch, err := c.Compile(id + "#/$defs/" + def)
		if err != nil {
			return err
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			return err
		}
		return sch.Validate(v)
	}
}

// TestServicesAndNamedServers runs real hub services (our stdlib idle
// culler; a page built on JupyterHub's own service library) and named
// servers of Debian's jupyterhub-singleuser under a hub of their own.
func TestServicesAndNamedServers(t *testing.T) {
	need(t)
	h := startServicesHub(t)
	validate := jupyterHubSchemas(t)

	// bob is an admin of this hub (auth.admin_users); his user exists
	// once he has logged in, then root issues him a token on the socket.
	bobs := newBrowserAt(t, h.public)
	if r := bobs.login(bob, bobPW); r.StatusCode != http.StatusFound {
		t.Fatalf("bob's login: %d", r.StatusCode)
	}
	out, err := h.hubd("token", "create", "--user", bob, "--note", "e2e admin", "--expires-in", "1h")
	if err != nil {
		t.Fatalf("hubd token create: %v", err)
	}
	admin := strings.TrimSpace(out)

	t.Run("tokens: bad requests through the CLI", func(t *testing.T) {
		if _, err := h.hubd("token", "create", "--user", bob, "--expires-in", "-1h"); err == nil || !strings.Contains(err.Error(), "past") {
			t.Errorf("a past expiry: %v", err)
		}
		_, err := h.hubd("token", "create", "--service", "culler", "--scopes", "admin:users")
		if err == nil || !strings.Contains(err.Error(), "Not assigning requested scope admin:users") {
			t.Errorf("a culler token with admin:users: %v", err)
		}
		list, err := h.hubd("token", "list", "--user", bob)
		if err != nil || !strings.Contains(list, "e2e admin") {
			t.Errorf("token list: %v\n%s", err, list)
		}
	})

	var cullerPID int
	if err := waitFor(30*time.Second, func() error {
		for _, s := range []string{"culler", "whoami"} {
			if pid := h.servicePID(t, admin, s); !alive(pid) {
				return fmt.Errorf("service %s has pid %d", s, pid)
			}
		}
		cullerPID = h.servicePID(t, admin, "culler")
		return nil
	}); err != nil {
		t.Fatalf("the hub did not start its services: %v\n%s", err, h.logTail())
	}

	t.Run("a config-declared service token passes JupyterHub 5's schemas", func(t *testing.T) {
		raw, err := os.ReadFile(h.dashToken)
		if err != nil {
			t.Fatalf("the hub did not write the dashboard's token file: %v", err)
		}
		if fi, _ := os.Stat(h.dashToken); fi.Mode().Perm() != 0o600 {
			t.Errorf("token file mode %04o; want 0600", fi.Mode().Perm())
		}
		dash := strings.TrimSpace(string(raw))
		status, body := h.api(t, "GET", "/user", dash, nil)
		if status != 200 {
			t.Fatalf("/user: %d %s", status, body)
		}
		if err := validate("RequestIdentity", body); err != nil {
			t.Errorf("/user does not match JupyterHub 5's RequestIdentity: %v\n%s", err, body)
		}
		var self struct{ Kind, Name string }
		_ = json.Unmarshal(body, &self)
		if self.Kind != "service" || self.Name != "dashboard" {
			t.Errorf("/user = %s", body)
		}
		status, body = h.api(t, "GET", "/services", dash, nil)
		if status != 200 {
			t.Fatalf("/services: %d %s", status, body)
		}
		if err := validate("ServiceList", body); err != nil {
			t.Errorf("/services does not match JupyterHub 5's Service model: %v\n%s", err, body)
		}
		var list map[string]map[string]any
		_ = json.Unmarshal(body, &list)
		if len(list) != 3 || list["whoami"]["prefix"] != "/services/whoami/" || list["culler"]["pid"].(float64) <= 0 {
			t.Errorf("/services = %s", body)
		}
		status, body = h.api(t, "GET", "/users/"+bob, dash, nil)
		if err := validate("User", body); status != 200 || err != nil {
			t.Errorf("/users/%s: %d %v\n%s", bob, status, err, body)
		}
		// Beyond its scopes: no servers, no tokens.
		if status, _ := h.api(t, "POST", "/users/"+bob+"/server", dash, nil); status != http.StatusForbidden {
			t.Errorf("the dashboard starting a server: %d; want 403", status)
		}
	})

	t.Run("the culler service holds only its roles", func(t *testing.T) {
		tok := envOf(cullerPID, "JUPYTERHUB_API_TOKEN")
		if tok == "" || envOf(cullerPID, "JUPYTERHUB_API_URL") == "" || envOf(cullerPID, "JUPYTERHUB_SERVICE_NAME") != "culler" {
			t.Fatalf("the culler's environment lacks the hub's variables")
		}
		status, body := h.api(t, "GET", "/user", tok, nil)
		if err := validate("RequestIdentity", body); status != 200 || err != nil {
			t.Fatalf("/user as the culler: %d %v\n%s", status, err, body)
		}
		for _, c := range []struct {
			method, path string
			want         int
		}{
			{"GET", "/users?state=ready", 200},
			{"POST", "/users/" + bob + "/server", 403},
			{"POST", "/users/" + bob + "/tokens", 403},
			{"GET", "/services", 403},
			{"DELETE", "/users/" + bob, 403},
		} {
			if status, body := h.api(t, c.method, c.path, tok, nil); status != c.want {
				t.Errorf("culler %s %s: %d %s; want %d", c.method, c.path, status, body, c.want)
			}
		}
	})

	t.Run("the culler stops an idle named server", func(t *testing.T) {
		status, body := h.api(t, "POST", "/users/"+bob+"/servers/idle", admin, nil)
		if status != 201 && status != 202 {
			t.Fatalf("start bob's named server: %d %s", status, body)
		}
		err := waitFor(150*time.Second, func() error {
			if !strings.Contains(h.logTail(), `server=idle reason="stopped through the API" by=service:culler`) {
				return fmt.Errorf("not culled yet")
			}
			return nil
		})
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(h.dir, "logs", "service-culler.log"))
			t.Fatalf("%v\nculler log:\n%s\nhub log:\n%s", err, b, h.logTail())
		}
		_, body = h.api(t, "GET", "/users/"+bob, admin, nil)
		var u struct{ Servers map[string]any }
		_ = json.Unmarshal(body, &u)
		if _, ok := u.Servers["idle"]; ok {
			t.Errorf("bob/idle is still active: %s", body)
		}
	})

	t.Run("headless chromium: the service through OAuth, a cell on a named server", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(repoRoot(), "test/browser/node_modules/playwright-core")); err != nil {
			t.Fatalf("playwright-core is not installed: run `scripts/deps.sh test`")
		}
		shots := filepath.Join(repoRoot(), "test-artifacts", "e2e-services")
		_ = os.MkdirAll(shots, 0o755)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		script := filepath.Join(repoRoot(), "test/browser/service-and-named.js")
		out, err := exec.CommandContext(ctx, "node", script, h.public, alice, alicePW, "whoami", "lab", shots).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"ok":true`) {
			b, _ := os.ReadFile(filepath.Join(h.dir, "logs", "service-whoami.log"))
			t.Fatalf("browser: %v\n%s\nwhoami log:\n%s\nhub log:\n%s", err, out, b, h.logTail())
		}
		if !strings.Contains(string(out), `"cell":"42"`) || !strings.Contains(string(out), `"service":"Hello, `+alice+`"`) {
			t.Errorf("browser result: %s", out)
		}
		// The server ran as alice, at its own prefix.
		_, body := h.api(t, "GET", "/users/"+alice, admin, nil)
		var u struct {
			Servers map[string]struct{ URL string } `json:"servers"`
		}
		_ = json.Unmarshal(body, &u)
		if u.Servers["lab"].URL != "/user/"+alice+"/lab/" {
			t.Errorf("alice's servers: %s", body)
		}
		if status, body := h.api(t, "DELETE", "/users/"+alice+"/servers/lab", admin, map[string]bool{"remove": true}); status != 204 && status != 202 {
			t.Errorf("stop alice/lab: %d %s", status, body)
		}
	})

	t.Run("a crashed service is restarted", func(t *testing.T) {
		if err := syscall.Kill(cullerPID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := waitFor(30*time.Second, func() error {
			if pid := h.servicePID(t, admin, "culler"); pid == cullerPID || !alive(pid) {
				return fmt.Errorf("culler pid %d", pid)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("the culler was not restarted: %v\n%s", err, h.logTail())
		}
	})

	t.Run("services stop with the hub", func(t *testing.T) {
		pids := []int{h.servicePID(t, admin, "culler"), h.servicePID(t, admin, "whoami")}
		h.stop()
		err := waitFor(20*time.Second, func() error {
			for _, pid := range pids {
				if alive(pid) {
					return fmt.Errorf("service process %d still runs", pid)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(h.logTail(), "service stopped") {
			t.Errorf("the hub did not log its services stopping:\n%s", h.logTail())
		}
	})
}
