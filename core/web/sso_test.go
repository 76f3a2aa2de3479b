package web_test

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/web"
	"github.com/hubd/hubd/internal/testlab/oidclab"
	"github.com/hubd/hubd/internal/testutil"
)

// ssoEnv is a hub offering PAM (fake) and single sign-on through a real
// OpenID Connect provider (Hydra, oidclab): the default users are in
// hubtest-users, hubtest-oidc1 also in hubtest-admins.
type ssoEnv struct {
	*env
	idp *oidclab.Provider
}

func newSSOEnv(t *testing.T, tune ...func(*config.Config)) *ssoEnv {
	t.Helper()
	return ssoEnvWith(t, oidclab.Start(t, oidclab.Options{EnforcePKCE: true}), tune...)
}

// ssoEnvWith is a hub signing in with idp.
func ssoEnvWith(t *testing.T, idp *oidclab.Provider, tune ...func(*config.Config)) *ssoEnv {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "client_secret")
	if err := os.WriteFile(secret, []byte(idp.Client.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, append([]func(*config.Config){func(c *config.Config) {
		c.Auth.Methods = []string{config.MethodPAM, config.MethodOIDC}
		o := &c.Auth.OIDC
		o.Name, o.Issuer, o.ClientID, o.ClientSecretFile = "Hydra", idp.Issuer, idp.Client.ID, secret
		o.Scopes = []string{"openid", "profile", "email", "groups"}
		o.AllowedGroups, o.AdminGroups = []string{"hubtest-users"}, []string{"hubtest-admins"}
		o.Timeout = config.Duration(3 * time.Second)
	}}, tune...)...)
	return &ssoEnv{env: e, idp: idp}
}

