package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/auth"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/loginerr"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/scopes"
	"github.com/hubd/hubd/core/services"
	"github.com/hubd/hubd/core/sso"
	"github.com/hubd/hubd/core/store"
)

//go:embed templates/*.html templates/logo.svg
var templateFiles embed.FS

type pages struct {
	t *template.Template
}

func newPages(string) *pages {
	return &pages{t: template.Must(template.ParseFS(templateFiles, "templates/*.html"))}
}

// page is what every template sees.
type page struct {
	Title, Hub, User, XSRF string
	// login
	Error, Username, Next string
	// PasswordForm shows the password form; SSOName the "Sign in with"
	// button (when set); LoginLink a link back to the login page.
	PasswordForm bool
	SSOName      string
	LoginLink    bool
	// home; Profile also names the default server's profile
	Running, Started, ServerURL, Pending, Failure, Profile string
	NamedServers                                           bool
	Named                                                  []namedRow
	NamedLimit                                             int
	Services                                               []serviceLink
	// the named server a message or progress page is about ("" = default)
	Server string
	// token page
	Tokens   []tokenRow
	NewToken string
	// pending
	Progress             int
	Message              string
	ProgressURL, NextURL string
	IsError, StartForm   bool
	// spawn form
	Profiles []profileChoice
}

// namedRow is one named server on the home page.
type namedRow struct {
	Name, State, URL, Started, Failure, Profile string
	Running, Pending                            bool
}

// profileChoice is one profile in the spawn form.
type profileChoice struct {
	Name, Title, Description string
	// Note says who holds the GPUs a GPU profile draws from.
	Note    string
	Checked bool
}

// serviceLink is a service the home page links to.
type serviceLink struct{ Name, URL string }

func (w *Web) render(rw http.ResponseWriter, status int, name string, p page) {
	p.Hub = w.hubPrefix
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(status)
	if err := w.pages.t.ExecuteTemplate(rw, name, p); err != nil {
		w.log.Error("render page", "page", name, "err", err)
	}
}

func (w *Web) errorPage(rw http.ResponseWriter, r *http.Request, status int, title, msg string) {
	w.render(rw, status, "message.html", page{Title: title, Message: msg, IsError: true})
}

// logo is what single-user pages show in their header (they load
// <hub>/hub/logo, as with JupyterHub).
func (w *Web) logo(rw http.ResponseWriter, r *http.Request) {
	svg, _ := templateFiles.ReadFile("templates/logo.svg")
	rw.Header().Set("Content-Type", "image/svg+xml")
	rw.Header().Set("Cache-Control", "max-age=86400")
	_, _ = rw.Write(svg)
}

func (w *Web) notFound(rw http.ResponseWriter, r *http.Request) {
	w.errorPage(rw, r, http.StatusNotFound, "Page not found", "There is nothing at this address.")
}

// safeNext keeps a post-login redirect on this hub: a local absolute path
// with exactly one leading slash, no scheme, host or backslash tricks;
// anything else falls back to the spawn page (CVE-2019-10255,
// CVE-2026-33709).
func (w *Web) safeNext(next string) string {
	fallback := w.hubPrefix + "spawn"
	if next == "" || len(next) > 2048 {
		return fallback
	}
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t\x00") {
		return fallback
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, w.base) {
		return fallback
	}
	return next
}

// currentUser returns the logged-in user of a page request.
func (w *Web) currentUser(r *http.Request) (store.User, string, bool) {
	sid, ok := w.sessionFromCookie(r)
	if !ok {
		return store.User{}, "", false
	}
	u, err := w.store.SessionUser(r.Context(), sid)
	if err != nil {
		return store.User{}, "", false
	}
	return u, sid, true
}

