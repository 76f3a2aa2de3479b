package oidclab_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/hubd/hubd/internal/testlab/oidclab"
)

// claims are the id_token claims the smoke test looks at.
type claims struct {
	Nonce             string   `json:"nonce"`
	PreferredUsername string   `json:"preferred_username"`
	Email             string   `json:"email"`
	Groups            []string `json:"groups"`
}

// codeFlow logs user in through the authorization code flow with PKCE, as a
// hub would, and returns the verified id_token's claims and the tokens.
func codeFlow(t *testing.T, p *oidclab.Provider, prov *oidc.Provider, c oidclab.Client, style oauth2.AuthStyle, user, password string) (claims, *oauth2.Token) {
	t.Helper()
	ctx := t.Context()
	cfg := oauth2.Config{
		ClientID: c.ID, ClientSecret: c.Secret,
		Endpoint:    oauth2.Endpoint{AuthURL: prov.Endpoint().AuthURL, TokenURL: prov.Endpoint().TokenURL, AuthStyle: style},
		RedirectURL: "http://127.0.0.1:18123/hub/oauth_callback", // any port matches
		Scopes:      []string{oidc.ScopeOpenID, "profile", "email", "groups"},
	}
	verifier, state, nonce := oauth2.GenerateVerifier(), "state-"+oauth2.GenerateVerifier()[:12], oauth2.GenerateVerifier()
	cb, err := p.Login(ctx, nil, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), user, password)
	if err != nil {
		t.Fatal(err)
	}
	q := cb.Query()
	if cb.Host != "127.0.0.1:18123" || cb.Path != "/hub/oauth_callback" || q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback %s: want the redirect URI with state %s and a code", cb, state)
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := prov.Verifier(&oidc.Config{ClientID: c.ID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("id_token does not verify with the provider's JWKS: %v", err)
	}
	var cl claims
	if err := idt.Claims(&cl); err != nil {
		t.Fatal(err)
	}
	if cl.Nonce != nonce {
		t.Errorf("nonce %q, want %q", cl.Nonce, nonce)
	}
	return cl, tok
}

