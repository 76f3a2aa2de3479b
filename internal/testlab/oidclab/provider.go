// Package oidclab runs a real OpenID Connect provider for tests: Ory Hydra
// (built once by test/lab/oidc/build.sh; in-memory store, plain HTTP) on
// free ports of 127.0.0.1, with this package's login and consent pages
// served from the test process. Hydra does the protocol (discovery,
// authorize, PKCE, token, id_token, userinfo, JWKS, logout); the pages check
// a username and password against the provider's users and grant every
// requested scope.
//
// Claims per scope: profile gives preferred_username and name, email gives
// email and email_verified, groups gives groups. A user's Claims are added
// whatever the scopes and override the others.
//
// Hydra's behaviours that tests meet:
//   - The issuer is exactly Provider.Issuer (no trailing slash), and so is
//     the id_token's "iss".
//   - A redirect_uri must be on 127.0.0.1 as registered (http://localhost is
//     refused); its port is free (RFC 8252), so a hub on any port matches.
//     The token request's redirect_uri must equal the authorize request's.
//   - state must have at least 8 characters.
//   - groups, email and preferred_username appear only when their scope is
//     asked for.
//   - Client authentication must use the registered method:
//     client_secret_post on a client_secret_basic client, or the secret in
//     both the header and the body, gives invalid_client.
//   - With EnforcePKCE a missing code_challenge is reported only after the
//     login, as error=invalid_request on the callback; a challenge sent
//     without a verifier gives invalid_grant at the token endpoint.
//   - A second use of a code gives invalid_grant and revokes the tokens of
//     the first exchange.
//   - Cookies ignore ports: Hydra's cookies and a hub's on 127.0.0.1 share
//     one cookie jar.
//   - Logout at the end-session endpoint takes post_logout_redirect_uri
//     only with an id_token_hint (without one it answers invalid_request),
//     and only a URI registered exactly, port included, on the scheme, host
//     and port of a redirect URI (RegisterHubLogout).
package oidclab

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testutil"
)

// Options configure a provider; the zero value is a provider with one
// client (DefaultClientID) for http://127.0.0.1/hub/oauth_callback on any
// port, the default users, optional PKCE and no remembered logins.
type Options struct {
	// RedirectURIs of the default client.
	RedirectURIs []string
	// AuthMethod of the default client: "client_secret_basic" (default) or
	// "client_secret_post".
	AuthMethod string
	// EnforcePKCE makes Hydra refuse authorization requests without PKCE.
	EnforcePKCE bool
	// Remember has the login page ask Hydra to remember the login: a second
	// authorization with the same cookie jar skips the form.
	Remember bool
}

// The default client's credentials.
const (
	DefaultClientID     = "hubd-test"
	DefaultClientSecret = "hubd-test-secret"
)

// Client is an OAuth client registered with the provider.
type Client struct {
	ID, Secret   string
	RedirectURIs []string
	// AuthMethod: "client_secret_basic" (default) or "client_secret_post".
	AuthMethod string
}

// Provider is a running Hydra with its login pages.
type Provider struct {
	// Issuer is the exact issuer string (discovery, id_token "iss").
	Issuer string
	// DiscoveryURL, AuthorizeURL, TokenURL, UserinfoURL, JWKSURL and
	// EndSessionURL are the public endpoints, as discovery lists them.
	DiscoveryURL, AuthorizeURL, TokenURL, UserinfoURL, JWKSURL, EndSessionURL string
	// AdminURL is Hydra's admin API (no authentication).
	AdminURL string
	// LoginURL is the login page Hydra sends browsers to.
	LoginURL string
	// Client is the client registered at start.
	Client Client

	hydra *testlab.Daemon
	pages *pages
	srv   *http.Server
}