func (w *Web) toLogin(rw http.ResponseWriter, r *http.Request) {
	http.Redirect(rw, r, w.hubPrefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
}

// signedInHandler is a page for people who are logged in: u and the
// login session sid.
type signedInHandler func(rw http.ResponseWriter, r *http.Request, u store.User, sid string)

// signedIn sends people who are not logged in to the login page (coming
// back here afterwards) and runs h for the others.
func (w *Web) signedIn(h signedInHandler) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		u, sid, ok := w.currentUser(r)
		if !ok {
			w.toLogin(rw, r)
			return
		}
		h(rw, r, u, sid)
	}
}

func (w *Web) loginPage(rw http.ResponseWriter, r *http.Request) {
	next := w.safeNext(r.URL.Query().Get("next"))
	if _, _, ok := w.currentUser(r); ok {
		http.Redirect(rw, r, next, http.StatusFound)
		return
	}
	tok := w.ensureXSRF(rw, r, "")
	w.render(rw, http.StatusOK, "login.html", w.loginPageData(page{Title: "Log in", XSRF: tok, Next: next}))
}

// loginPageData adds the methods the login page offers.
func (w *Web) loginPageData(p page) page {
	p.PasswordForm = w.cfg.Auth.HasPasswordMethod()
	if w.sso != nil {
		p.SSOName = w.sso.Name()
	}
	return p
}

func clientAddr(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

func (w *Web) loginPost(rw http.ResponseWriter, r *http.Request) {
	if !w.cfg.Auth.HasPasswordMethod() {
		w.errorPage(rw, r, http.StatusNotFound, "No password login", "This hub signs people in through single sign-on only.")
		return
	}
	if err := r.ParseForm(); err != nil {
		w.errorPage(rw, r, http.StatusBadRequest, "Bad request", "The login form could not be read.")
		return
	}
	next := w.safeNext(r.URL.Query().Get("next"))
	if !w.checkXSRF(r, "") {
		w.log.Warn("login without a valid xsrf token", "addr", clientAddr(r))
		w.errorPage(rw, r, http.StatusForbidden, "Login form expired",
			"The login form was not accepted (missing or stale security token). Reload the login page and try again.")
		return
	}
	username := r.PostForm.Get("username")
	failed := func(status int, msg string) {
		tok := w.ensureXSRF(rw, r, "")
		// The form is filled in again only with a name that could be
		// one: a hostile one (control characters, a megabyte) is not
		// reflected.
		again := names.Normalize(username)
		if names.Check(again) != nil {
			again = ""
		}
		w.render(rw, status, "login.html", w.loginPageData(page{Title: "Log in", XSRF: tok, Error: msg, Username: again, Next: next}))
	}
	ext, err := w.password.Check(r.Context(), username, r.PostForm.Get("password"), clientAddr(r))
	var acct identity.Account
	if err == nil {
		acct, err = w.identity.Admit(r.Context(), ext)
	}
	if err != nil {
		w.metrics.Login(auth.Reason(err))
		failed(loginFailure(rw, err))
		return
	}
	w.startSession(rw, r, acct, next, "")
}

// loginFailure is the status and sentence for a failed password check or a
// refusal of the identity step; a throttled login gets its Retry-After.
func loginFailure(rw http.ResponseWriter, err error) (int, string) {
	e, ok := errors.AsType[*loginerr.Error](err)
	if !ok {
		return http.StatusForbidden, "Login failed. Try again."
	}
	if errors.Is(err, auth.ErrThrottled) {
		rw.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())))
		return http.StatusTooManyRequests, e.Public
	}
	return http.StatusForbidden, e.Public
}

