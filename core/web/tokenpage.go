package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/access"
	"github.com/hubd/hubd/core/store"
)

// tokenRow is one token on the token page.
type tokenRow struct {
	ID                                       string
	Note, Scopes, Created, Expires, LastUsed string
}

func shortTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// tokenPage lists the user's API tokens with a form to create one and a
// button to revoke each (JupyterHub's /hub/token).
func (w *Web) tokenPage(rw http.ResponseWriter, r *http.Request, u store.User, sid string) {
	w.renderTokens(rw, r, u, page{XSRF: w.ensureXSRF(rw, r, sid)}, http.StatusOK)
}

func (w *Web) renderTokens(rw http.ResponseWriter, r *http.Request, u store.User, p page, status int) {
	p.Title, p.User = "API tokens", u.Name
	tokens, err := w.store.ListTokens(r.Context(), store.TokenFilter{UserID: u.ID, Kinds: []string{store.TokenAPI}})
	if err != nil {
		w.log.Error("token page", "user", u.Name, "err", err)
	}
	for _, t := range tokens {
		p.Tokens = append(p.Tokens, tokenRow{ID: strconv.FormatInt(t.ID, 10), Note: t.Note,
			Scopes: strings.Join(access.DecodeScopes(t.Scopes), " "), Created: shortTime(t.Created, ""),
			Expires: shortTime(t.ExpiresAt, "never"), LastUsed: shortTime(t.LastActivity, "never")})
	}
	w.render(rw, status, "token.html", p)
}

// tokenPost creates a token (shown once, on the page that answers) or
// revokes one of the user's own.
func (w *Web) tokenPost(rw http.ResponseWriter, r *http.Request, u store.User, sid string) {
	if !w.formOK(rw, r, sid) {
		return
	}
	p := page{XSRF: w.ensureXSRF(rw, r, sid)}
	switch r.PostFormValue("action") {
	case "revoke":
		id, err := strconv.ParseInt(r.PostFormValue("id"), 10, 64)
		if err == nil {
			err = w.store.DeleteToken(r.Context(), u.ID, id)
		}
		if err != nil {
			p.Error = "That token does not exist (any more)."
			w.renderTokens(rw, r, u, p, http.StatusNotFound)
			return
		}
		w.auditWeb(r, u.Name, "token.delete", u.Name, "a"+strconv.FormatInt(id, 10))
		http.Redirect(rw, r, w.hubPrefix+"token", http.StatusSeeOther)
	case "create":
		c, err := w.userCaller(r.Context(), u.ID)
		if err != nil {
			w.serverErrorPage(rw, r, err)
			return
		}
		var life time.Duration
		if v := r.PostFormValue("expires_in"); v != "" {
			secs, err := strconv.ParseInt(v, 10, 64)
			if err != nil || secs <= 0 {
				p.Error = "The expiry must be a positive number of seconds, or never."
				w.renderTokens(rw, r, u, p, http.StatusBadRequest)
				return
			}
			life = time.Duration(secs) * time.Second
		}
		m, err := w.issueUserToken(r, c, u, strings.Fields(r.PostFormValue("scopes")), life, r.PostFormValue("note"))
		if err != nil {
			status := http.StatusInternalServerError
			if ae, ok := errors.AsType[*apiError](err); ok {
				status, p.Error = ae.status, ae.msg
			} else {
				p.Error = "The token could not be created; the hub's log has details."
				w.log.Error("token page create", "user", u.Name, "err", err)
			}
			w.renderTokens(rw, r, u, p, status)
			return
		}
		p.NewToken, _ = m["token"].(string)
		w.renderTokens(rw, r, u, p, http.StatusOK)
	default:
		w.errorPage(rw, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
	}
}

func (w *Web) serverErrorPage(rw http.ResponseWriter, r *http.Request, err error) {
	w.log.Error("page request failed", "path", r.URL.Path, "err", err)
	w.errorPage(rw, r, http.StatusInternalServerError, "Something went wrong", "Try again in a moment; the hub's log has details.")
}