// Start runs a provider until the test ends. The first start on a machine
// builds Hydra (minutes) unless scripts/deps.sh test already did.
func Start(t testing.TB, opt Options) *Provider {
	t.Helper()
	// The build cache lives under /var/cache, and CI runs as root.
	testutil.NeedRoot(t)
	bin, err := hydraBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// The login pages listen first, on a port the kernel picks: Hydra's
	// configuration names them.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{}
	p.LoginURL = "http://" + l.Addr().String() + "/login"
	logf, err := os.OpenFile(filepath.Join(dir, "pages.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.pages = newPages(logf, opt.Remember)
	p.srv = &http.Server{Handler: p.pages.handler(), ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(l)
	t.Cleanup(func() {
		p.srv.Close()
		logf.Close()
	})

	// Hydra cannot take a listening socket from us: pick free ports and
	// try again when another process takes one first.
	for attempt := 1; ; attempt++ {
		err = p.startHydra(t, bin, dir, opt)
		if err == nil {
			break
		}
		if attempt == 3 || p.hydra == nil || !p.hydra.PortTaken() {
			t.Fatalf("oidclab: %v", err)
		}
	}
	p.pages.setAdmin(p.AdminURL)

	p.Client = p.RegisterClient(t, Client{
		ID: DefaultClientID, Secret: DefaultClientSecret,
		RedirectURIs: opt.RedirectURIs, AuthMethod: opt.AuthMethod,
	})
	if err := p.installSigningKey(); err != nil {
		t.Fatalf("oidclab: %v", err)
	}
	for _, u := range []string{p.DiscoveryURL, p.JWKSURL} {
		if err := get(u); err != nil {
			t.Fatalf("oidclab: %v", err)
		}
	}
	return p
}

// installSigningKey gives Hydra its id_token signing key. Left alone, Hydra
// makes a 4096-bit RSA key on the first discovery or JWKS request, which
// takes seconds, and more than 10 s on a busy machine; a 2048-bit RS256
// key (what most providers sign with) takes milliseconds.
func (p *Provider) installSigningKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: "hubtest-" + testlab.RandomHex(4), Algorithm: "RS256", Use: "sig"}
	body, err := json.Marshal(map[string]any{"keys": []jose.JSONWebKey{jwk}})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPut, p.AdminURL+"/admin/keys/hydra.openid.id-token", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("signing key: %s: %s", resp.Status, b)
	}
	return nil
}