// startSession logs an admitted person in, whichever method vouched for
// them: a session row, the login, session and XSRF cookies, an audit
// event, and the redirect to next. idToken is a single sign-on's ID
// token, kept with the session on the hub (never in a cookie) for the
// logout at the provider.
func (w *Web) startSession(rw http.ResponseWriter, r *http.Request, acct identity.Account, next, idToken string) {
	u := acct.User
	age := w.cfg.Hub.CookieMaxAge.D()
	if acct.SessionMaxAge > 0 {
		age = min(age, acct.SessionMaxAge)
	}
	sid := store.RandomID(16)
	expires := w.now().Add(age)
	if err := w.store.CreateSession(r.Context(), store.Session{ID: sid, UserID: u.ID, ExpiresAt: expires,
		ClientAddr: clientAddr(r), UserAgent: truncate(r.UserAgent(), 256), IDToken: idToken}); err != nil {
		w.log.Error("create session", "err", err)
		w.errorPage(rw, r, http.StatusServiceUnavailable, "Login failed", "The hub could not record your login. Try again in a moment.")
		return
	}
	http.SetCookie(rw, w.cookie(r, loginCookie, w.sign.loginValue(sid, expires), w.hubPrefix, int(age.Seconds()), true))
	http.SetCookie(rw, w.cookie(r, sessionCookie, sid, w.base, 0, true))
	// A fresh XSRF token bound to the new session.
	http.SetCookie(rw, w.cookie(r, xsrfCookie, w.sign.xsrfToken(randomNonce(), sid), w.hubPrefix, 0, false))
	w.auditWeb(r, u.Name, "login", u.Name, "with "+acct.Method+" from "+clientAddr(r))
	w.metrics.Login("")
	http.Redirect(rw, r, next, http.StatusFound)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// logout ends the hub session and, for single sign-on users when
// auth.oidc.logout_from_provider is set, sends the browser on to end the
// provider's session too.
func (w *Web) logout(rw http.ResponseWriter, r *http.Request) {
	target := w.hubPrefix + "login"
	if u, sid, ok := w.currentUser(r); ok {
		idToken, err := w.store.EndSession(r.Context(), sid)
		if err != nil {
			w.log.Warn("end session", "err", err)
		}
		w.auditWeb(r, u.Name, "logout", u.Name, "")
		if w.sso != nil && u.Method == sso.Method {
			if end := w.sso.EndSessionURL(r.Context(), w.ssoLoggedOutURL(r), idToken); end != "" {
				target = end
			}
		}
	}
	for _, c := range []struct{ name, path string }{{loginCookie, w.hubPrefix}, {xsrfCookie, w.hubPrefix}, {sessionCookie, w.base}} {
		http.SetCookie(rw, &http.Cookie{Name: c.name, Value: "", Path: c.path, MaxAge: -1, HttpOnly: true})
	}
	http.Redirect(rw, r, target, http.StatusFound)
}

func (w *Web) home(rw http.ResponseWriter, r *http.Request, u store.User, sid string) {
	p := page{Title: "Home", User: u.Name, XSRF: w.ensureXSRF(rw, r, sid),
		NamedServers: w.cfg.Spawner.NamedServers, NamedLimit: w.cfg.Spawner.NamedServerLimitPerUser}
	servers, err := w.store.ServersOf(r.Context(), []int64{u.ID})
	if err != nil {
		w.log.Error("home page servers", "user", u.Name, "err", err)
	}
	for _, srv := range servers[u.ID] {
		row := w.serverRow(u, srv)
		if srv.Name == "" {
			if srv.Active() || srv.State == store.StateFailed {
				p.Profile = row.Profile
			}
			switch {
			case row.Pending:
				p.Pending = "starting"
			case row.Running:
				p.Running, p.ServerURL, p.Started = "yes", row.URL, row.Started
			case srv.State == store.StateFailed:
				p.Failure = srv.StopReason
			}
			continue
		}
		p.Named = append(p.Named, row)
	}
	p.Services = w.visibleServices(r.Context(), u)
	w.render(rw, http.StatusOK, "home.html", p)
}

// serverRow is how the home page shows one server.
func (w *Web) serverRow(u store.User, srv store.Server) namedRow {
	row := namedRow{Name: srv.Name, State: srv.State, URL: hub.ServerPrefix(w.base, u.Name, srv.Name), Profile: w.profileTitle(hub.ProfileOf(srv))}
	switch {
	case w.hub.Pending(u.Name, srv.Name) != nil || srv.State == store.StateStarting:
		row.Pending, row.State = true, "starting"
	case srv.State == store.StateRunning:
		row.Running = true
		row.Started = srv.Started.UTC().Format("2006-01-02 15:04 UTC")
	case srv.State == store.StateFailed:
		row.Failure = srv.StopReason
	}
	return row
}

// profileTitle is how pages name a profile: its display name, else its
// name.
func (w *Web) profileTitle(name string) string {
	if p, ok := w.hub.Profile(name); ok && p.DisplayName != "" {
		return p.DisplayName
	}
	return name
}

// visibleServices are the services with a URL, shown on the home page
// (display = true), that the user may access.
func (w *Web) visibleServices(ctx context.Context, u store.User) []serviceLink {
	set, _, err := w.access.UserScopes(ctx, u)
	if err != nil {
		return nil
	}
	var out []serviceLink
	for _, sv := range w.cfg.Services {
		if sv.URL != "" && sv.Display && set.Has("access:services", scopes.Target{Service: sv.Name}) {
			out = append(out, serviceLink{Name: sv.Name, URL: services.Prefix(w.base, sv.Name)})
		}
	}
	return out
}

// pageServer is the server a page request is about: the {server} path
// segment, else the "server" form field; "" is the default server.
func pageServer(r *http.Request) string {
	if s := r.PathValue("server"); s != "" {
		return s
	}
	return r.FormValue("server")
}

// pendingURL is a server's progress page.
func (w *Web) pendingURL(user, server string) string {
	u := w.hubPrefix + "spawn-pending/" + url.PathEscape(user)
	if server != "" {
		u += "/" + url.PathEscape(server)
	}
	return u
}

// spawn starts one of the user's servers (if needed) and sends the browser
// to it or to the progress page. POST comes from the home page's buttons;
// GET is what JupyterHub clients and links use (/hub/spawn,
// /hub/spawn/<user>/<server>).
func (w *Web) spawn(rw http.ResponseWriter, r *http.Request, u store.User, sid string) {
	if r.Method == http.MethodPost && !w.formOK(rw, r, sid) {
		return
	}
	if name := r.PathValue("name"); name != "" && name != u.Name {
		w.errorPage(rw, r, http.StatusForbidden, "Not your server", "You can only start your own servers.")
		return
	}
	server := pageServer(r)
	srv, err := w.store.Server(r.Context(), u.ID, server)
	if err == nil && srv.State == store.StateRunning && w.hub.Pending(u.Name, server) == nil {
		http.Redirect(rw, r, hub.ServerPrefix(w.base, u.Name, server), http.StatusFound)
		return
	}
	// The profile comes from the form (or ?profile= on a link); with a
	// choice to make and none made, the form is the answer.
	options := ""
	if name := r.FormValue("profile"); name != "" {
		b, _ := json.Marshal(map[string]string{"profile": name})
		options = string(b)
	} else if w.pendingStart(u, server) == nil {
		profiles, err := w.hub.Profiles(r.Context(), u)
		if err != nil {
			w.log.Error("list profiles", "user", u.Name, "err", err)
		}
		if len(profiles) > 1 {
			w.spawnForm(rw, r, u, sid, server, profiles)
			return
		}
	}
	_, err = w.hub.StartWith(r.Context(), u, server, options)
	var tooMany *hub.TooManyError
	switch {
	case err == nil, errors.Is(err, hub.ErrAlreadyRunning):
	case errors.As(err, &tooMany):
		rw.Header().Set("Retry-After", strconv.Itoa(int(tooMany.RetryAfter.Seconds())))
		w.errorPage(rw, r, http.StatusTooManyRequests, "The hub is busy", err.Error())
		return
	default:
		status := http.StatusInternalServerError
		if ae, ok := errors.AsType[*apiError](startError(u, server, err)); ok {
			status = ae.status
		}
		w.log.Info("start from page refused or failed", "user", u.Name, "server", server, "err", err)
		w.errorPage(rw, r, status, "Your server could not start", err.Error())
		return
	}
	http.Redirect(rw, r, w.pendingURL(u.Name, server), http.StatusFound)
}

// pendingStart is the start of that server under way, if any.
func (w *Web) pendingStart(u store.User, server string) *hub.Op {
	if op := w.hub.Pending(u.Name, server); op != nil && op.Kind == "start" && !op.Done() {
		return op
	}
	return nil
}

// spawnForm asks which profile to start the server with; the default (or
// the one the server last ran with) is checked.
func (w *Web) spawnForm(rw http.ResponseWriter, r *http.Request, u store.User, sid, server string, profiles []config.Profile) {
	last := ""
	if srv, err := w.store.Server(r.Context(), u.ID, server); err == nil {
		last = hub.ProfileOf(srv)
	}
	holders, err := w.store.GPUHolders(r.Context())
	if err != nil {
		w.log.Warn("list GPU holders", "err", err)
	}
	checked := slices.IndexFunc(profiles, func(p config.Profile) bool { return p.Name == last })
	if checked < 0 {
		checked = max(slices.IndexFunc(profiles, func(p config.Profile) bool { return p.Default }), 0)
	}
	p := page{Title: "Start your server", User: u.Name, XSRF: w.ensureXSRF(rw, r, sid), Server: server}
	for i, pr := range profiles {
		c := profileChoice{Name: pr.Name, Title: pr.DisplayName, Description: pr.Description, Checked: i == checked}
		if c.Title == "" {
			c.Title = pr.Name
		}
		if pr.GPUs > 0 {
			c.Note = gpuNote(holders, w.hub.GPUCount())
		}
		p.Profiles = append(p.Profiles, c)
	}
	w.render(rw, http.StatusOK, "spawn.html", p)
}

// gpuNote says how many of the pool's GPUs are free and who holds the
// others.
func gpuNote(holders []store.GPUHolder, pool int) string {
	if len(holders) == 0 {
		return fmt.Sprintf("%d of %d GPUs free", pool, pool)
	}
	held := make([]string, len(holders))
	for i, h := range holders {
		held[i] = fmt.Sprintf("GPU %d: %s", h.Index, h.Name())
	}
	return fmt.Sprintf("%d of %d GPUs free; in use: %s", max(pool-len(holders), 0), pool, strings.Join(held, ", "))
}

// formOK checks a form post's XSRF token; it answers itself when it
// returns false.
func (w *Web) formOK(rw http.ResponseWriter, r *http.Request, sid string) bool {
	if !w.checkXSRF(r, sid) {
		w.errorPage(rw, r, http.StatusForbidden, "Form expired", "Reload the page and try again.")
		return false
	}
	return true
}

func (w *Web) stopPost(rw http.ResponseWriter, r *http.Request, u store.User, sid string) {
	if !w.formOK(rw, r, sid) {
		return
	}
	if err := w.hub.Stop(r.Context(), u, r.FormValue("server"), "stopped by the user", u.Name); err != nil {
		w.errorPage(rw, r, http.StatusInternalServerError, "Your server could not be stopped", err.Error())
		return
	}
	http.Redirect(rw, r, w.hubPrefix+"home", http.StatusFound)
}

// deleteServerPost stops a named server and forgets it, so it no longer
// counts against the named-server limit.
func (w *Web) deleteServerPost(rw http.ResponseWriter, r *http.Request, u store.User, sid string) {
	if !w.formOK(rw, r, sid) {
		return
	}
	server := r.FormValue("server")
	if server == "" {
		w.errorPage(rw, r, http.StatusBadRequest, "Cannot delete", "The default server cannot be deleted; stop it instead.")
		return
	}
	err := w.hub.Stop(r.Context(), u, server, "deleted by the user", u.Name)
	if err == nil {
		err = w.store.DeleteServer(r.Context(), u.ID, server)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		w.errorPage(rw, r, http.StatusInternalServerError, "Your server could not be deleted", err.Error())
		return
	}
	w.auditWeb(r, u.Name, "server.remove", serverLabel(u.Name, server), "")
	http.Redirect(rw, r, w.hubPrefix+"home", http.StatusFound)
}

func (w *Web) spawnPending(rw http.ResponseWriter, r *http.Request, u store.User, sid string) {
	if r.PathValue("name") != u.Name {
		w.errorPage(rw, r, http.StatusForbidden, "Not your server", "You can only follow your own server's start.")
		return
	}
	server := r.PathValue("server")
	target := hub.ServerPrefix(w.base, u.Name, server)
	srv, err := w.store.Server(r.Context(), u.ID, server)
	op := w.hub.Pending(u.Name, server)
	if op == nil && err == nil && srv.State == store.StateRunning {
		http.Redirect(rw, r, target, http.StatusFound)
		return
	}
	progress := w.hubPrefix + "api/users/" + url.PathEscape(u.Name) + "/server/progress"
	if server != "" {
		progress = w.hubPrefix + "api/users/" + url.PathEscape(u.Name) + "/servers/" + url.PathEscape(server) + "/progress"
	}
	p := page{Title: "Starting", User: u.Name, XSRF: w.ensureXSRF(rw, r, sid), Progress: 0, Message: "Starting…",
		ProgressURL: progress, NextURL: target, Server: server}
	if op == nil {
		msg := "Your server is not running."
		if err == nil && srv.State == store.StateFailed {
			msg = "Your server failed to start: " + srv.StopReason
		}
		w.render(rw, http.StatusOK, "message.html", page{Title: "Server not running", User: u.Name, XSRF: p.XSRF,
			Message: msg, IsError: err == nil && srv.State == store.StateFailed, StartForm: true, Server: server})
		return
	}
	if events, _, _ := op.Since(0); len(events) > 0 {
		last := events[len(events)-1]
		p.Progress, p.Message = last.Progress, last.Message
	}
	w.render(rw, http.StatusOK, "pending.html", p)
}

// UserFallback handles /user/<name>/… requests for which the proxy has no
// route. The hub's login cookie is scoped to /hub/, so browsers are sent to
// /hub/user/<name>/… where the hub can see who they are. Websockets and API
// calls get a prompt answer instead of a redirect they cannot follow.
func (w *Web) UserFallback() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if svc, ok := strings.CutPrefix(r.URL.Path, w.base+"services/"); ok {
			name, _, _ := strings.Cut(svc, "/")
			rw.Header().Set("X-JupyterHub-Version", w.cfg.Hub.JupyterHubVersion)
			w.errorPage(rw, r, http.StatusNotFound, "No such service", "No service named "+names.Quote(name)+" is served here.")
			return
		}
		rest := strings.TrimPrefix(r.URL.Path, w.base+"user/")
		name, _, _ := strings.Cut(rest, "/")
		rw.Header().Set("X-JupyterHub-Version", w.cfg.Hub.JupyterHubVersion)
		if names.Check(name) != nil {
			w.notFound(rw, r)
			return
		}
		if r.Header.Get("Upgrade") != "" || strings.Contains(rest, "/api/") {
			if r.Header.Get("Upgrade") != "" {
				// The client would otherwise keep a connection whose
				// upgrade will never happen.
				rw.Header().Set("Connection", "close")
			}
			jsonError(rw, http.StatusServiceUnavailable, name+"'s server is not running; start it from "+w.hubPrefix+"home")
			return
		}
		target := w.hubPrefix + "user/" + rest
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(rw, r, target, http.StatusFound)
	})
}

