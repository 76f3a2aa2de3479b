package testutil

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

// NewClient is an HTTP client for tests against a hub: it keeps cookies,
// does not follow redirects (tests look at them), and closes its idle
// connections when the test ends.
func NewClient(t testing.TB) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Do sends a request and reads the whole answer; hdr holds header
// name/value pairs ("Host" sets the request's Host).
func Do(t testing.TB, c *http.Client, method, u string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp, b
}

// APIRequest is the body and headers of a hub API call: a token ("" for
// none) and a body (nil for none; a string or []byte is sent as it is,
// anything else as JSON) with its Content-Type, before the extra headers.
func APIRequest(tok string, body any, hdr ...string) (io.Reader, []string) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	if rd != nil {
		hdr = append([]string{"Content-Type", "application/json"}, hdr...)
	}
	if tok != "" {
		hdr = append(hdr, "Authorization", "token "+tok)
	}
	return rd, hdr
}
