package oidclab

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// User is an account of the provider.
type User struct {
	Username, Password string
	// Sub is the subject; Username when empty.
	Sub   string
	Email string
	Name  string
	// Groups is the groups claim; nil leaves the claim out.
	Groups []string
	// Claims are added whatever the scopes and override the others, e.g.
	// {"preferred_username": "../root"} or {"email_verified": false}.
	Claims map[string]any
}

// DefaultUsers are the users every provider starts with.
func DefaultUsers() []User {
	return []User{
		{Username: "hubtest-oidc1", Password: "hubtest-oidc1-pw", Sub: "4c1e0a6e-0001-4b1d-9e51-hubtestoidc1",
			Email: "hubtest-oidc1@example.test", Name: "Hubtest OIDC One", Groups: []string{"hubtest-users", "hubtest-admins"}},
		{Username: "hubtest-oidc2", Password: "hubtest-oidc2-pw", Sub: "4c1e0a6e-0002-4b1d-9e51-hubtestoidc2",
			Email: "hubtest-oidc2@example.test", Name: "Hubtest OIDC Two", Groups: []string{"hubtest-users"}},
	}
}

// pages answer Hydra's login, consent and logout redirects:
//
//	GET  /login?login_challenge=C      the form: username, password, hidden login_challenge
//	POST /login                        checks the password, accepts the login through Hydra's
//	                                   admin API and redirects back to Hydra; a wrong password
//	                                   shows the form again with status 401
//	GET  /consent?consent_challenge=C  grants every requested scope (no consent screen) and
//	                                   puts the user's claims into the session
//	GET  /logout?logout_challenge=C    accepts the logout
type pages struct {
	log      *slog.Logger
	remember bool
	client   *http.Client

	mu    sync.Mutex
	admin string          // Hydra's admin API, known once Hydra runs
	users map[string]User // by Username
}

func newPages(logTo io.Writer, remember bool) *pages {
	p := &pages{
		log:      slog.New(slog.NewTextHandler(logTo, nil)).With("component", "oidclab"),
		remember: remember,
		client:   &http.Client{Timeout: 10 * time.Second},
		users:    map[string]User{},
	}
	for _, u := range DefaultUsers() {
		p.addUser(u)
	}
	return p
}