// ProxyError answers when a routed server does not respond (it died before
// the hub noticed): a clear page, and the poller is nudged to reconcile.
func (w *Web) ProxyError(rw http.ResponseWriter, r *http.Request, name string, err error) {
	w.log.Info("server did not answer through the proxy", "user", name, "err", err)
	if name == "" {
		jsonOrPage := "The service at " + names.Quote(r.URL.Path) + " is not answering; it may be starting or restarting."
		if r.Header.Get("Upgrade") != "" || strings.Contains(r.URL.Path, "/api/") {
			jsonError(rw, http.StatusServiceUnavailable, jsonOrPage)
			return
		}
		w.render(rw, http.StatusServiceUnavailable, "message.html", page{Title: "Service not responding", IsError: true, Message: jsonOrPage})
		return
	}
	// One poll at a time, detached from this request: its context ends as
	// soon as the page is written, and a dead server draws many requests.
	if w.polling.CompareAndSwap(false, true) {
		go func() {
			defer w.polling.Store(false)
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
			defer cancel()
			w.hub.Poll(ctx)
		}()
	}
	if r.Header.Get("Upgrade") != "" || strings.Contains(r.URL.Path, "/api/") {
		jsonError(rw, http.StatusServiceUnavailable, name+"'s server is not responding")
		return
	}
	w.render(rw, http.StatusServiceUnavailable, "message.html", page{Title: "Server not responding", IsError: true,
		Message: name + "'s server is not responding. It may have stopped; go to the home page to start it again."})
}

