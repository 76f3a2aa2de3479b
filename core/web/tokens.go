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

// NewToken returns a fresh API token: 32 hex characters (JupyterHub's
// uuid4-hex shape; 128 random bits).
func NewToken() string { return store.RandomID(16) }

// TokenModel is JupyterHub's token model: "user" or "service" names the
// owner.
func TokenModel(t store.Token) map[string]any {
	client := "JupyterHub"
	if t.ClientID != "" {
		client = t.ClientID
	}
	var sess any
	if t.SessionID != "" {
		sess = t.SessionID
	}
	m := map[string]any{
		"id": "a" + strconv.FormatInt(t.ID, 10), "kind": "api_token",
		"scopes": access.DecodeScopes(t.Scopes), "roles": []string{}, "note": t.Note,
		"created": ts(t.Created), "last_activity": ts(t.LastActivity), "expires_at": ts(t.ExpiresAt),
		"session_id": sess, "oauth_client": client,
	}
	if t.ServiceID != 0 {
		m["service"] = t.Service
	} else {
		m["user"] = t.User
	}
	return m
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
		out = append(out, TokenModel(t))
	}
	jsonReply(rw, http.StatusOK, map[string]any{"api_tokens": out})
	return nil
}

// tokenBody is the POST body of JupyterHub's token API.
type tokenBody struct {
	Note      string   `json:"note"`
	ExpiresIn *float64 `json:"expires_in"`
	Scopes    []string `json:"scopes"`
	Roles     []string `json:"roles"`
}

// issueError maps a refused token request to its answer.
func issueError(err error) error {
	if ref, ok := errors.AsType[*access.Refusal](err); ok {
		return apiErrorf(http.StatusForbidden, "%s", ref.Msg)
	}
	if bad, ok := errors.AsType[*access.BadRequest](err); ok {
		return apiErrorf(http.StatusBadRequest, "%s", bad.Msg)
	}
	return err
}

// expiresIn converts expires_in seconds; nil (or 0, as JupyterHub's form
// sends "never") means no expiry, anything negative is refused by Issue.
func expiresIn(v *float64) time.Duration {
	if v == nil {
		return 0
	}
	d := *v
	switch {
	case d == 0:
		return 0
	case d < 0:
		return -1
	case d > float64(20*365*24*3600):
		return time.Duration(20*365*24*3600) * time.Second
	}
	return time.Duration(d * float64(time.Second))
}

func (w *Web) apiCreateToken(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "tokens")
	if err != nil {
		return err
	}
	var body tokenBody
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	if body.ExpiresIn != nil && *body.ExpiresIn <= 0 {
		return apiErrorf(http.StatusBadRequest, "expires_in must be a positive number of seconds (omit it for a token that does not expire)")
	}
	m, err := w.issueUserToken(r, c, u, body.Scopes, expiresIn(body.ExpiresIn), body.Note)
	if err != nil {
		return err
	}
	jsonReply(rw, http.StatusCreated, m)
	return nil
}

// issueUserToken creates a token for u on c's behalf: never more than
// either holds. The answer carries the token itself, shown once.
func (w *Web) issueUserToken(r *http.Request, c *caller, u store.User, scopes []string, life time.Duration, note string) (map[string]any, error) {
	t, secret, err := w.access.Issue(r.Context(), access.TokenRequest{User: &u, Scopes: scopes, ExpiresIn: life, Note: note,
		Creator: c.scopes, CreatorIsOwner: c.is(u), CreatorAdmin: c.admin})
	if err != nil {
		return nil, issueError(err)
	}
	w.auditAPI(r.Context(), c, "token.create", u.Name, note)
	m := TokenModel(t)
	m["token"] = secret
	return m, nil
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
			jsonReply(rw, http.StatusOK, TokenModel(t))
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
