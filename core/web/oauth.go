package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hubd/hubd/core/access"
	"github.com/hubd/hubd/core/scopes"
	"github.com/hubd/hubd/core/store"
)

// OAuth lifetimes: codes are short; access tokens live as long as a login.
const oauthCodeTTL = 5 * time.Minute

// oauthAuthorize is the authorization-code endpoint single-user servers
// send browsers to (JupyterHub's OAuth2 authorization-code flow). There is no consent page:
// only the server's owner (or an admin) is let through.
func (w *Web) oauthAuthorize(rw http.ResponseWriter, r *http.Request) {
	sid, ok := w.sessionFromCookie(r)
	var u store.User
	var err error
	if ok {
		u, err = w.store.SessionUser(r.Context(), sid)
	}
	if !ok || err != nil {
		http.Redirect(rw, r, w.hubPrefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
		return
	}
	q := r.URL.Query()
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	if q.Get("response_type") != "code" {
		w.errorPage(rw, r, http.StatusBadRequest, "Unsupported OAuth request", "Only response_type=code is supported.")
		return
	}
	client, err := w.store.OAuthClient(r.Context(), clientID)
	if err != nil {
		w.errorPage(rw, r, http.StatusForbidden, "Unknown OAuth client",
			"That server is not running (or was restarted). Go to your home page and start it again.")
		return
	}
	if redirectURI != client.RedirectURI {
		w.errorPage(rw, r, http.StatusForbidden, "OAuth redirect mismatch", "The server asked to return to an address it is not registered for.")
		return
	}
	need, what, err := w.clientAccess(r.Context(), client)
	if err != nil {
		w.errorPage(rw, r, http.StatusForbidden, "Unknown OAuth client",
			"That server or service is not running (or was restarted). Go to your home page and start it again.")
		return
	}
	set, _, err := w.access.UserScopes(r.Context(), u)
	if err != nil {
		w.log.Error("oauth scopes", "err", err)
		w.errorPage(rw, r, http.StatusInternalServerError, "Login failed", "Try again in a moment.")
		return
	}
	if !set.Has(need.scope, need.target) {
		w.errorPage(rw, r, http.StatusForbidden, "Not allowed",
			"You do not have permission to access "+what+". Log in as someone who may, or go to your own home page.")
		return
	}
	granted, _ := json.Marshal([]string{
		need.scope + "!" + need.filter,
		"read:users:name!user=" + u.Name,
		"read:users:groups!user=" + u.Name,
	})
	code := store.RandomID(16)
	if err := w.store.CreateOAuthCode(r.Context(), store.HashToken(code), store.OAuthCode{
		ClientID: clientID, UserID: u.ID, RedirectURI: redirectURI, SessionID: sid,
		Scopes: string(granted), ExpiresAt: w.now().Add(oauthCodeTTL),
	}); err != nil {
		w.log.Error("store oauth code", "err", err)
		w.errorPage(rw, r, http.StatusInternalServerError, "Login to your server failed", "Try again in a moment.")
		return
	}
	dest := redirectURI + "?" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	if strings.Contains(redirectURI, "?") {
		dest = redirectURI + "&" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	}
	http.Redirect(rw, r, dest, http.StatusFound)
}

// clientAccessScope is what a visitor needs to be let through an OAuth
// client: access to its server or its service.
type clientAccessScope struct {
	scope, filter string
	target        scopes.Target
}

// clientAccess finds what an OAuth client leads to, from the row it
// belongs to (a client id alone is ambiguous: user and server names may
// both contain '-'), and names it for messages.
func (w *Web) clientAccess(ctx context.Context, client store.OAuthClient) (clientAccessScope, string, error) {
	if client.ServiceID != 0 {
		sv, err := w.store.ServiceByID(ctx, client.ServiceID)
		if err != nil {
			return clientAccessScope{}, "", err
		}
		return clientAccessScope{"access:services", "service=" + sv.Name, scopes.Target{Service: sv.Name}}, "the service " + sv.Name, nil
	}
	srv, err := w.store.ServerByID(ctx, client.ServerID)
	if err != nil {
		return clientAccessScope{}, "", err
	}
	groups, err := w.store.GroupsOf(ctx, srv.UserID)
	if err != nil {
		return clientAccessScope{}, "", err
	}
	return clientAccessScope{"access:servers", "server=" + srv.User + "/" + srv.Name,
		scopes.Target{User: srv.User, Server: srv.Name, IsServer: true, Groups: groups}}, serverLabel(srv.User, srv.Name) + "'s server", nil
}

// oauthToken exchanges a code for an access token. The client secret is
// the server's API token.
func (w *Web) oauthToken(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		oauthError(rw, http.StatusBadRequest, "invalid_request")
		return
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if id, pw, ok := r.BasicAuth(); ok {
		clientID, secret = id, pw
	}
	client, err := w.store.OAuthClient(r.Context(), clientID)
	if err != nil || secret == "" || subtle.ConstantTimeCompare([]byte(store.HashToken(secret)), []byte(client.SecretHash)) != 1 {
		rw.Header().Set("WWW-Authenticate", `Bearer error="invalid_client"`)
		oauthError(rw, http.StatusUnauthorized, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		oauthError(rw, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	code, err := w.store.TakeOAuthCode(r.Context(), store.HashToken(r.PostForm.Get("code")))
	if errors.Is(err, store.ErrNotFound) || (err == nil && (code.ClientID != clientID || code.RedirectURI != r.PostForm.Get("redirect_uri"))) {
		oauthError(rw, http.StatusBadRequest, "invalid_grant")
		return
	}
	if err != nil {
		w.log.Error("oauth code", "err", err)
		oauthError(rw, http.StatusInternalServerError, "server_error")
		return
	}
	ttl := w.cfg.Hub.CookieMaxAge.D()
	issued := store.RandomID(20)
	if _, err := w.store.CreateToken(r.Context(), store.Token{
		UserID: code.UserID, Hash: store.HashToken(issued), Prefix: issued[:4], Kind: store.TokenOAuth,
		ClientID: clientID, SessionID: code.SessionID, Scopes: code.Scopes,
		Note: "OAuth token for " + clientID, ExpiresAt: w.now().Add(ttl),
	}); err != nil {
		w.log.Error("oauth token", "err", err)
		oauthError(rw, http.StatusInternalServerError, "server_error")
		return
	}
	jsonReply(rw, http.StatusOK, map[string]any{
		"access_token": issued, "token_type": "Bearer", "expires_in": int(ttl.Seconds()),
		"scope": strings.Join(access.DecodeScopes(code.Scopes), " "),
	})
}

func oauthError(rw http.ResponseWriter, status int, code string) {
	jsonReply(rw, status, map[string]string{"error": code})
}