// maxRedirects caps /hub/user/ → /user/ round trips (a redirect loop means
// the route and the server disagree; JupyterHub caps it too).
const maxRedirects = 4

// userRedirect is /hub/user/<name>/…: the browser came here because the
// proxy had no route for /user/<name>/….
func (w *Web) userRedirect(rw http.ResponseWriter, r *http.Request, u store.User, sid string) {
	name := r.PathValue("name")
	if name != u.Name && !u.Admin {
		w.errorPage(rw, r, http.StatusForbidden, "Not your server", "This address belongs to another user's server.")
		return
	}
	rest := r.PathValue("rest")
	target := w.base + "user/" + name + "/" + rest
	owner, err := w.store.UserByName(r.Context(), name)
	var srv store.Server
	server := ""
	if err == nil {
		// /user/<name>/<server>/… is a named server when the user has one
		// of that name; anything else is a path on the default server.
		if first, _, _ := strings.Cut(rest, "/"); first != "" && w.cfg.Spawner.NamedServers {
			if named, nerr := w.store.Server(r.Context(), owner.ID, first); nerr == nil {
				server, srv = first, named
			}
		}
		if server == "" {
			srv, err = w.store.Server(r.Context(), owner.ID, "")
		}
	}
	switch {
	case err == nil && srv.State == store.StateRunning && w.hub.Pending(name, server) == nil:
		n, _ := strconv.Atoi(r.URL.Query().Get("redirects"))
		if n >= maxRedirects {
			w.errorPage(rw, r, http.StatusInternalServerError, "Redirect loop detected",
				"The hub and "+name+"'s server disagree about its address (hub "+w.cfg.Hub.JupyterHubVersion+
					", server "+srv.Version+"). Stop and start the server from the home page.")
			return
		}
		q := r.URL.Query()
		q.Set("redirects", strconv.Itoa(n+1))
		http.Redirect(rw, r, target+"?"+q.Encode(), http.StatusFound)
	case w.hub.Pending(name, server) != nil:
		http.Redirect(rw, r, w.pendingURL(name, server), http.StatusSeeOther)
	default:
		// JupyterHub answers 424 with a start button and never starts a
		// server behind the user's back.
		w.render(rw, http.StatusFailedDependency, "message.html", page{Title: "Server not running", User: u.Name,
			XSRF: w.ensureXSRF(rw, r, sid), Message: serverLabel(name, server) + "'s server is not running.", StartForm: name == u.Name, Server: server})
	}
}

func (w *Web) auditWeb(r *http.Request, actor, action, target, detail string) {
	if err := w.store.AddEvent(r.Context(), store.Event{Actor: actor, ActorUID: -1, Source: "web", Action: action, Target: target, Detail: detail}); err != nil {
		w.log.Warn("audit log write failed", "action", action, "err", err)
	}
}