func (p *pages) addUser(u User) {
	if u.Sub == "" {
		u.Sub = u.Username
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[u.Username] = u
}

func (p *pages) setAdmin(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.admin = u
}

func (p *pages) user(name string) (User, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[name]
	return u, ok
}

func (p *pages) bySub(sub string) (User, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.users {
		if u.Sub == sub {
			return u, true
		}
	}
	return User{}, false
}

func (p *pages) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", p.login)
	mux.HandleFunc("GET /consent", p.consent)
	mux.HandleFunc("GET /logout", p.logout)
	return mux
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>hubtest OIDC login</title></head>
<body>
<h1>Sign in to the hubtest OIDC provider</h1>
<p>Client: {{.Client}}</p>
{{if .Error}}<p id="error" style="color:red">{{.Error}}</p>{{end}}
<form id="login" method="post" action="login">
<input type="hidden" name="login_challenge" value="{{.Challenge}}">
<label>Username <input id="username" name="username" autocomplete="username" value="{{.Username}}"></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
<button id="submit" type="submit">Sign in</button>
</form>
</body></html>
`))

// hydraRequest is the part of a login or consent request that the pages use.
type hydraRequest struct {
	Skip           bool     `json:"skip"`
	Subject        string   `json:"subject"`
	RequestedScope []string `json:"requested_scope"`
	RequestedAud   []string `json:"requested_access_token_audience"`
	Client         struct {
		ClientID string `json:"client_id"`
	} `json:"client"`
}

type redirect struct {
	RedirectTo string `json:"redirect_to"`
}

// call sends method to Hydra's admin API at requests/<path>?<kind>_challenge=C
// with an optional JSON body and decodes the answer into out.
func (p *pages) call(method, path, kind, challenge string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	p.mu.Lock()
	u := p.admin + "/admin/oauth2/auth/requests/" + path + "?" + kind + "_challenge=" + url.QueryEscape(challenge)
	p.mu.Unlock()
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("hydra %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}

func (p *pages) fail(w http.ResponseWriter, code int, err error) {
	p.log.Error("request failed", "err", err)
	http.Error(w, err.Error(), code)
}

func (p *pages) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.fail(w, http.StatusBadRequest, err)
		return
	}
	ch := r.Form.Get("login_challenge")
	if ch == "" {
		p.fail(w, http.StatusBadRequest, fmt.Errorf("missing login_challenge"))
		return
	}
	var lr hydraRequest
	if err := p.call("GET", "login", "login", ch, nil, &lr); err != nil {
		p.fail(w, http.StatusBadGateway, err)
		return
	}
	accept := func(sub string) {
		var rd redirect
		body := map[string]any{"subject": sub, "remember": p.remember, "remember_for": 3600, "amr": []string{"pwd"}}
		if err := p.call("PUT", "login/accept", "login", ch, body, &rd); err != nil {
			p.fail(w, http.StatusBadGateway, err)
			return
		}
		http.Redirect(w, r, rd.RedirectTo, http.StatusFound)
	}
	if lr.Skip { // Hydra remembers this browser's earlier login
		p.log.Info("login skipped", "subject", lr.Subject, "client", lr.Client.ClientID)
		accept(lr.Subject)
		return
	}
	data := map[string]any{"Challenge": ch, "Client": lr.Client.ClientID}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodPost {
		name, pw := r.PostForm.Get("username"), r.PostForm.Get("password")
		if u, ok := p.user(name); ok && subtle.ConstantTimeCompare([]byte(u.Password), []byte(pw)) == 1 {
			p.log.Info("login accepted", "user", name, "subject", u.Sub, "client", lr.Client.ClientID)
			accept(u.Sub)
			return
		}
		p.log.Info("login refused", "user", name, "client", lr.Client.ClientID)
		data["Error"], data["Username"] = "Invalid username or password.", name
		w.WriteHeader(http.StatusUnauthorized)
	}
	if err := loginPage.Execute(w, data); err != nil {
		p.log.Error("login page", "err", err)
	}
}

func claimsFor(u User, scopes []string) map[string]any {
	c := map[string]any{}
	if slices.Contains(scopes, "profile") {
		c["preferred_username"] = u.Username
		if u.Name != "" {
			c["name"] = u.Name
		}
	}
	if slices.Contains(scopes, "email") && u.Email != "" {
		c["email"] = u.Email
		c["email_verified"] = true
	}
	if slices.Contains(scopes, "groups") && u.Groups != nil {
		c["groups"] = u.Groups
	}
	maps.Copy(c, u.Claims)
	return c
}

func (p *pages) consent(w http.ResponseWriter, r *http.Request) {
	ch := r.URL.Query().Get("consent_challenge")
	var cr hydraRequest
	if err := p.call("GET", "consent", "consent", ch, nil, &cr); err != nil {
		p.fail(w, http.StatusBadGateway, err)
		return
	}
	u, ok := p.bySub(cr.Subject)
	if !ok {
		p.fail(w, http.StatusForbidden, fmt.Errorf("unknown subject %q", cr.Subject))
		return
	}
	claims := claimsFor(u, cr.RequestedScope)
	body := map[string]any{
		"grant_scope":                 cr.RequestedScope,
		"grant_access_token_audience": cr.RequestedAud,
		"session":                     map[string]any{"id_token": claims, "access_token": map[string]any{"username": u.Username}},
	}
	var rd redirect
	if err := p.call("PUT", "consent/accept", "consent", ch, body, &rd); err != nil {
		p.fail(w, http.StatusBadGateway, err)
		return
	}
	p.log.Info("consent", "user", u.Username, "scopes", cr.RequestedScope)
	http.Redirect(w, r, rd.RedirectTo, http.StatusFound)
}

func (p *pages) logout(w http.ResponseWriter, r *http.Request) {
	var rd redirect
	if err := p.call("PUT", "logout/accept", "logout", r.URL.Query().Get("logout_challenge"), nil, &rd); err != nil {
		p.fail(w, http.StatusBadGateway, err)
		return
	}
	http.Redirect(w, r, rd.RedirectTo, http.StatusFound)
}