// begin follows the login page's button: the hub's redirect to the
// provider's authorization URL.
func (s *ssoEnv) begin(t *testing.T, b *browser, next string) *url.URL {
	t.Helper()
	r := b.get(t, "/hub/oauth_login?next="+url.QueryEscape(next)).want(t, http.StatusFound)
	u, err := url.Parse(r.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(u.String(), s.idp.AuthorizeURL) {
		t.Fatalf("oauth_login redirects to %q, want the provider's %s", r.Header.Get("Location"), s.idp.AuthorizeURL)
	}
	return u
}

// atProvider logs user in at the provider and returns the hub callback
// the provider sends the browser to (not opened).
func (s *ssoEnv) atProvider(t *testing.T, b *browser, authURL *url.URL, user, password string) *url.URL {
	t.Helper()
	cb, err := s.idp.Login(t.Context(), b.c, authURL.String(), user, password)
	if err != nil {
		t.Fatal(err)
	}
	if cb.Path != "/hub/oauth_callback" {
		t.Fatalf("provider sent the browser to %s", cb)
	}
	return cb
}

// signIn is the whole round trip; it returns the hub's answer to the
// callback.
func (s *ssoEnv) signIn(t *testing.T, b *browser, user, password, next string) reply {
	t.Helper()
	cb := s.atProvider(t, b, s.begin(t, b, next), user, password)
	return b.get(t, cb.RequestURI())
}

// wantRefusal checks a refusal page: status, the reason, a way back, no
// login cookie.
func wantRefusal(t *testing.T, b *browser, r reply, status int, has string) {
	t.Helper()
	r.want(t, status)
	body := string(r.body)
	if !strings.Contains(body, has) || !strings.Contains(body, `id="login_link"`) {
		t.Errorf("refusal page lacks %q or the login link:\n%s", has, body)
	}
	if b.cookie("/hub/", web.LoginCookie) != "" {
		t.Error("a refused sign-in set the login cookie")
	}
}

// TestSSOLogin: the login page offers both methods; signing in through
// the provider lands on next with a session; admin follows the groups
// claim; /hub/api/info names both methods.
func TestSSOLogin(t *testing.T) {
	s := newSSOEnv(t)
	b := s.browser(t)
	page := string(b.get(t, "/hub/login").want(t, http.StatusOK).body)
	if !strings.Contains(page, `id="sso_login"`) || !strings.Contains(page, "Sign in with Hydra") || !strings.Contains(page, `id="password_input"`) {
		t.Errorf("login page does not offer both methods:\n%s", page)
	}
	r := s.signIn(t, b, "hubtest-oidc1", "hubtest-oidc1-pw", "/hub/home").want(t, http.StatusFound)
	if loc := r.Header.Get("Location"); loc != "/hub/home" {
		t.Errorf("after sign-in: Location %q, want /hub/home", loc)
	}
	b.get(t, "/hub/home").want(t, http.StatusOK)
	if u := s.user(t, "hubtest-oidc1"); !u.Admin || u.Method != "oidc" {
		t.Errorf("hubtest-oidc1: %+v; want an admin bound to oidc", u)
	}
	b2 := s.browser(t)
	s.signIn(t, b2, "hubtest-oidc2", "hubtest-oidc2-pw", "").want(t, http.StatusFound)
	if u := s.user(t, "hubtest-oidc2"); u.Admin {
		t.Errorf("hubtest-oidc2 is an admin without the admin group")
	}
	info := s.api(t, http.MethodGet, "/info", s.token(t, "hubtest-oidc1"), nil).want(t, http.StatusOK)
	if !strings.Contains(string(info.body), `"class":"hubd.pam+oidc"`) {
		t.Errorf("/hub/api/info: %s", info.body)
	}
	// Logging out ends the hub session.
	b.get(t, "/hub/logout").want(t, http.StatusFound)
	b.get(t, "/hub/home").want(t, http.StatusFound)
}

// TestSSORules: refused by group (with the reason), the username map, a
// second identity for an existing name refused (not merged).
func TestSSORules(t *testing.T) {
	s := newSSOEnv(t, func(c *config.Config) {
		c.Auth.OIDC.UsernameMap = map[string]string{"alice.smith": "hubtest-mapped"}
		c.Auth.OIDC.StripDomains = []string{"example.test"}
	})
	s.idp.AddUser(oidclab.User{Username: "hubtest-outsider", Password: "pw-1", Groups: []string{"elsewhere"}})
	s.idp.AddUser(oidclab.User{Username: "hubtest-nogroups", Password: "pw-1"})
	s.idp.AddUser(oidclab.User{Username: "hubtest-alice", Password: "pw-1", Groups: []string{"hubtest-users"},
		Claims: map[string]any{"preferred_username": "Alice.Smith@example.test"}})
	s.idp.AddUser(oidclab.User{Username: "hubtest-impostor", Password: "pw-1", Groups: []string{"hubtest-users", "hubtest-admins"},
		Claims: map[string]any{"preferred_username": "hubtest-oidc2"}})

	b := s.browser(t)
	wantRefusal(t, b, s.signIn(t, b, "hubtest-outsider", "pw-1", ""), http.StatusForbidden, "hubtest-outsider is not in any of the groups allowed")
	b = s.browser(t)
	wantRefusal(t, b, s.signIn(t, b, "hubtest-nogroups", "pw-1", ""), http.StatusForbidden, "not in any of the groups allowed")

	s.signIn(t, s.browser(t), "hubtest-alice", "pw-1", "").want(t, http.StatusFound)
	if u := s.user(t, "hubtest-mapped"); u.Method != "oidc" {
		t.Errorf("mapped user: %+v", u)
	}

	s.signIn(t, s.browser(t), "hubtest-oidc2", "hubtest-oidc2-pw", "").want(t, http.StatusFound)
	b = s.browser(t)
	wantRefusal(t, b, s.signIn(t, b, "hubtest-impostor", "pw-1", ""), http.StatusForbidden, "hubtest-oidc2 already belongs to another login")
	if u := s.user(t, "hubtest-oidc2"); u.Admin {
		t.Error("the refused impostor's admin group reached hubtest-oidc2")
	}
	if !strings.Contains(s.logs.String(), "hubd user unlink hubtest-oidc2") {
		t.Errorf("the refusal's log does not name the way out:\n%s", s.logs.String())
	}
	// The admin unlinks the name (hubd user unlink): the other login
	// takes it and is the same hub user.
	owner := s.user(t, "hubtest-oidc2")
	if _, err := s.store.Unbind(t.Context(), owner.ID); err != nil {
		t.Fatal(err)
	}
	s.signIn(t, s.browser(t), "hubtest-impostor", "pw-1", "").want(t, http.StatusFound)
	if u := s.user(t, "hubtest-oidc2"); u.ID != owner.ID || !u.Admin {
		t.Errorf("after the unlink: %+v; want user %d, now an admin by the new login's groups", u, owner.ID)
	}
}

// TestSSOHostileClaims: claims no Linux name can be, each refused with a
// page that says so, and no user created.
func TestSSOHostileClaims(t *testing.T) {
	s := newSSOEnv(t)
	for i, name := range []string{"../root", "-rf", strings.Repeat("x", 10<<10), "\u0430dmin", "\uff52\uff4f\uff4f\uff54", "root", ""} {
		user := "hubtest-hostile" + string(rune('a'+i))
		s.idp.AddUser(oidclab.User{Username: user, Password: "pw-1", Groups: []string{"hubtest-users"},
			Claims: map[string]any{"preferred_username": name}})
		b := s.browser(t)
		r := s.signIn(t, b, user, "pw-1", "")
		wantRefusal(t, b, r, http.StatusForbidden, "")
		if !strings.Contains(string(r.body), "cannot be used on this server") && !strings.Contains(string(r.body), "root account") &&
			!strings.Contains(string(r.body), "did not say who you are") {
			t.Errorf("claim %.40q: page does not say why:\n%.2000s", name, r.body)
		}
		if len(r.body) > 8<<10 {
			t.Errorf("claim %.40q: a %d-byte page; the claim must not be echoed whole", name, len(r.body))
		}
	}
	if n, _ := s.store.CountUsers(t.Context()); n != 0 {
		t.Errorf("%d users after hostile claims; want none", n)
	}
}

// TestSSOState: a callback must carry this browser's state of a login
// under way, once.
func TestSSOState(t *testing.T) {
	s := newSSOEnv(t)
	b := s.browser(t)
	cb := s.atProvider(t, b, s.begin(t, b, ""), "hubtest-oidc2", "hubtest-oidc2-pw")

	strip := func(u *url.URL, key, value string) string {
		q := u.Query()
		if value == "" {
			q.Del(key)
		} else {
			q.Set(key, value)
		}
		return u.Path + "?" + q.Encode()
	}
	// Missing and forged state.
	wantRefusal(t, b, b.get(t, strip(cb, "state", "")), http.StatusForbidden, "could not be verified")
	wantRefusal(t, b, b.get(t, strip(cb, "state", "forged-state-123456789")), http.StatusForbidden, "could not be verified")
	// The real callback in another browser (no state cookie).
	other := s.browser(t)
	wantRefusal(t, other, other.get(t, cb.RequestURI()), http.StatusForbidden, "could not be verified")

	// A fresh login; its callback works once, and a replay is refused.
	b = s.browser(t)
	cb = s.atProvider(t, b, s.begin(t, b, ""), "hubtest-oidc2", "hubtest-oidc2-pw")
	stateCookie := b.cookie("/hub/", "hubd-oauth-state")
	b.get(t, cb.RequestURI()).want(t, http.StatusFound)
	replay := s.browser(t)
	u, _ := url.Parse(s.url + "/hub/")
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "hubd-oauth-state", Value: stateCookie, Path: "/hub/"}})
	wantRefusal(t, replay, replay.get(t, cb.RequestURI()), http.StatusForbidden, "could not be verified")

	// The provider's error on the callback.
	b = s.browser(t)
	s.begin(t, b, "")
	state := b.cookie("/hub/", "hubd-oauth-state")
	wantRefusal(t, b, b.get(t, "/hub/oauth_callback?error=access_denied&error_description=no+way&state="+state), http.StatusForbidden, "did not sign you in")
}