func (p *Provider) startHydra(t testing.TB, bin, dir string, opt Options) error {
	ports, err := testlab.FreePorts(2)
	if err != nil {
		return err
	}
	public := "127.0.0.1:" + strconv.Itoa(ports[0])
	p.Issuer = "http://" + public
	p.AdminURL = "http://127.0.0.1:" + strconv.Itoa(ports[1])
	p.DiscoveryURL = p.Issuer + "/.well-known/openid-configuration"
	p.AuthorizeURL = p.Issuer + "/oauth2/auth"
	p.TokenURL = p.Issuer + "/oauth2/token"
	p.UserinfoURL = p.Issuer + "/userinfo"
	p.JWKSURL = p.Issuer + "/.well-known/jwks.json"
	p.EndSessionURL = p.Issuer + "/oauth2/sessions/logout"

	cfg := filepath.Join(dir, "hydra.yml")
	if err := os.WriteFile(cfg, hydraConfig(p, ports, opt), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out", "-c", cfg)
	cmd.Env = append(os.Environ(), "SQA_OPT_OUT=true")
	p.hydra, err = testlab.StartDaemon(t, "hydra", filepath.Join(dir, "hydra.log"), cmd)
	if err != nil {
		return err
	}
	return p.hydra.WaitReady(30*time.Second, func() error { return get(p.AdminURL + "/health/ready") })
}

// hydraConfig is Hydra's configuration, in JSON (a subset of YAML). A random
// system secret per start: nothing issued by an earlier run stays valid.
func hydraConfig(p *Provider, ports []int, opt Options) []byte {
	login := strings.TrimSuffix(p.LoginURL, "/login")
	cfg := map[string]any{
		"dsn": "memory",
		"serve": map[string]any{
			"public": map[string]any{"host": "127.0.0.1", "port": ports[0]},
			"admin":  map[string]any{"host": "127.0.0.1", "port": ports[1]},
		},
		"urls": map[string]any{
			"self":    map[string]any{"issuer": p.Issuer},
			"login":   login + "/login",
			"consent": login + "/consent",
			"logout":  login + "/logout",
		},
		"secrets": map[string]any{"system": []string{testlab.RandomHex(24)}},
		"oauth2":  map[string]any{"pkce": map[string]any{"enforced": opt.EnforcePKCE}, "expose_internal_errors": true},
		"webfinger": map[string]any{"oidc_discovery": map[string]any{
			"supported_scope":  []string{"profile", "email", "groups"},
			"supported_claims": []string{"sub", "name", "preferred_username", "email", "email_verified", "groups"},
		}},
		"log": map[string]any{"level": "info", "leak_sensitive_values": true},
	}
	b, _ := json.Marshal(cfg)
	return b
}

// hydraBinary runs the build script, which returns at once when the cached
// binary is current, and returns the binary's path.
func hydraBinary() (string, error) {
	script, err := testlab.RepoFile("test/lab/oidc/build.sh")
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.Command(script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", script, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return filepath.Join(strings.TrimSpace(string(out)), "hydra"), nil
}

// RegisterClient registers another client. Empty fields get defaults: a
// random ID and secret, http://127.0.0.1/hub/oauth_callback (any port),
// client_secret_basic.
func (p *Provider) RegisterClient(t testing.TB, c Client) Client {
	t.Helper()
	if c.ID == "" {
		c.ID = "hubtest-" + testlab.RandomHex(6)
	}
	if c.Secret == "" {
		c.Secret = testlab.RandomHex(16)
	}
	if len(c.RedirectURIs) == 0 {
		c.RedirectURIs = []string{"http://127.0.0.1/hub/oauth_callback"}
	}
	if c.AuthMethod == "" {
		c.AuthMethod = "client_secret_basic"
	}
	var logout []string
	for _, u := range c.RedirectURIs {
		logout = append(logout, strings.TrimSuffix(u, "/oauth_callback")+"/logout")
	}
	body, _ := json.Marshal(map[string]any{
		"client_id": c.ID, "client_secret": c.Secret, "client_name": "hubd tests",
		"redirect_uris": c.RedirectURIs, "post_logout_redirect_uris": logout,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid offline_access profile email groups", "token_endpoint_auth_method": c.AuthMethod,
	})
	resp, err := http.Post(p.AdminURL+"/admin/clients", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("oidclab: register client %s: %v", c.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("oidclab: register client %s: %s: %s", c.ID, resp.Status, b)
	}
	return c
}

// RegisterHubLogout lets a logout through the client return to the hub at
// hubURL (http://127.0.0.1:<port>): to its login page, /hub/login. Hydra
// compares post-logout URIs exactly, port included, and wants each on the
// scheme, host and port of a redirect URI, so the hub's own callback URL
// is registered too.
func (p *Provider) RegisterHubLogout(t testing.TB, clientID, hubURL string) {
	t.Helper()
	body, _ := json.Marshal([]map[string]any{
		{"op": "add", "path": "/redirect_uris/-", "value": hubURL + "/hub/oauth_callback"},
		{"op": "replace", "path": "/post_logout_redirect_uris", "value": []string{hubURL + "/hub/login"}},
	})
	req, err := http.NewRequest(http.MethodPatch, p.AdminURL+"/admin/clients/"+url.PathEscape(clientID), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("oidclab: logout of %s to %s: %v", clientID, hubURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("oidclab: logout of %s to %s: %s: %s", clientID, hubURL, resp.Status, b)
	}
}

// AddUser adds a user (or replaces one with the same Username) for the
// following logins.
func (p *Provider) AddUser(u User) { p.pages.addUser(u) }

// Freeze stops Hydra's process (SIGSTOP): connections to every endpoint are
// accepted but never answered, as with a provider that hangs. Thaw undoes it.
func (p *Provider) Freeze(t testing.TB) {
	t.Helper()
	p.hydra.Freeze(t)
}

// Thaw lets a frozen provider answer again.
func (p *Provider) Thaw(t testing.TB) {
	t.Helper()
	p.hydra.Thaw(t)
}

// Stop ends Hydra and the login pages before the test ends, freeing their
// ports: requests are then refused.
func (p *Provider) Stop(t testing.TB) {
	t.Helper()
	if err := p.hydra.Stop(); err != nil {
		t.Error(err)
	}
	p.srv.Close()
}

func get(u string) error {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}
