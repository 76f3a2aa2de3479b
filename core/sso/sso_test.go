package sso_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/sso"
	"github.com/hubd/hubd/internal/testlab/oidclab"
)

const redirect = "http://127.0.0.1:18124/hub/oauth_callback"

// client is an sso.Client for idp's default client, with clock now.
func client(t *testing.T, idp *oidclab.Provider, now func() time.Time) *sso.Client {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(idp.Client.Secret), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Auth.OIDC
	cfg.Name, cfg.Issuer, cfg.ClientID, cfg.ClientSecretFile = "Hydra", idp.Issuer, idp.Client.ID, secret
	c, err := sso.New(sso.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// idToken logs hubtest-oidc2 in at idp as client c (plain oauth2, as any
// relying party would) and returns the raw ID token, issued for nonce.
func idToken(t *testing.T, idp *oidclab.Provider, c oidclab.Client, nonce string) string {
	t.Helper()
	cfg := oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: idp.AuthorizeURL, TokenURL: idp.TokenURL}, Scopes: []string{"openid", "profile"}}
	state := "hubtest-state-" + oauth2.GenerateVerifier()[:8]
	cb, err := idp.Login(t.Context(), nil, cfg.AuthCodeURL(state, oauth2.SetAuthURLParam("nonce", nonce)), "hubtest-oidc2", "hubtest-oidc2-pw")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.Exchange(t.Context(), cb.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no id_token")
	}
	return raw
}

// forged is an ID token with the right claims for idp's default client,
// signed with a key the provider never published.
func forged(t *testing.T, idp *oidclab.Provider, nonce string, alg jose.SignatureAlgorithm) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: "hubtest-unknown", Algorithm: string(alg)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"iss": idp.Issuer, "aud": []string{idp.Client.ID}, "sub": "hubtest-forged",
		"nonce": nonce, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "preferred_username": "root"})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVerifyIDToken: an ID token verifies only when signed by the
// provider's published key, for this client, from this issuer, unexpired
// and with this login's nonce.
func TestVerifyIDToken(t *testing.T) {
	idp := oidclab.Start(t, oidclab.Options{})
	other := idp.RegisterClient(t, oidclab.Client{RedirectURIs: []string{"http://127.0.0.1/hub/oauth_callback"}})
	elsewhere := oidclab.Start(t, oidclab.Options{})

	c := client(t, idp, nil)
	good := idToken(t, idp, idp.Client, "nonce-good-0123456789")
	if _, err := c.VerifyIDToken(t.Context(), good, "nonce-good-0123456789"); err != nil {
		t.Fatalf("the provider's own token for this client: %v", err)
	}
	later := client(t, idp, func() time.Time { return time.Now().Add(25 * time.Hour) })
	for _, bad := range []struct {
		name   string
		c      *sso.Client
		token  string
		nonce  string
		reason string
	}{
		{"another audience", c, idToken(t, idp, other, "nonce-aud-0123456789"), "nonce-aud-0123456789", "audience"},
		// Signed by the other provider's key: the signature check refuses
		// it before the issuer check would.
		{"another issuer", c, idToken(t, elsewhere, elsewhere.Client, "nonce-iss-0123456789"), "nonce-iss-0123456789", "signature"},
		{"expired", later, good, "nonce-good-0123456789", "expired"},
		{"unknown key", c, forged(t, idp, "nonce-key-0123456789", jose.RS256), "nonce-key-0123456789", "signature"},
		{"wrong nonce", c, good, "nonce-other-0123456789", "nonce"},
		{"no nonce expected", c, good, "", "nonce"},
		{"not a JWT", c, "not.a.jwt", "x", "id_token"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			_, err := bad.c.VerifyIDToken(t.Context(), bad.token, bad.nonce)
			if !errors.Is(err, sso.ErrRejected) {
				t.Fatalf("got %v, want ErrRejected", err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), bad.reason) {
				t.Errorf("error %q does not name the %s", err, bad.reason)
			}
		})
	}
}

// TestSecretFile: the client secret comes from a file only its owner can
// read.
func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default().Auth.OIDC
	for _, c := range []struct {
		name string
		mode os.FileMode
		body string
		ok   bool
	}{
		{"0600", 0o600, "s3cret\n", true},
		{"group-readable", 0o640, "s3cret", false},
		{"empty", 0o600, "\n", false},
	} {
		cfg.ClientSecretFile = filepath.Join(dir, c.name)
		if err := os.WriteFile(cfg.ClientSecretFile, []byte(c.body), c.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(cfg.ClientSecretFile, c.mode); err != nil {
			t.Fatal(err)
		}
		_, err := sso.New(sso.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	cfg.ClientSecretFile = filepath.Join(dir, "missing")
	if _, err := sso.New(sso.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("a missing secret file was accepted")
	}
}