// TestSSOWrongNonce: an ID token whose nonce is not the login's is
// refused (the authorization request's nonce changed on its way).
func TestSSOWrongNonce(t *testing.T) {
	s := newSSOEnv(t)
	b := s.browser(t)
	auth := s.begin(t, b, "")
	q := auth.Query()
	q.Set("nonce", "hubtest-another-nonce-0123456789")
	auth.RawQuery = q.Encode()
	cb := s.atProvider(t, b, auth, "hubtest-oidc2", "hubtest-oidc2-pw")
	wantRefusal(t, b, b.get(t, cb.RequestURI()), http.StatusForbidden, "could not be verified")
	if n, _ := s.store.CountUsers(t.Context()); n != 0 {
		t.Errorf("%d users after a wrong nonce", n)
	}
	if !strings.Contains(s.logs.String(), "does not match this login's") {
		t.Errorf("the refusal was not for the nonce:\n%s", s.logs)
	}
}

// TestSSOProviderDown: a provider that hangs or is gone gives a clear
// page (within auth.oidc.timeout, 3 s here), and password logins go on
// meanwhile.
func TestSSOProviderDown(t *testing.T) {
	s := newSSOEnv(t)
	// Discovery happened once; a hanging provider then fails the token
	// request.
	b := s.browser(t)
	cb := s.atProvider(t, b, s.begin(t, b, ""), "hubtest-oidc2", "hubtest-oidc2-pw")
	s.idp.Freeze(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		r := b.get(t, cb.RequestURI())
		wantRefusal(t, b, r, http.StatusServiceUnavailable, "Hydra is not answering")
	})
	s.browser(t).login(t, "alice") // the password form meanwhile
	wg.Wait()
	s.idp.Thaw(t)

	// Gone: a fresh hub (nothing discovered yet) starts, and discovery
	// fails at the first sign-in.
	s.idp.Stop(t)
	fresh := ssoEnvWith(t, s.idp)
	r := fresh.browser(t).get(t, "/hub/oauth_login").want(t, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "Hydra is not answering") {
		t.Errorf("provider gone:\n%s", r.body)
	}
	fresh.browser(t).login(t, "alice")
}

