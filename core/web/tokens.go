package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/store"
)

// NewToken returns a fresh API token: 32 hex characters (JupyterHub's
// uuid4-hex shape; 128 random bits).
func NewToken() string { return store.RandomID(16) }

func (w *Web) tokenModel(t store.Token) map[string]any {
	client := "JupyterHub"
	if t.ClientID != "" {
		client = t.ClientID
	}
	var sess any
	if t.SessionID != "" {
		sess = t.SessionID
	}
	return map[string]any{
		"id": "a" + strconv.FormatInt(t.ID, 10), "kind": "api_token", "user": t.User,
		"scopes": decodeScopes(t.Scopes), "roles": []string{}, "note": t.Note,
		"created": ts(t.Created), "last_activity": ts(t.LastActivity), "expires_at": ts(t.ExpiresAt),
		"session_id": sess, "oauth_client": client,
	}
}

func (w *Web) apiListTokens(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "read:tokens")
	if !ok {
		return
	}
	tokens, err := w.store.Tokens(r.Context(), u.ID)
	if err != nil {
		w.serverError(rw, err)
		return
	}
	out := make([]map[string]any, 0, len(tokens))
	for _, t := range tokens {
		t.User = u.Name
		out = append(out, w.tokenModel(t))
	}
	jsonReply(rw, http.StatusOK, map[string]any{"api_tokens": out})
}

func (w *Web) apiCreateToken(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "tokens")
	if !ok {
		return
	}
	var body struct {
		Note      string   `json:"note"`
		ExpiresIn *int64   `json:"expires_in"`
		Scopes    []string `json:"scopes"`
		Roles     []string `json:"roles"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			jsonError(rw, http.StatusBadRequest, err.Error())
			return
		}
	}
	if len(body.Note) > 1000 {
		jsonError(rw, http.StatusBadRequest, "note is longer than 1000 characters")
		return
	}
	scopes := body.Scopes
	if len(scopes) == 0 {
		scopes = []string{"inherit"}
	}
	// A token may carry neither more than its creator holds nor more than
	// its owner holds: an admin cannot hand a member admin powers through
	// a token (use is also bounded by the owner's rights, see tokenScopes).
	if len(scopes) == 1 && scopes[0] == "inherit" {
		if c.user.ID != u.ID && !c.user.Admin {
			jsonError(rw, http.StatusForbidden, "only admins may create tokens with another user's full rights")
			return
		}
	} else {
		owner := parseScopes(roleScopes(u.Name, u.Admin), u.Name)
		for _, s := range parseScopes(scopes, u.Name) {
			if !c.scopes.covers(s) {
				jsonError(rw, http.StatusForbidden, "Not assigning requested scope "+s.String()+": you do not hold it yourself")
				return
			}
			if !owner.covers(s) {
				jsonError(rw, http.StatusForbidden, "Not assigning requested scope "+s.String()+" not held by user "+u.Name)
				return
			}
		}
	}
	var expires time.Time
	if body.ExpiresIn != nil {
		if *body.ExpiresIn <= 0 || *body.ExpiresIn > 10*365*24*3600 {
			jsonError(rw, http.StatusBadRequest, "expires_in must be a positive number of seconds")
			return
		}
		expires = w.now().Add(time.Duration(*body.ExpiresIn) * time.Second)
	}
	raw, _ := json.Marshal(scopes)
	secret := NewToken()
	t, err := w.store.CreateToken(r.Context(), store.Token{UserID: u.ID, Hash: store.HashToken(secret), Prefix: secret[:4],
		Kind: store.TokenAPI, Scopes: string(raw), Note: body.Note, ExpiresAt: expires})
	if err != nil {
		w.serverError(rw, err)
		return
	}
	t.User = u.Name
	w.auditAPI(r.Context(), c, "token.create", u.Name, body.Note)
	m := w.tokenModel(t)
	m["token"] = secret
	jsonReply(rw, http.StatusCreated, m)
}

func tokenID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(r.PathValue("id"), "a"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errors.New("token ids look like a123")
	}
	return id, nil
}

func (w *Web) apiGetToken(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "read:tokens")
	if !ok {
		return
	}
	id, err := tokenID(r)
	if err != nil {
		jsonError(rw, http.StatusNotFound, err.Error())
		return
	}
	tokens, err := w.store.Tokens(r.Context(), u.ID)
	if err != nil {
		w.serverError(rw, err)
		return
	}
	for _, t := range tokens {
		if t.ID == id {
			t.User = u.Name
			jsonReply(rw, http.StatusOK, w.tokenModel(t))
			return
		}
	}
	jsonError(rw, http.StatusNotFound, "no such token")
}

func (w *Web) apiDeleteToken(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "tokens")
	if !ok {
		return
	}
	id, err := tokenID(r)
	if err != nil {
		jsonError(rw, http.StatusNotFound, err.Error())
		return
	}
	if err := w.store.DeleteToken(r.Context(), u.ID, id); errors.Is(err, store.ErrNotFound) {
		jsonError(rw, http.StatusNotFound, "no such token")
		return
	} else if err != nil {
		w.serverError(rw, err)
		return
	}
	w.auditAPI(r.Context(), c, "token.delete", u.Name, "a"+strconv.FormatInt(id, 10))
	rw.WriteHeader(http.StatusNoContent)
}
