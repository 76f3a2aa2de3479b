package web_test

import (
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/server/servertest"
	"github.com/hubd/hubd/internal/testlab/oidclab"
)

// BenchmarkSSOLogin is one single sign-on round trip through a real
// provider (Hydra): the hub's redirect to the provider, the person's login
// there (form, consent, redirects), and the hub's callback, which
// exchanges the code, verifies the ID token, admits the identity and
// creates the session. hub-ms/op is the time of the hub's two requests
// (the callback's includes its back-channel token request to the
// provider); provider-ms/op the browser's time at the provider.
func BenchmarkSSOLogin(b *testing.B) {
	idp := oidclab.Start(b, oidclab.Options{EnforcePKCE: true})
	secret := filepath.Join(b.TempDir(), "client_secret")
	if err := os.WriteFile(secret, []byte(idp.Client.Secret), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := servertest.Config(b, nil)
	cfg.Auth.Methods = []string{config.MethodPAM, config.MethodOIDC}
	o := &cfg.Auth.OIDC
	o.Name, o.Issuer, o.ClientID, o.ClientSecretFile = "Hydra", idp.Issuer, idp.Client.ID, secret
	o.Scopes, o.AllowedGroups = []string{"openid", "profile", "email", "groups"}, []string{"hubtest-users"}
	h := servertest.Start(b, cfg, server.Options{Password: fakeAuth{}, Accounts: fakeAccounts{}})

	var hub, provider time.Duration
	get := func(c *http.Client, u string, want int) *http.Response {
		t0 := time.Now()
		resp, err := c.Get(u)
		hub += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			b.Fatalf("GET %s: %s", u, resp.Status)
		}
		return resp
	}
	b.ResetTimer()
	for b.Loop() {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		auth := get(c, h.URL+"/hub/oauth_login", http.StatusFound).Header.Get("Location")
		t0 := time.Now()
		cb, err := idp.Login(b.Context(), c, auth, "hubtest-oidc2", "hubtest-oidc2-pw")
		provider += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		get(c, h.URL+cb.RequestURI(), http.StatusFound)
	}
	b.ReportMetric(float64(hub.Milliseconds())/float64(b.N), "hub-ms/op")
	b.ReportMetric(float64(provider.Milliseconds())/float64(b.N), "provider-ms/op")
}