// TestSSOLogoutAtProvider: with logout_from_provider, logout sends the
// login's ID token (kept on the hub, in no cookie) as id_token_hint, the
// provider ends its session and sends the browser back to the hub's
// login page, and the next sign-in shows the provider's login form again
// although the provider remembers logins.
func TestSSOLogoutAtProvider(t *testing.T) {
	idp := oidclab.Start(t, oidclab.Options{EnforcePKCE: true, Remember: true})
	s := ssoEnvWith(t, idp, func(c *config.Config) { c.Auth.OIDC.LogoutFromProvider = true })
	idp.RegisterHubLogout(t, idp.Client.ID, s.url)
	ctx := t.Context()
	b := s.browser(t)
	s.signIn(t, b, "hubtest-oidc2", "hubtest-oidc2-pw", "").want(t, http.StatusFound)

	// The ID token is with the session, and in no cookie of the browser.
	var idToken string
	if err := testutil.RawDB(t, s.cfg.Data.DB).QueryRow(`SELECT id_token FROM login_sessions`).Scan(&idToken); err != nil {
		t.Fatal(err)
	}
	if strings.Count(idToken, ".") != 2 {
		t.Fatalf("session's ID token %q is not a JWT", idToken)
	}
	payload := strings.Split(idToken, ".")[1]
	for _, site := range []string{s.url + "/hub/", s.url + "/", idp.Issuer + "/", idp.LoginURL} {
		u, _ := url.Parse(site)
		for _, c := range b.c.Jar.Cookies(u) {
			if strings.Contains(c.Value, payload) {
				t.Errorf("cookie %s for %s holds the ID token", c.Name, site)
			}
		}
	}

	// The provider remembers this browser: a sign-in skips its form.
	if _, err := idp.Follow(ctx, b.c, s.begin(t, b, "").String()); err != nil {
		t.Fatalf("before the logout, a sign-in of a remembered login: %v", err)
	}

	r := b.get(t, "/hub/logout").want(t, http.StatusFound)
	end, err := url.Parse(r.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(end.String(), idp.EndSessionURL+"?") {
		t.Fatalf("logout sends the browser to %q, want the provider's end-session endpoint", r.Header.Get("Location"))
	}
	q := end.Query()
	if q.Get("id_token_hint") != idToken || q.Get("client_id") != idp.Client.ID || q.Get("post_logout_redirect_uri") != s.url+"/hub/login" {
		t.Errorf("end-session parameters %v; want the session's ID token, the client id and the hub's login page", q)
	}
	back, err := idp.Follow(ctx, b.c, end.String())
	if err != nil || back.String() != s.url+"/hub/login" {
		t.Fatalf("the provider's logout ends at %v, %v; want the hub's login page", back, err)
	}
	b.get(t, back.RequestURI()).want(t, http.StatusOK)
	b.get(t, "/hub/home").want(t, http.StatusFound)
	var sessions int
	testutil.RawDB(t, s.cfg.Data.DB).QueryRow(`SELECT count(*) FROM login_sessions`).Scan(&sessions)
	if sessions != 0 {
		t.Errorf("%d sessions after the logout, want none", sessions)
	}

	// The provider forgot the login: the next sign-in shows its form.
	auth := s.begin(t, b, "")
	if _, err := idp.Follow(ctx, b.c, auth.String()); !errors.Is(err, oidclab.ErrLoginForm) {
		t.Fatalf("after the logout, a sign-in: %v; want the provider's login form", err)
	}
	s.signIn(t, b, "hubtest-oidc2", "hubtest-oidc2-pw", "").want(t, http.StatusFound)
	b.get(t, "/hub/home").want(t, http.StatusOK)
}

// TestLoggedOutURL: behind a proxy (auth.oidc.redirect_url set), the
// provider sends a logout back beside the registered callback.
func TestLoggedOutURL(t *testing.T) {
	reached := "http://127.0.0.1:8000/hub/login"
	for redirect, want := range map[string]string{
		"": reached,
		"https://hub.example.org/jupyter/hub/oauth_callback": "https://hub.example.org/jupyter/hub/login",
		"https://hub.example.org/custom-callback":            reached,
	} {
		if got := web.LoggedOutURL(redirect, reached); got != want {
			t.Errorf("redirect_url %q: %q, want %q", redirect, got, want)
		}
	}
}
