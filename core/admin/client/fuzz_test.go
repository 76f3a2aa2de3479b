package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/admin/wire"
)

// canned answers every request with one fuzzed response.
type canned struct {
	status int
	body   []byte
}

func (c canned) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: c.status, Status: http.StatusText(c.status), Header: http.Header{"Hubd-Version": {"fuzz"}},
		Body: io.NopCloser(bytes.NewReader(c.body)), Request: r}, nil
}

// FuzzResponse feeds fuzzed answers to the client's parsing: a 403 is
// always AccessDeniedError, any other non-2xx an APIError with that status
// and a bounded, non-empty message; a 2xx either decodes or says it could
// not read the hub's answer; a streamed answer succeeds only on a result
// line, with at most one progress report per line. Nothing panics.
func FuzzResponse(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, `{"version":"1.0","users":3}`}, {403, `{"error":"you are not a member"}`}, {500, "oops"}, {404, `{"error":""}`},
		{200, "{\"stage\":\"snapshot\",\"done\":1}\n{\"result\":{\"path\":\"/x\"}}\n"}, {200, "{\"error\":\"disk full\"}\n"},
		{200, "{\"stage\":\"x\"}\n"}, {429, `{"error":"slow down"}`}, {200, `null`}, {204, ``}, {200, "\xff"},
	} {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		c := &Client{Socket: "/nonexistent"}
		c.once.Do(func() {})
		c.hc = &http.Client{Transport: canned{status, body}}
		ctx := context.Background()
		_, err := c.Status(ctx)
		switch {
		case status == http.StatusForbidden:
			if _, ok := errors.AsType[*AccessDeniedError](err); !ok {
				t.Fatalf("403 gave %T %v", err, err)
			}
		case status/100 != 2:
			ae, ok := errors.AsType[*APIError](err)
			if !ok || ae.Status != status || ae.Message == "" || len(ae.Message) > maxErrorBody+200 {
				t.Fatalf("%d %q gave %T %v", status, body, err, err)
			}
		case err != nil && !strings.Contains(err.Error(), "read the hub's answer"):
			t.Fatalf("2xx %q: error %v does not say the answer was unreadable", body, err)
		}
		if status/100 != 2 {
			return
		}
		progress := 0
		out, err := c.CreateBackup(ctx, "fuzz", func(wire.Progress) { progress++ })
		if err == nil && !bytes.Contains(body, []byte(`"result"`)) {
			t.Fatalf("stream %q succeeded without a result line: %+v", body, out)
		}
		if lines := bytes.Count(body, []byte("\n")) + 1; progress > lines {
			t.Fatalf("stream %q: %d progress reports from %d lines", body, progress, lines)
		}
	})
}
