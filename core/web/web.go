// Package web serves the hub's pages, its JupyterHub-compatible REST API
// and the OAuth provider single-user servers log visitors in with.
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hubd/hubd/core/access"
	"github.com/hubd/hubd/core/auth"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/metrics"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/scopes"
	"github.com/hubd/hubd/core/sso"
	"github.com/hubd/hubd/core/store"
)

// Options build the web layer; every dependency is explicit.
type Options struct {
	Config config.Config
	Store  *store.Store
	Hub    *hub.Hub
	// Password checks the login form (core/auth's PAM; a fake in tests).
	Password auth.Password
	// Identity admits whoever a login method vouched for.
	Identity *identity.Admitter
	// SSO is the single sign-on method (nil when auth.methods lacks it).
	SSO          *sso.Client
	CookieSecret []byte
	// Services reports the pids of hub-managed services (nil: none).
	Services ServiceProcs
	Logger   *slog.Logger
	Now      func() time.Time
	// Metrics records requests and logins and is served at /hub/metrics;
	// nil serves 404 there.
	Metrics *metrics.Metrics
}

// Web holds the handlers.
type Web struct {
	cfg       config.Config
	store     *store.Store
	hub       *hub.Hub
	password  auth.Password
	identity  *identity.Admitter
	access    *access.Access
	procs     ServiceProcs
	sso       *sso.Client
	ssoLogins *pendingLogins
	sign      signer
	log       *slog.Logger
	now       func() time.Time
	base      string // e.g. "/" or "/jupyter/"
	hubPrefix string // base + "hub/"
	pages     *pages
	metrics   *metrics.Metrics

	polling atomic.Bool // a poll nudged by a proxy error is running

	touchMu sync.Mutex
	touched map[int64]time.Time // user id → last activity written
	bg      sync.WaitGroup
}

// New builds the web layer.
func New(o Options) *Web {
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Web{
		cfg: o.Config, store: o.Store, hub: o.Hub, password: o.Password, identity: o.Identity, sso: o.SSO, ssoLogins: newPendingLogins(), sign: signer{o.CookieSecret},
		access: access.New(o.Config, o.Store, o.Now), procs: o.Services,
		log: o.Logger.With("component", "web"), now: o.Now,
		base: o.Config.Hub.BaseURL, hubPrefix: o.Config.Hub.BaseURL + "hub/",
		touched: map[int64]time.Time{}, metrics: o.Metrics,
	}
	w.pages = newPages(w.base)
	return w
}

