package admin_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/admin"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/internal/version"
)

// browserShaped is the admin server's rule, restated: any sign of a
// browser (Origin, Referer, Sec-Fetch-Mode, a Host other than the
// socket's).
func browserShaped(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" || r.Header.Get("Sec-Fetch-Mode") != "" ||
		(r.Host != "" && r.Host != wire.Host)
}

// FuzzRequest decodes fuzzed bytes as net/http would read them off the
// socket and serves them as a refused peer, a member or (for reads only)
// an admin. Whatever arrives: a browser-shaped request or a refused peer
// gets 403 and reaches no endpoint; a member never gets more than their
// role; nothing is a server error; every refusal is the one JSON error
// shape; every answer carries the version and no-framing headers.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"GET /v1/status HTTP/1.1\r\nHost: hubd.sock\r\n\r\n",
		"GET /v1/sessions?user=x HTTP/1.1\r\nHost: hubd.sock\r\n\r\n",
		"POST /v1/sessions/stop HTTP/1.1\r\nHost: hubd.sock\r\nContent-Length: 17\r\n\r\n{\"users\":[\"bob\"]}",
		"POST /v1/restart HTTP/1.1\r\nHost: hubd.sock\r\nOrigin: http://evil.example\r\n\r\n",
		"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nReferer: http://x/\r\n\r\n",
		"GET /v1/sessions/..%2f..%2fetc/log?lines=5 HTTP/1.1\r\nHost: hubd.sock\r\n\r\n",
		"POST /v1/backups/../../etc/passwd/verify HTTP/1.1\r\nHost: hubd.sock\r\n\r\n",
		"GET /v1/events?limit=99999&before=x HTTP/1.1\r\nHost: hubd.sock\r\n\r\n",
		"DELETE /v1/status HTTP/1.1\r\nHost: hubd.sock\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: hubd.sock\r\nSec-Fetch-Mode: cors\r\n\r\n",
	} {
		f.Add(uint8(1), []byte(s))
	}
	e := newTestEnv(f)
	f.Fuzz(func(t *testing.T, who uint8, raw []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // net/http answers 400 itself (TestMalformedInput)
		}
		roles := []wire.Role{"", wire.RoleMember, wire.RoleAdmin}
		role := roles[int(who)%3]
		if role == wire.RoleAdmin && r.Method != http.MethodGet {
			return // admin writes act on the hub (backups, restores): not fuzzed
		}
		id := admin.NewIdentity(4242+int(who)%3, "peer", role, "fuzzed peer")
		rec := httptest.NewRecorder()
		e.srv.ServeAs(rec, r, id)
		h := rec.Header()
		if h.Get(wire.VersionHeader) != version.Version || h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("%q: answer headers %v", raw, h)
		}
		if rec.Code >= 500 {
			t.Fatalf("%q as %q: status %d: %s", raw, role, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var we wire.Error
			if h.Get("Content-Type") != "application/json" || json.Unmarshal(rec.Body.Bytes(), &we) != nil || we.Error == "" {
				t.Fatalf("%q: refusal %d is not the JSON error shape: %s", raw, rec.Code, rec.Body)
			}
		}
		if browserShaped(r) && (rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "web browser")) {
			t.Fatalf("%q: status %d, want the browser refusal", raw, rec.Code)
		}
		if role == "" && rec.Code != http.StatusForbidden {
			t.Fatalf("%q from a refused peer: status %d", raw, rec.Code)
		}
		if role == wire.RoleMember && rec.Code/100 == 2 && r.Method != http.MethodGet && r.URL.Path != "/v1/restart" {
			t.Fatalf("%q: a member changed something: %d %s", raw, rec.Code, rec.Body)
		}
	})
}
