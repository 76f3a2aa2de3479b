package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/internal/testutil"
)

// A key that is not the certificate's refuses the start and says how to
// tell which key belongs to which certificate.
func TestTLSKeyOfAnotherCertificateRefusesStart(t *testing.T) {
	cfg := testConfig(t)
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	cert, _ := ca.Issue(t, dir, "a", 2)
	_, otherKey := ca.Issue(t, dir, "b", 3)
	cfg.Hub.TLS.Cert, cfg.Hub.TLS.Key = cert, otherKey
	srv, err := server.New(context.Background(), server.Options{Config: cfg})
	if err == nil {
		srv.Close()
		t.Fatal("the hub started with a key that does not match its certificate")
	}
	for _, want := range []string{"does not belong to the certificate", otherKey, cert, "openssl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// A missing file says which one.
	cfg.Hub.TLS.Key = dir + "/missing.key"
	if _, err := server.New(context.Background(), server.Options{Config: cfg}); err == nil || !strings.Contains(err.Error(), "missing.key") {
		t.Errorf("missing key: %v", err)
	}
}

func startTLS(t *testing.T, tune func(*server.Options)) (*server.Server, *testutil.CA) {
	t.Helper()
	cfg := testConfig(t)
	ca := testutil.NewCA(t)
	cfg.Hub.TLS.Cert, cfg.Hub.TLS.Key = ca.Issue(t, t.TempDir(), "hub", 2)
	o := server.Options{Config: cfg}
	if tune != nil {
		tune(&o)
	}
	srv, err := server.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv, ca
}

func client(ca *testutil.CA, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// The public listener speaks HTTPS with HTTP/2 for clients that offer it
// and HTTP/1.1 for the rest; cookies it sets are Secure; no HSTS unless
// configured.
func TestTLSServesHTTP2AndSecureCookies(t *testing.T) {
	srv, ca := startTLS(t, nil)
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %s", srv.URL())
	}
	for _, h2 := range []bool{true, false} {
		resp, err := client(ca, h2).Get(srv.URL() + "hub/login")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		want := map[bool]int{true: 2, false: 1}[h2]
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != want {
			t.Errorf("h2=%v: %s %d", h2, resp.Proto, resp.StatusCode)
		}
		if resp.Header.Get("Strict-Transport-Security") != "" {
			t.Error("HSTS sent although hub.tls.hsts_max_age is 0")
		}
		cookies := resp.Cookies()
		if len(cookies) == 0 {
			t.Fatal("the login page set no cookie")
		}
		for _, c := range cookies {
			if !c.Secure {
				t.Errorf("cookie %s is not Secure over HTTPS", c.Name)
			}
		}
	}
	// Plain HTTP on the TLS port gets Go's 400, never a page.
	resp, err := http.Get("http://" + srv.Addr(server.Public) + "/hub/login")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %d", resp.StatusCode)
		}
	}
}

// hub.tls.redirect_listen sends plain HTTP to the same URL over HTTPS,
// and hub.tls.hsts_max_age turns HSTS on.
func TestTLSRedirectAndHSTS(t *testing.T) {
	srv, ca := startTLS(t, func(o *server.Options) {
		o.Config.Hub.TLS.RedirectListen = "127.0.0.1:0"
		o.Config.Hub.TLS.HSTSMaxAge = 3600 * 1e9
	})
	resp, err := client(ca, false).Get("http://" + srv.Addr(server.Redirect) + "/hub/login?next=%2Fhub%2Fhome")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://" + srv.Addr(server.Public) + "/hub/login?next=%2Fhub%2Fhome"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("redirect: %d to %q, want 301 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	resp, err = client(ca, true).Get(srv.URL() + "hub/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=3600" {
		t.Errorf("HSTS header %q", got)
	}
}