// Handler serves the hub's own paths (everything but proxied user traffic).
// userTraffic receives /user/… requests; it is the proxy, whose not-found
// handler is UserFallback.
func (w *Web) Handler(userTraffic http.Handler) http.Handler {
	mux := http.NewServeMux()
	h, b := w.hubPrefix, w.base
	api := h + "api"
	mux.HandleFunc("GET "+api, w.apiVersion)
	mux.HandleFunc("GET "+api+"/{$}", w.apiVersion)
	mux.HandleFunc("GET "+api+"/info", w.api(w.apiInfo))
	mux.HandleFunc("GET "+api+"/user", w.api(w.apiSelf))
	mux.HandleFunc("GET "+api+"/users", w.api(w.apiListUsers))
	mux.HandleFunc("POST "+api+"/users", w.api(w.apiCreateUsers))
	mux.HandleFunc("GET "+api+"/users/{name}", w.api(w.apiGetUser))
	mux.HandleFunc("POST "+api+"/users/{name}", w.api(w.apiCreateUser))
	mux.HandleFunc("PATCH "+api+"/users/{name}", w.api(w.apiPatchUser))
	mux.HandleFunc("DELETE "+api+"/users/{name}", w.api(w.apiDeleteUser))
	mux.HandleFunc("POST "+api+"/users/{name}/server", w.api(w.apiStartServer))
	mux.HandleFunc("DELETE "+api+"/users/{name}/server", w.api(w.apiStopServer))
	mux.HandleFunc("GET "+api+"/users/{name}/server/progress", w.api(w.apiProgress))
	mux.HandleFunc("POST "+api+"/users/{name}/servers/{server}", w.api(w.apiStartServer))
	mux.HandleFunc("DELETE "+api+"/users/{name}/servers/{server}", w.api(w.apiStopServer))
	mux.HandleFunc("GET "+api+"/users/{name}/servers/{server}/progress", w.api(w.apiProgress))
	mux.HandleFunc("POST "+api+"/users/{name}/server/address", w.api(w.apiServerAddress))
	mux.HandleFunc("POST "+api+"/users/{name}/servers/{server}/address", w.api(w.apiServerAddress))
	mux.HandleFunc("POST "+api+"/users/{name}/activity", w.api(w.apiActivity))
	mux.HandleFunc("GET "+api+"/users/{name}/tokens", w.api(w.apiListTokens))
	mux.HandleFunc("POST "+api+"/users/{name}/tokens", w.api(w.apiCreateToken))
	mux.HandleFunc("GET "+api+"/users/{name}/tokens/{id}", w.api(w.apiGetToken))
	mux.HandleFunc("DELETE "+api+"/users/{name}/tokens/{id}", w.api(w.apiDeleteToken))
	mux.HandleFunc("GET "+api+"/proxy", w.api(w.apiProxy))
	mux.HandleFunc("GET "+api+"/services", w.api(w.apiListServices))
	mux.HandleFunc("GET "+api+"/services/{service}", w.api(w.apiGetService))
	mux.HandleFunc("GET "+api+"/groups", w.api(w.apiListGroups))
	mux.HandleFunc("POST "+api+"/groups", w.api(w.apiCreateGroups))
	mux.HandleFunc("GET "+api+"/groups/{name}", w.api(w.apiGetGroup))
	mux.HandleFunc("POST "+api+"/groups/{name}", w.api(w.apiCreateGroup))
	mux.HandleFunc("DELETE "+api+"/groups/{name}", w.api(w.apiDeleteGroup))
	mux.HandleFunc("POST "+api+"/groups/{name}/users", w.api(w.apiGroupUsers))
	mux.HandleFunc("DELETE "+api+"/groups/{name}/users", w.api(w.apiGroupUsers))
	mux.HandleFunc("PUT "+api+"/groups/{name}/properties", w.api(w.apiGroupProperties))
	if w.metrics != nil {
		// JupyterHub serves both; Prometheus is usually pointed at the first.
		mux.HandleFunc("GET "+h+"metrics", w.api(w.serveMetrics))
		mux.HandleFunc("GET "+api+"/metrics", w.api(w.serveMetrics))
	}
	mux.HandleFunc("GET "+api+"/oauth2/authorize", w.oauthAuthorize)
	mux.HandleFunc("POST "+api+"/oauth2/token", w.oauthToken)
	mux.HandleFunc("GET "+api+"/health", w.health)
	mux.HandleFunc("GET "+h+"health", w.health)
	mux.HandleFunc("POST "+h+"security/csp-report", w.cspReport)
	mux.HandleFunc("GET "+h+"logo", w.logo)
	mux.HandleFunc("GET "+h+"login", w.loginPage)
	mux.HandleFunc("POST "+h+"login", w.loginPost)
	mux.HandleFunc("GET "+h+"logout", w.logout)
	mux.HandleFunc("GET "+h+"oauth_login", w.ssoLogin)
	mux.HandleFunc("GET "+h+"oauth_callback", w.ssoCallback)
	mux.HandleFunc("GET "+h+"{$}", w.signedIn(w.home))
	mux.HandleFunc("GET "+h+"home", w.signedIn(w.home))
	mux.HandleFunc("GET "+h+"spawn", w.signedIn(w.spawn))
	mux.HandleFunc("POST "+h+"spawn", w.signedIn(w.spawn))
	mux.HandleFunc("GET "+h+"spawn/{name}/{server}", w.signedIn(w.spawn))
	mux.HandleFunc("POST "+h+"spawn/{name}/{server}", w.signedIn(w.spawn))
	mux.HandleFunc("POST "+h+"stop", w.signedIn(w.stopPost))
	mux.HandleFunc("POST "+h+"delete-server", w.signedIn(w.deleteServerPost))
	mux.HandleFunc("GET "+h+"spawn-pending/{name}", w.signedIn(w.spawnPending))
	mux.HandleFunc("GET "+h+"spawn-pending/{name}/{server}", w.signedIn(w.spawnPending))
	mux.HandleFunc("GET "+h+"token", w.signedIn(w.tokenPage))
	mux.HandleFunc("POST "+h+"token", w.signedIn(w.tokenPost))
	mux.HandleFunc("GET "+h+"user/{name}/{rest...}", w.signedIn(w.userRedirect))
	mux.HandleFunc("GET "+h+"{rest...}", w.notFound)
	if userTraffic != nil {
		mux.Handle(b+"user/", userTraffic)
		mux.Handle(b+"services/", userTraffic)
	}
	mux.HandleFunc("GET "+b+"{$}", func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, h, http.StatusFound)
	})
	if b != "/" {
		mux.HandleFunc("GET "+strings.TrimSuffix(b, "/"), func(rw http.ResponseWriter, r *http.Request) {
			http.Redirect(rw, r, h, http.StatusFound)
		})
	}
	return w.common(mux)
}

