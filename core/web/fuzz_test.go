package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/store"
)

var jsonSeeds = []string{`{}`, `{"usernames": ["carol"]}`, `{"usernames": ["carol"], "admin": true}`, `{"admin": "true"}`,
	`{"note": "x", "expires_in": 60, "scopes": ["read:users!user=bob"]}`, `{"note": "\u00e9"}`, "{\"note\": \"\xff\"}",
	`{"a": 1} {}`, `null`, `[]`, `{"usernames": [` + strings.Repeat(`"a",`, 50) + `"b"]}`, `{"admin": true, "admin": false}`,
	strings.Repeat("[", 64) + strings.Repeat("]", 64), ` {"usernames": []}`, `{"last_activity": "2026-01-01T00:00:00Z"}`}

// FuzzDecodeJSON: decodeJSON accepts exactly one JSON object of valid UTF-8
// without unknown fields, within the size limit; anything else is a 400
// (or 413 over the limit), never another status.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	const limit = 512
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/hub/api/users", bytes.NewReader(body))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, limit)
		var v struct {
			Usernames []string `json:"usernames"`
			Admin     bool     `json:"admin"`
			Note      string   `json:"note"`
		}
		err := decodeJSON(r, &v)
		if err == nil {
			// Accepted: it is one valid object, and decoding it leniently
			// agrees on every field.
			trimmed := bytes.TrimSpace(body)
			if len(body) > limit || !utf8.Valid(body) || !json.Valid(trimmed) || trimmed[0] != '{' {
				t.Fatalf("accepted %q", body)
			}
			var lenient map[string]json.RawMessage
			if json.Unmarshal(trimmed, &lenient) != nil {
				t.Fatalf("accepted %q, which is not an object", body)
			}
			for k := range lenient {
				if k != "usernames" && k != "admin" && k != "note" && !strings.EqualFold(k, "usernames") && !strings.EqualFold(k, "admin") && !strings.EqualFold(k, "note") {
					t.Fatalf("accepted unknown field %q in %q", k, body)
				}
			}
			return
		}
		ae, ok := errors.AsType[*apiError](err)
		if !ok {
			t.Fatalf("error %T %v is not an API error", err, err)
		}
		want := http.StatusBadRequest
		if len(body) > limit {
			want = http.StatusRequestEntityTooLarge
		}
		if ae.status != want {
			t.Fatalf("%q: status %d, want %d (%v)", body, ae.status, want, err)
		}
	})
}

// FuzzAPIBody sends fuzzed bodies to endpoints that decode JSON, through
// the real web handler and store: the answer is never a server error,
// always the JSON error shape when refused, and what it creates is valid
// (user names pass names.Check, bob is only made an admin by an admin).
func FuzzAPIBody(f *testing.F) {
	for i, s := range jsonSeeds {
		f.Add(uint8(i), []byte(s))
	}
	ctx := context.Background()
	dir := f.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "hubd.sqlite"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	if err := st.CreateOrCheck(ctx); err != nil {
		f.Fatal(err)
	}
	cfg := config.Default()
	w := New(Options{Config: cfg, Store: st, CookieSecret: make([]byte, 32), Logger: slog.New(slog.DiscardHandler)})
	h := w.Handler(nil)
	token := func(name string, admin bool) string {
		u, err := st.CreateUser(ctx, name, admin)
		if err != nil {
			f.Fatal(err)
		}
		tok := NewToken()
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
			if err := st.SetAdmin(ctx, "bob", false); err != nil {
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
