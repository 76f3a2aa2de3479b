package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
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