// common adds what every hub response carries, bounds request bodies and
// records each request's duration (proxied user traffic excepted).
func (w *Web) common(next http.Handler) http.Handler {
	csp := "frame-ancestors 'self'; report-uri " + w.hubPrefix + "security/csp-report"
	hsts := int64(w.cfg.Hub.TLS.HSTSMaxAge.D().Seconds())
	own := w.metrics.Hub(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hd := rw.Header()
		hd.Set("X-JupyterHub-Version", w.cfg.Hub.JupyterHubVersion)
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		if hsts > 0 && r.TLS != nil {
			hd.Set("Strict-Transport-Security", "max-age="+strconv.FormatInt(hsts, 10))
		}
		if r.Header.Get("Upgrade") != "" {
			jsonError(rw, http.StatusBadRequest, "the hub's own paths do not accept protocol upgrades")
			return
		}
		r.Body = http.MaxBytesReader(rw, r.Body, int64(w.cfg.Proxy.MaxBodyBytes))
		next.ServeHTTP(rw, r)
	}))
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, w.base+"user/") || strings.HasPrefix(r.URL.Path, w.base+"services/") {
			next.ServeHTTP(rw, r)
			return
		}
		own.ServeHTTP(rw, r)
	})
}

// Totals are the users and running servers, read for each scrape.
func (w *Web) Totals(ctx context.Context) (metrics.Counts, error) {
	users, err := w.store.CountUsers(ctx)
	if err != nil {
		return metrics.Counts{}, err
	}
	servers, err := w.store.CountServers(ctx)
	return metrics.Counts{Users: users, RunningServers: servers[store.StateRunning]}, err
}

// serveMetrics is /hub/metrics: Prometheus' scrape, for callers holding
// read:metrics (admins; a token made for Prometheus with just that scope).
func (w *Web) serveMetrics(rw http.ResponseWriter, r *http.Request, c *caller) error {
	if err := c.requireScope("read:metrics"); err != nil {
		return err
	}
	w.metrics.Handler().ServeHTTP(rw, r)
	return nil
}

// caller is who made a request and what they may do: a user (by token
// or login cookie) or a service (by token).
type caller struct {
	user      store.User // zero for a service
	groups    []string   // the user's groups
	service   string     // the service's name, "" for a user
	admin     bool       // a user or a service with the admin role
	token     *store.Token
	sessionID string
	scopes    scopes.Set
}

// name is who the caller is, for audit records.
func (c *caller) name() string {
	if c.service != "" {
		return "service:" + c.service
	}
	return c.user.Name
}

// is reports whether the caller is the user u.
func (c *caller) is(u store.User) bool { return c.service == "" && c.user.ID == u.ID }

var errNoAuth = errors.New("no credentials")

// identify finds the caller from an Authorization header, else the login
// cookie. URL tokens (?token=) are not accepted.
func (w *Web) identify(r *http.Request) (*caller, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		tok = strings.TrimLeft(tok, " ")
		if (!strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "bearer")) || !wellFormedToken(tok) {
			return nil, errNoAuth
		}
		t, err := w.store.TokenByHash(ctx, store.HashToken(tok))
		if err != nil {
			return nil, errNoAuth
		}
		if t.ServiceID != 0 {
			sv, ok := w.access.Service(t.Service)
			if !ok {
				return nil, errNoAuth
			}
			who := scopes.Owner{Service: sv.Name}
			return &caller{service: sv.Name, admin: slices.Contains(w.access.ServiceRoles(sv), "admin"), token: &t,
				scopes: access.TokenScopes(access.DecodeScopes(t.Scopes), w.access.ServiceScopes(sv), who, w.access.Memberships(ctx))}, nil
		}
		c, err := w.userCaller(ctx, t.UserID)
		if err != nil {
			return nil, errNoAuth
		}
		c.token, c.sessionID = &t, t.SessionID
		c.scopes = access.TokenScopes(access.DecodeScopes(t.Scopes), c.scopes, scopes.Owner{User: c.user.Name}, w.access.Memberships(ctx))
		return c, nil
	}
	sid, ok := w.sessionFromCookie(r)
	if !ok {
		return nil, errNoAuth
	}
	u, err := w.store.SessionUser(ctx, sid)
	if err != nil {
		return nil, errNoAuth
	}
	c, err := w.userCaller(ctx, u.ID)
	if err != nil {
		return nil, errNoAuth
	}
	c.sessionID = sid
	return c, nil
}

