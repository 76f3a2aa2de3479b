package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/server/servertest"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/core/web"
)

var apiBodySeeds = []string{`{}`, `{"usernames": ["carol"]}`, `{"usernames": ["carol"], "admin": true}`, `{"admin": "true"}`,
	`{"note": "x", "expires_in": 60, "scopes": ["read:users!user=bob"]}`, `{"note": "\u00e9"}`, "{\"note\": \"\xff\"}",
	`{"a": 1} {}`, `null`, `[]`, `{"admin": true, "admin": false}`, strings.Repeat("[", 64) + strings.Repeat("]", 64),
	` {"usernames": []}`, `{"last_activity": "2026-01-01T00:00:00Z"}`}

// FuzzAPIBody sends fuzzed bodies to endpoints that decode JSON, through
// the real web handler and store: the answer is never a server error,
// always the JSON error shape when refused, and what it creates is valid
// (user names pass names.Check, bob is only made an admin by an admin).
func FuzzAPIBody(f *testing.F) {
	for i, s := range apiBodySeeds {
		f.Add(uint8(i), []byte(s))
	}
	ctx := context.Background()
	hub := servertest.Start(f, servertest.Config(f, nil), server.Options{Password: fakeAuth{}, Accounts: fakeAccounts{}})
	st, h := hub.Store(), hub.Handler()
	token := func(name string, admin bool) string {
		u, err := st.CreateUser(ctx, name, admin)
		if err != nil {
			f.Fatal(err)
		}
		tok := web.NewToken()
		if _, err := st.CreateToken(ctx, store.Token{UserID: u.ID, Hash: store.HashToken(tok), Prefix: tok[:4], Kind: store.TokenAPI, Scopes: `["inherit"]`}); err != nil {
			f.Fatal(err)
		}
		return tok
	}
	admin, bob := token("admin", true), token("bob", false)
	endpoints := []struct{ method, path, tok string }{
		{http.MethodPost, "/hub/api/users", admin},
		{http.MethodPatch, "/hub/api/users/bob", admin},
		{http.MethodPost, "/hub/api/users/bob/tokens", bob},
		{http.MethodPost, "/hub/api/users/bob/activity", bob},
		{http.MethodPatch, "/hub/api/users/bob", bob},
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := endpoints[int(which)%len(endpoints)]
		if ep.tok == bob {
			// The admin's endpoint may have made bob an admin.
			if _, err := st.SetAdmin(ctx, "bob", false); err != nil {
				t.Fatal(err)
			}
		}
		r := httptest.NewRequest(ep.method, ep.path, bytes.NewReader(body))
		r.Header.Set("Authorization", "token "+ep.tok)
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", ep.method, ep.path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var e struct {
				Status  int    `json:"status"`
				Message string `json:"message"`
			}
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Status != rec.Code || e.Message == "" {
				t.Fatalf("%s %s %q: refusal %d is not the JSON error shape: %s", ep.method, ep.path, body, rec.Code, rec.Body)
			}
		}
		if ep.path == "/hub/api/users" && rec.Code == http.StatusCreated {
			var created []struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(rec.Body.Bytes(), &created) != nil {
				t.Fatalf("created users: %s", rec.Body)
			}
			for _, u := range created {
				if names.Check(u.Name) != nil {
					t.Fatalf("created user %q breaks the name rules", u.Name)
				}
				if _, err := st.UserByName(ctx, u.Name); err != nil {
					t.Fatalf("created user %q is not stored: %v", u.Name, err)
				}
			}
		}
		if ep.tok == bob {
			if u, err := st.UserByName(ctx, "bob"); err != nil || u.Admin {
				t.Fatalf("bob made himself an admin with %q: %v", body, err)
			}
		}
	})
}
