package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hubd/hubd/core/auth"
	"github.com/hubd/hubd/core/loginerr"
	"github.com/hubd/hubd/core/sso"
)

// ssoCookie carries a single sign-on's state through the provider: it
// binds the callback to the browser that started the login.
const ssoCookie = "hubd-oauth-state"

// Bounds on logins under way: how long a person may take at the
// provider, and how many may wait at once (a flood of started logins
// must not grow the hub's memory).
const (
	ssoPendingTTL = 10 * time.Minute
	ssoPendingMax = 10000
)

// pendingLogins are the single sign-ons under way, by state. Each is
// taken once: a replayed callback finds nothing.
type pendingLogins struct {
	mu sync.Mutex
	m  map[string]pendingLogin
}

type pendingLogin struct {
	sso.Pending
	expires time.Time
}

func newPendingLogins() *pendingLogins { return &pendingLogins{m: map[string]pendingLogin{}} }

// put keeps p until now+ttl; false when too many logins are under way.
func (pl *pendingLogins) put(p sso.Pending, now time.Time) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if len(pl.m) >= ssoPendingMax {
		for k, v := range pl.m {
			if now.After(v.expires) {
				delete(pl.m, k)
			}
		}
		if len(pl.m) >= ssoPendingMax {
			return false
		}
	}
	pl.m[p.State] = pendingLogin{Pending: p, expires: now.Add(ssoPendingTTL)}
	return true
}

// take removes and returns the login of state, if it is under way.
func (pl *pendingLogins) take(state string, now time.Time) (sso.Pending, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	p, ok := pl.m[state]
	delete(pl.m, state)
	if !ok || now.After(p.expires) {
		return sso.Pending{}, false
	}
	return p.Pending, true
}

// ssoLogin is GET /hub/oauth_login: start a single sign-on and send the
// browser to the provider.
func (w *Web) ssoLogin(rw http.ResponseWriter, r *http.Request) {
	if w.sso == nil {
		w.notFound(rw, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), w.cfg.Auth.OIDC.Timeout.D())
	defer cancel()
	authURL, p, err := w.sso.Begin(ctx, w.ssoRedirectURL(r), w.safeNext(r.URL.Query().Get("next")))
	if err != nil {
		w.ssoFailed(rw, r, err)
		return
	}
	if !w.ssoLogins.put(p, w.now()) {
		rw.Header().Set("Retry-After", "60")
		w.errorPage(rw, r, http.StatusServiceUnavailable, "Sign-in busy", "Too many sign-ins are under way. Try again in a minute.")
		return
	}
	http.SetCookie(rw, w.cookie(r, ssoCookie, p.State, w.hubPrefix, int(ssoPendingTTL.Seconds()), true))
	http.Redirect(rw, r, authURL, http.StatusFound)
}

// ssoCallback is GET /hub/oauth_callback, where the provider sends the
// browser back: the state must be this browser's and a login under way,
// then the code is exchanged and verified, the identity admitted and the
// session created.
func (w *Web) ssoCallback(rw http.ResponseWriter, r *http.Request) {
	if w.sso == nil {
		w.notFound(rw, r)
		return
	}
	q := r.URL.Query()
	cookie, cerr := r.Cookie(ssoCookie)
	http.SetCookie(rw, &http.Cookie{Name: ssoCookie, Value: "", Path: w.hubPrefix, MaxAge: -1, HttpOnly: true})
	state := q.Get("state")
	switch {
	case state == "":
		w.ssoFailed(rw, r, w.sso.Rejected(errors.New("the callback has no state")))
		return
	case cerr != nil || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(state)) != 1:
		w.ssoFailed(rw, r, w.sso.Rejected(errors.New("the state is not the one this browser's login started with")))
		return
	}
	p, ok := w.ssoLogins.take(state, w.now())
	if !ok {
		w.ssoFailed(rw, r, w.sso.Rejected(errors.New("no login under way with this state (expired, or the callback was replayed)")))
		return
	}
	if e := q.Get("error"); e != "" {
		w.ssoFailed(rw, r, w.sso.Denied(e, q.Get("error_description")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), w.cfg.Auth.OIDC.Timeout.D())
	defer cancel()
	ext, idToken, err := w.sso.Finish(ctx, p, q.Get("code"))
	if err != nil {
		w.ssoFailed(rw, r, err)
		return
	}
	acct, err := w.identity.Admit(r.Context(), ext)
	if err != nil {
		w.ssoFailed(rw, r, err)
		return
	}
	w.startSession(rw, r, acct, p.Next, idToken)
}

// ssoFailed is the page for a sign-in that did not work: the reason and
// the way back to the login page.
func (w *Web) ssoFailed(rw http.ResponseWriter, r *http.Request, err error) {
	status, title := http.StatusForbidden, "Sign-in refused"
	msg := "The sign-in did not work. Start again from the login page."
	if e, ok := errors.AsType[*loginerr.Error](err); ok {
		msg = e.Public
	}
	reason := auth.Reason(err)
	if errors.Is(err, sso.ErrProvider) {
		status, title = http.StatusServiceUnavailable, "Sign-in service unavailable"
		reason = "sso-provider-unavailable"
	} else if reason == "unavailable" {
		reason = "sso-refused"
	}
	w.metrics.Login(reason)
	w.log.Info("single sign-on failed", "status", status, "err", err, "addr", clientAddr(r))
	w.render(rw, status, "message.html", page{Title: title, Message: msg, IsError: true, LoginLink: true})
}

// ssoRedirectURL is the callback URL: auth.oidc.redirect_url, else this
// hub's /hub/oauth_callback as the browser reached it.
func (w *Web) ssoRedirectURL(r *http.Request) string {
	if u := w.cfg.Auth.OIDC.RedirectURL; u != "" {
		return u
	}
	return w.absURL(r, w.hubPrefix+"oauth_callback")
}

// ssoLoggedOutURL is where the provider sends the browser back after
// ending its session: this hub's login page, next to auth.oidc.redirect_url
// when that is set (the URL the provider knows the hub by), else as the
// browser reached the hub. Providers want it registered exactly.
func (w *Web) ssoLoggedOutURL(r *http.Request) string {
	return loggedOutURL(w.cfg.Auth.OIDC.RedirectURL, w.absURL(r, w.hubPrefix+"login"))
}

// loggedOutURL is the login page beside the callback URL redirect, else
// reached.
func loggedOutURL(redirect, reached string) string {
	if base, ok := strings.CutSuffix(redirect, "/oauth_callback"); ok {
		return base + "/login"
	}
	return reached
}

// absURL is path on this hub as the browser reached it.
func (w *Web) absURL(r *http.Request, path string) string {
	scheme := "http"
	if w.isHTTPS(r) {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: r.Host, Path: path}).String()
}