// userCaller is a user acting with all their roles' scopes.
func (w *Web) userCaller(ctx context.Context, id int64) (*caller, error) {
	u, err := w.store.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	set, groups, err := w.access.UserScopes(ctx, u)
	if err != nil {
		return nil, err
	}
	return &caller{user: u, groups: groups, admin: u.Admin, scopes: set}, nil
}

// wellFormedToken reports whether tok can be a token at all: 8 to 256
// printable ASCII characters, so whitespace or a control character inside
// the token refuses it. Whitespace around the header's value is not part
// of the value in HTTP (RFC 9110 §5.5): net/http drops it before we see
// the header, so "token t " is the token "t".
func wellFormedToken(tok string) bool {
	if len(tok) < 8 || len(tok) > 256 {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] >= 0x7f {
			return false
		}
	}
	return true
}

func (w *Web) sessionFromCookie(r *http.Request) (string, bool) {
	c, err := r.Cookie(loginCookie)
	if err != nil {
		return "", false
	}
	return w.sign.parseLogin(c.Value, w.now())
}

// touch records user activity at most every 30 s per user (JupyterHub's
// activity_resolution), so busy API clients do not write on every request,
// and in the background: a request never waits for this write (with the
// database locked it would wait a whole busy timeout before its own work
// waited another).
func (w *Web) touch(c *caller) {
	if c.service != "" || (c.token != nil && c.token.Kind == store.TokenServer) {
		return // a server's own calls are not its user's activity
	}
	now := w.now()
	w.touchMu.Lock()
	last := w.touched[c.user.ID]
	if now.Sub(last) < 30*time.Second {
		w.touchMu.Unlock()
		return
	}
	w.touched[c.user.ID] = now
	w.touchMu.Unlock()
	w.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.store.TouchUser(ctx, c.user.ID, now); err != nil {
			w.log.Debug("record activity", "user", c.user.Name, "err", err)
		}
	})
}

// Wait returns once the background writes have finished (for shutdown,
// before the store closes).
func (w *Web) Wait() { w.bg.Wait() }

// apiHandler is an API endpoint with its caller identified. It writes its
// own success answer; a returned error becomes the JSON error answer (see
// replyError).
type apiHandler func(rw http.ResponseWriter, r *http.Request, c *caller) error

// apiError is an API failure with the status it is answered with; its
// message is what JupyterHub clients show.
type apiError struct {
	status     int
	msg        string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.msg }

func apiErrorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// notAuthorized is JupyterHub's answer to a caller without any of scopes.
func notAuthorized(scopes ...string) *apiError {
	return apiErrorf(http.StatusForbidden, "Action is not authorized with current scopes; requires any of %v", scopes)
}

// requireScope answers notAuthorized unless the caller holds one of scopes
// without a filter (for everyone).
func (c *caller) requireScope(names ...string) error {
	for _, s := range names {
		if c.scopes.Has(s, scopes.Target{}) {
			return nil
		}
	}
	return notAuthorized(names...)
}

// api authenticates, enforces XSRF on cookie-authenticated changes and
// JSON bodies on POST/PATCH, then runs h and answers its error.
func (w *Web) api(h apiHandler) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Security-Policy", "frame-ancestors 'self'; default-src 'none'")
		if err := w.apiRequest(rw, r, h); err != nil {
			w.replyError(rw, err)
		}
	}
}

func (w *Web) apiRequest(rw http.ResponseWriter, r *http.Request, h apiHandler) error {
	c, err := w.identify(r)
	if err != nil {
		return apiErrorf(http.StatusForbidden, "Missing or invalid credentials")
	}
	if c.token == nil && r.Method != http.MethodGet && r.Method != http.MethodHead && !w.checkXSRF(r, c.sessionID) {
		return apiErrorf(http.StatusForbidden, "'_xsrf' argument missing or invalid: send the _xsrf cookie's value in the X-XSRFToken header")
	}
	if (r.Method == http.MethodPost || r.Method == http.MethodPatch) && r.ContentLength != 0 && !isJSON(r) {
		return apiErrorf(http.StatusBadRequest, "the request body must be JSON (Content-Type: application/json)")
	}
	w.touch(c)
	return h(rw, r, c)
}

