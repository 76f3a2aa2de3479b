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

func (w *Web) apiListTokens(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "read:tokens")
	if err != nil {
		return err
	}
	tokens, err := w.store.Tokens(r.Context(), u.ID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(tokens))
	for _, t := range tokens {
		t.User = u.Name
		out = append(out, w.tokenModel(t))
	}
	jsonReply(rw, http.StatusOK, map[string]any{"api_tokens": out})
	return nil
}

func (w *Web) apiCreateToken(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "tokens")
	if err != nil {
		return err
	}
	var body struct {
		Note      string   `json:"note"`
		ExpiresIn *int64   `json:"expires_in"`
		Scopes    []string `json:"scopes"`
		Roles     []string `json:"roles"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	if len(body.Note) > 1000 {
		return apiErrorf(http.StatusBadRequest, "note is longer than 1000 characters")
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
			return apiErrorf(http.StatusForbidden, "only admins may create tokens with another user's full rights")
		}
	} else {
		owner := parseScopes(roleScopes(u.Name, u.Admin), u.Name)
		for _, s := range parseScopes(scopes, u.Name) {
			if !c.scopes.covers(s) {
				return apiErrorf(http.StatusForbidden, "Not assigning requested scope %s: you do not hold it yourself", s)
			}
			if !owner.covers(s) {
				return apiErrorf(http.StatusForbidden, "Not assigning requested scope %s not held by user %s", s, u.Name)
			}
		}
	}
	var expires time.Time
	if body.ExpiresIn != nil {
		if *body.ExpiresIn <= 0 || *body.ExpiresIn > 10*365*24*3600 {
			return apiErrorf(http.StatusBadRequest, "expires_in must be a positive number of seconds")
		}
		expires = w.now().Add(time.Duration(*body.ExpiresIn) * time.Second)
	}
	raw, _ := json.Marshal(scopes)
	secret := NewToken()
	t, err := w.store.CreateToken(r.Context(), store.Token{UserID: u.ID, Hash: store.HashToken(secret), Prefix: secret[:4],
		Kind: store.TokenAPI, Scopes: string(raw), Note: body.Note, ExpiresAt: expires})
	if err != nil {
		return err
	}
	t.User = u.Name
	w.auditAPI(r.Context(), c, "token.create", u.Name, body.Note)
	m := w.tokenModel(t)
	m["token"] = secret
	jsonReply(rw, http.StatusCreated, m)
	return nil
}

func tokenID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(r.PathValue("id"), "a"), 10, 64)
	if err != nil || id <= 0 {
		return 0, apiErrorf(http.StatusNotFound, "token ids look like a123")
	}
	return id, nil
}

func (w *Web) apiGetToken(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "read:tokens")
	if err != nil {
		return err
	}
	id, err := tokenID(r)
	if err != nil {
		return err
	}
	tokens, err := w.store.Tokens(r.Context(), u.ID)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if t.ID == id {
			t.User = u.Name
			jsonReply(rw, http.StatusOK, w.tokenModel(t))
			return nil
		}
	}
	return apiErrorf(http.StatusNotFound, "no such token")
}

func (w *Web) apiDeleteToken(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "tokens")
	if err != nil {
		return err
	}
	id, err := tokenID(r)
	if err != nil {
		return err
	}
	if err := w.store.DeleteToken(r.Context(), u.ID, id); errors.Is(err, store.ErrNotFound) {
		return apiErrorf(http.StatusNotFound, "no such token")
	} else if err != nil {
		return err
	}
	w.auditAPI(r.Context(), c, "token.delete", u.Name, "a"+strconv.FormatInt(id, 10))
	rw.WriteHeader(http.StatusNoContent)
	return nil
}
