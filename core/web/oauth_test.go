package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hubd/hubd/core/web"
	"github.com/hubd/hubd/internal/testutil"
)

const aliceAuthorize = "/hub/api/oauth2/authorize?client_id=jupyterhub-user-alice&redirect_uri=%2Fuser%2Falice%2Foauth_callback&response_type=code&state=st4te"

// exchange is the single-user server's token request (OAuth2
// authorization code, as jupyterhub-singleuser sends it).
func (e *env) exchange(t *testing.T, clientID, secret, code, redirect string) reply {
	t.Helper()
	form := url.Values{"client_id": {clientID}, "client_secret": {secret}, "grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {redirect}}
	return do(t, testutil.NewClient(t), http.MethodPost, e.internal+"/hub/api/oauth2/token", strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "Authorization", "token "+secret)
}

// authorize runs the browser's side and returns the code.
func (b *browser) authorize(t *testing.T, path string) string {
	t.Helper()
	r := b.get(t, path).want(t, http.StatusFound)
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil || loc.Path != "/user/alice/oauth_callback" || loc.Query().Get("state") != "st4te" || len(loc.Query().Get("code")) < 20 {
		t.Fatalf("authorize redirect %q", r.Header.Get("Location"))
	}
	// The browser lands on the server's callback, through the proxy.
	cb := b.get(t, loc.RequestURI()).want(t, http.StatusOK)
	if !strings.HasPrefix(string(cb.body), "mock alice: /user/alice/oauth_callback?code=") {
		t.Errorf("callback reached %q", cb.body)
	}
	return loc.Query().Get("code")
}

func TestOAuthFlow(t *testing.T) {
	e := newEnv(t)
	e.start(t, "alice")
	secret := serverToken(t, "alice")
	const redirect = "/user/alice/oauth_callback"

	// Not logged in: to the login page, and back to the same authorize
	// request after logging in.
	b := e.browser(t)
	r := b.get(t, aliceAuthorize).want(t, http.StatusFound)
	loc, _ := url.Parse(r.Header.Get("Location"))
	if loc.Path != "/hub/login" || loc.Query().Get("next") != aliceAuthorize {
		t.Fatalf("not logged in: redirect to %q", r.Header.Get("Location"))
	}
	action, xsrf := b.loginForm(t, loc.Query().Get("next"))
	r = b.postForm(t, action, url.Values{"username": {"alice"}, "password": {"pw-alice"}, "_xsrf": {xsrf}}).want(t, http.StatusFound)
	if got := r.Header.Get("Location"); got != aliceAuthorize {
		t.Fatalf("after login: redirect to %q, want the authorize request", got)
	}
	code := b.authorize(t, aliceAuthorize)

	// Wrong secret: 401 invalid_client (and the code survives it).
	r = e.exchange(t, "jupyterhub-user-alice", "wrong-secret-0123456789", code, redirect).want(t, http.StatusUnauthorized)
	if r.json(t)["error"] != "invalid_client" || r.Header.Get("WWW-Authenticate") != `Bearer error="invalid_client"` {
		t.Errorf("wrong secret: %s %v", r.body, r.Header)
	}
	r = e.exchange(t, "jupyterhub-user-alice", secret, code, redirect).want(t, http.StatusOK)
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(r.body, &tok); err != nil || tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != 1209600 {
		t.Fatalf("token answer %s", r.body)
	}
	// Reused code.
	r = e.exchange(t, "jupyterhub-user-alice", secret, code, redirect).want(t, http.StatusBadRequest)
	if diff := cmp.Diff(map[string]any{"error": "invalid_grant"}, r.json(t)); diff != "" {
		t.Errorf("reused code (-want +got):\n%s", diff)
	}

	// /user for the OAuth token: only its own server's access scope plus
	// the identify scopes, as JupyterHub 3.0.0 answers.
	m := do(t, testutil.NewClient(t), http.MethodGet, e.internal+"/hub/api/user", nil, "Authorization", "token "+tok.AccessToken).want(t, http.StatusOK).json(t)
	want := []string{"access:servers!server=alice/", "read:users:groups!user=alice", "read:users:name!user=alice"}
	if diff := cmp.Diff(want, scopesOf(t, m)); diff != "" {
		t.Errorf("oauth token scopes (-want +got):\n%s", diff)
	}
	if m["name"] != "alice" || m["session_id"] != b.cookie("/", web.SessionCookie) {
		t.Errorf("oauth /user: %v", m)
	}
	// The OAuth token is not a general API token.
	e.api(t, http.MethodPost, "/users/alice/server", tok.AccessToken, nil).want(t, http.StatusForbidden)

	// A redirect_uri that is not the registered one is refused, no code.
	for _, bad := range []string{"https://evil.example/cb", "/user/alice/oauth_callback/../../bob/", "/user/alice/oauth_callbackx"} {
		p := strings.Replace(aliceAuthorize, "%2Fuser%2Falice%2Foauth_callback", url.QueryEscape(bad), 1)
		r := b.get(t, p).want(t, http.StatusForbidden)
		if strings.Contains(r.Header.Get("Location"), "code=") {
			t.Errorf("redirect_uri %q: got a code", bad)
		}
	}
	// A code is tied to its redirect_uri and its client.
	code = b.authorize(t, aliceAuthorize)
	e.exchange(t, "jupyterhub-user-alice", secret, code, "/user/alice/other").want(t, http.StatusBadRequest)
	b.get(t, strings.Replace(aliceAuthorize, "response_type=code", "response_type=token", 1)).want(t, http.StatusBadRequest)
	b.get(t, strings.Replace(aliceAuthorize, "jupyterhub-user-alice", "jupyterhub-user-nobody", 1)).want(t, http.StatusForbidden)

	// Logging out revokes the tokens of that login.
	b.get(t, "/hub/logout").want(t, http.StatusFound)
	do(t, testutil.NewClient(t), http.MethodGet, e.internal+"/hub/api/user", nil, "Authorization", "token "+tok.AccessToken).want(t, http.StatusForbidden)
}

func TestOAuthOtherUsers(t *testing.T) {
	e := newEnv(t)
	e.start(t, "alice")
	e.start(t, "bob")
	aliceSecret, bobSecret := serverToken(t, "alice"), serverToken(t, "bob")

	// bob cannot get a code for alice's server.
	bob := e.browser(t).login(t, "bob")
	r := bob.get(t, aliceAuthorize).want(t, http.StatusForbidden)
	if strings.Contains(r.Header.Get("Location"), "code=") || !strings.Contains(string(r.body), "permission") {
		t.Errorf("bob at alice's authorize: %s", r.body)
	}
	// An admin can; the token names the admin and grants alice's server.
	admin := e.browser(t).login(t, "admin")
	code := admin.authorize(t, aliceAuthorize)
	// alice's code is not bob's server's to redeem.
	e.exchange(t, "jupyterhub-user-bob", bobSecret, code, "/user/bob/oauth_callback").want(t, http.StatusBadRequest)
	e.exchange(t, "jupyterhub-user-bob", aliceSecret, code, "/user/alice/oauth_callback").want(t, http.StatusUnauthorized)
	// Presenting it to the wrong client burnt it.
	e.exchange(t, "jupyterhub-user-alice", aliceSecret, code, "/user/alice/oauth_callback").want(t, http.StatusBadRequest)
	code = admin.authorize(t, aliceAuthorize)
	tok := e.exchange(t, "jupyterhub-user-alice", aliceSecret, code, "/user/alice/oauth_callback").want(t, http.StatusOK).json(t)["access_token"].(string)
	m := e.api(t, http.MethodGet, "/user", tok, nil).want(t, http.StatusOK).json(t)
	if m["name"] != "admin" {
		t.Errorf("admin's oauth token names %v", m["name"])
	}
	for _, s := range scopesOf(t, m) {
		if strings.HasPrefix(s, "access:servers") && s != "access:servers!server=alice/" {
			t.Errorf("token for alice's server carries %s", s)
		}
	}

	// A token issued for alice's server, used at bob's: its scopes do not
	// cover bob's server (the single-user server's check), and it cannot
	// act on bob through the API.
	alice := e.browser(t).login(t, "alice")
	code = alice.authorize(t, aliceAuthorize)
	tok = e.exchange(t, "jupyterhub-user-alice", aliceSecret, code, "/user/alice/oauth_callback").want(t, http.StatusOK).json(t)["access_token"].(string)
	for _, s := range scopesOf(t, e.api(t, http.MethodGet, "/user", tok, nil).want(t, http.StatusOK).json(t)) {
		if strings.Contains(s, "bob") || s == "access:servers" {
			t.Errorf("alice's oauth token carries %s", s)
		}
	}
	e.api(t, http.MethodDelete, "/users/bob/server", tok, nil).want(t, http.StatusForbidden)
	e.api(t, http.MethodGet, "/users/bob", tok, nil).want(t, http.StatusNotFound)

	// Restarting alice's server revokes the tokens issued through it.
	e.api(t, http.MethodDelete, "/users/alice/server", e.token(t, "alice"), nil).want(t, http.StatusNoContent)
	e.api(t, http.MethodGet, "/user", tok, nil).want(t, http.StatusForbidden)
	alice.get(t, aliceAuthorize).want(t, http.StatusForbidden)
}