// replyError answers a handler's error: an *apiError as it says, a busy
// database as 503 worth retrying, anything else as a logged 500.
func (w *Web) replyError(rw http.ResponseWriter, err error) {
	if ae, ok := errors.AsType[*apiError](err); ok {
		if ae.retryAfter > 0 {
			rw.Header().Set("Retry-After", strconv.Itoa(int((ae.retryAfter+time.Second-1)/time.Second)))
		}
		jsonError(rw, ae.status, ae.msg)
		return
	}
	w.serverError(rw, err)
}

func isJSON(r *http.Request) bool {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	return ct == "application/json"
}

// targetUser resolves {name} and checks the caller may act on it with
// one of the scopes: 403 for a missing scope, 404 for a user that does not
// exist or is not the caller's business.
func (w *Web) targetUser(r *http.Request, c *caller, names ...string) (store.User, error) {
	name := r.PathValue("name")
	if err := w.allowedOn(r.Context(), c, w.userTarget(r.Context(), c, name, names...), names...); err != nil {
		return store.User{}, err
	}
	return w.existingUser(r.Context(), name)
}

// userTarget is the user name as a scope target, with the user's groups
// when the caller's scopes need them to decide.
func (w *Web) userTarget(ctx context.Context, c *caller, name string, names ...string) scopes.Target {
	t := scopes.Target{User: name}
	if c.scopes.NeedsGroups(names...) {
		t.Groups, _ = w.store.GroupsOfName(ctx, name)
	}
	return t
}

// allowedOn answers 403 when the caller holds none of the scopes at all
// and 404 when it holds them, but not for t (as JupyterHub does, so
// callers cannot learn what exists outside their reach).
func (w *Web) allowedOn(_ context.Context, c *caller, t scopes.Target, names ...string) error {
	allowed, known := false, false
	for _, s := range names {
		known = known || c.scopes.HasAny(s)
		allowed = allowed || c.scopes.Has(s, t)
	}
	if !known {
		return notAuthorized(names...)
	}
	if !allowed {
		return apiErrorf(http.StatusNotFound, "No access to resources or resources not found")
	}
	return nil
}

// existingUser returns the named user: 404 for an invalid or unknown name.
func (w *Web) existingUser(ctx context.Context, name string) (store.User, error) {
	if names.Check(name) != nil {
		return store.User{}, apiErrorf(http.StatusNotFound, "No access to resources or resources not found")
	}
	u, err := w.store.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, apiErrorf(http.StatusNotFound, "No such user: %s", name)
	}
	return u, err
}

func jsonReply(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(v)
}

func jsonError(rw http.ResponseWriter, status int, msg string) {
	jsonReply(rw, status, map[string]any{"status": status, "message": msg})
}

func (w *Web) serverError(rw http.ResponseWriter, err error) {
	w.log.Error("request failed", "err", err)
	if errors.Is(err, store.ErrBusy) {
		rw.Header().Set("Retry-After", "2")
		jsonError(rw, http.StatusServiceUnavailable, "the hub's database is busy; try again in a moment")
		return
	}
	jsonError(rw, http.StatusInternalServerError, "internal error; the hub's log has details")
}

// decodeJSON reads a JSON object body strictly: 413 over the size limit,
// 400 for invalid UTF-8 (which encoding/json would quietly replace), for
// anything but one object (null, a list, trailing data), and for unknown
// fields.
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return apiErrorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	}
	if err != nil {
		return apiErrorf(http.StatusBadRequest, "read the request body: %v", err)
	}
	if !utf8.Valid(body) {
		return apiErrorf(http.StatusBadRequest, "invalid JSON body: not valid UTF-8")
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return apiErrorf(http.StatusBadRequest, "invalid JSON body: want one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiErrorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apiErrorf(http.StatusBadRequest, "invalid JSON body: trailing data")
	}
	return nil
}

func (w *Web) apiVersion(rw http.ResponseWriter, _ *http.Request) {
	jsonReply(rw, http.StatusOK, map[string]string{"version": w.cfg.Hub.JupyterHubVersion})
}

func (w *Web) health(rw http.ResponseWriter, r *http.Request) {
	if err := w.store.Ping(r.Context()); err != nil {
		jsonError(rw, http.StatusServiceUnavailable, "database unavailable")
		return
	}
	rw.WriteHeader(http.StatusOK)
}

func (w *Web) cspReport(rw http.ResponseWriter, r *http.Request) {
	buf := make([]byte, 2048)
	n, _ := r.Body.Read(buf)
	w.log.Debug("csp report", "body", names.Quote(string(buf[:n])))
	rw.WriteHeader(http.StatusNoContent)
}