func TestProvider(t *testing.T) {
	start := time.Now()
	p := oidclab.Start(t, oidclab.Options{})
	t.Logf("provider up in %s at %s", time.Since(start).Round(time.Millisecond), p.Issuer)
	ctx := t.Context()

	// Discovery: go-oidc insists that the issuer matches exactly.
	prov, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	var disco struct {
		Userinfo   string   `json:"userinfo_endpoint"`
		JWKS       string   `json:"jwks_uri"`
		EndSession string   `json:"end_session_endpoint"`
		Scopes     []string `json:"scopes_supported"`
		Methods    []string `json:"code_challenge_methods_supported"`
	}
	if err := prov.Claims(&disco); err != nil {
		t.Fatal(err)
	}
	got := []string{prov.Endpoint().AuthURL, prov.Endpoint().TokenURL, disco.Userinfo, disco.JWKS, disco.EndSession}
	want := []string{p.AuthorizeURL, p.TokenURL, p.UserinfoURL, p.JWKSURL, p.EndSessionURL}
	if !slices.Equal(got, want) {
		t.Errorf("discovery endpoints %q, want %q", got, want)
	}
	if !slices.Contains(disco.Scopes, "groups") || !slices.Contains(disco.Methods, "S256") {
		t.Errorf("discovery: scopes %q, PKCE methods %q: want groups and S256", disco.Scopes, disco.Methods)
	}

	t.Run("code flow", func(t *testing.T) {
		cl, tok := codeFlow(t, p, prov, p.Client, oauth2.AuthStyleInHeader, "hubtest-oidc1", "hubtest-oidc1-pw")
		if cl.PreferredUsername != "hubtest-oidc1" || cl.Email != "hubtest-oidc1@example.test" ||
			!slices.Equal(cl.Groups, []string{"hubtest-users", "hubtest-admins"}) {
			t.Errorf("id_token claims %+v", cl)
		}
		info, err := prov.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		if info.Email != "hubtest-oidc1@example.test" || info.Subject != "4c1e0a6e-0001-4b1d-9e51-hubtestoidc1" {
			t.Errorf("userinfo: email %q sub %q", info.Email, info.Subject)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		cfg := oauth2.Config{ClientID: p.Client.ID, Endpoint: prov.Endpoint(), Scopes: []string{oidc.ScopeOpenID},
			RedirectURL: "http://127.0.0.1:18123/hub/oauth_callback"}
		_, err := p.Login(ctx, nil, cfg.AuthCodeURL("state-12345678"), "hubtest-oidc2", "wrong")
		if !errors.Is(err, oidclab.ErrLoginRefused) {
			t.Fatalf("err %v, want ErrLoginRefused", err)
		}
	})

	t.Run("added user and client", func(t *testing.T) {
		p.AddUser(oidclab.User{Username: "hubtest-oidc-odd", Password: "odd-pw-1",
			Claims: map[string]any{"preferred_username": "../root"}})
		c := p.RegisterClient(t, oidclab.Client{AuthMethod: "client_secret_post"})
		cl, _ := codeFlow(t, p, prov, c, oauth2.AuthStyleInParams, "hubtest-oidc-odd", "odd-pw-1")
		if cl.PreferredUsername != "../root" || cl.Groups != nil {
			t.Errorf("id_token claims %+v: want preferred_username ../root and no groups", cl)
		}
	})

	t.Run("freeze", func(t *testing.T) {
		p.Freeze(t)
		c := http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{}} // a new connection
		resp, err := c.Get(p.DiscoveryURL)
		if err == nil {
			resp.Body.Close()
			t.Logf("a frozen provider answered: %s", resp.Status)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("request to a frozen provider: %v, want a timeout", err)
		}
		p.Thaw(t)
		if _, err := oidc.NewProvider(ctx, p.Issuer); err != nil {
			t.Errorf("after Thaw: %v", err)
		}
	})

	t.Run("stop", func(t *testing.T) {
		p.Stop(t)
		for _, u := range []string{p.Issuer, p.AdminURL, p.LoginURL} {
			l, err := net.Listen("tcp", hostPort(t, u))
			if err != nil {
				t.Errorf("port of %s still taken after Stop: %v", u, err)
				continue
			}
			l.Close()
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := oidc.NewProvider(cctx, p.Issuer); err == nil {
			t.Error("discovery works after Stop")
		}
	})
}

// A second provider beside the first: enforced PKCE is reported on the
// callback after the login, and a remembered login skips the form.
func TestProviderOptions(t *testing.T) {
	p := oidclab.Start(t, oidclab.Options{EnforcePKCE: true, Remember: true,
		RedirectURIs: []string{"http://127.0.0.1/cb"}})
	cfg := oauth2.Config{ClientID: p.Client.ID, Scopes: []string{oidc.ScopeOpenID},
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthorizeURL}, RedirectURL: "http://127.0.0.1:8000/cb"}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}

	cb, err := p.Login(t.Context(), browser, cfg.AuthCodeURL("state-12345678"), "hubtest-oidc2", "hubtest-oidc2-pw")
	if err != nil {
		t.Fatal(err)
	}
	if cb.Query().Get("error") != "invalid_request" {
		t.Errorf("callback without PKCE: %s, want error=invalid_request", cb)
	}
	v := oauth2.GenerateVerifier()
	// Remembered: the form is not shown, so the password is never checked.
	cb, err = p.Login(t.Context(), browser, cfg.AuthCodeURL("state-12345678", oauth2.S256ChallengeOption(v)), "hubtest-oidc2", "unused")
	if err != nil {
		t.Fatal(err)
	}
	if cb.Query().Get("code") == "" {
		t.Errorf("remembered login with PKCE: %s, want a code", cb)
	}
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
