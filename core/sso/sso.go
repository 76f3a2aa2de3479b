// Package sso is the single sign-on login method "oidc": the
// authorization code flow with PKCE, state and nonce against an OpenID
// Connect provider (endpoints and keys from discovery) or a plain OAuth2
// provider (explicit endpoints, claims from userinfo).
//
// It only establishes who the person is, an identity.External; who that is
// on the hub is core/identity's decision. The protocol is coreos/go-oidc
// and golang.org/x/oauth2: the ID token's signature (against the
// provider's JWKS), issuer, audience and expiry are checked there, the
// nonce here. Every request to the provider is bounded by
// auth.oidc.timeout, and discovery happens at the first login, not at hub
// start, so a provider that is down never keeps the hub (or its password
// logins) from starting.
package sso

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/loginerr"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/internal/fsutil"
)

// Method is the login method's name (auth.methods, the identities'
// method column).
const Method = config.MethodOIDC

// Kinds of failure; every error of Begin and Finish is a *loginerr.Error
// of one of them.
var (
	// ErrProvider: the provider did not answer in time, or not usefully.
	ErrProvider = errors.New("sign-in provider unavailable")
	// ErrRejected: the provider's answer did not verify (state, nonce,
	// signature, issuer, audience, expiry, claims).
	ErrRejected = errors.New("sign-in answer rejected")
	// ErrDenied: the provider refused the person (error= on the callback).
	ErrDenied = errors.New("sign-in refused by the provider")
)

// Options build a Client.
type Options struct {
	Config config.OIDC
	Logger *slog.Logger
	// Now is the clock of ID token expiry (time.Now when nil).
	Now func() time.Time
}

// Client talks to one provider.
type Client struct {
	cfg    config.OIDC
	secret string
	http   *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider // after the first successful discovery
}

// New reads the client secret (auth.oidc.client_secret_file: a regular
// file, not readable by group or others) and builds the Client. It does
// not contact the provider.
func New(o Options) (*Client, error) {
	secret, err := fsutil.ReadSecret("auth.oidc.client_secret_file", o.Config.ClientSecretFile)
	if err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{
		cfg: o.Config, secret: secret, now: o.Now,
		http: &http.Client{Timeout: o.Config.Timeout.D()},
		log:  o.Logger.With("component", "sso"),
	}, nil
}

// Name is what the button says: "Sign in with <Name>".
func (c *Client) Name() string { return c.cfg.Name }

// Pending is a login under way: what the callback must match. It stays on
// the hub; only State travels through the browser.
type Pending struct {
	State, Nonce, Verifier string
	// RedirectURL is the callback URL of the authorization request (the
	// token request must repeat it).
	RedirectURL string
	// Next is where the browser goes after the login.
	Next string
}

// Begin starts a login: fresh state, nonce and PKCE verifier, and the
// provider's authorization URL to send the browser to.
func (c *Client) Begin(ctx context.Context, redirectURL, next string) (string, Pending, error) {
	ep, err := c.endpoint(ctx)
	if err != nil {
		return "", Pending{}, err
	}
	p := Pending{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), RedirectURL: redirectURL, Next: next}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(p.Verifier)}
	if c.openID() {
		opts = append(opts, oidc.Nonce(p.Nonce))
	}
	return c.oauth(ep, redirectURL).AuthCodeURL(p.State, opts...), p, nil
}

// Finish exchanges the callback's code (PKCE verifier included), verifies
// the answer and returns who the provider says the person is, with the
// verified ID token ("" for plain OAuth2), which logout sends back as
// id_token_hint.
func (c *Client) Finish(ctx context.Context, p Pending, code string) (identity.External, string, error) {
	ep, err := c.endpoint(ctx)
	if err != nil {
		return identity.External{}, "", err
	}
	tok, err := c.oauth(ep, p.RedirectURL).Exchange(c.clientContext(ctx), code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
			return identity.External{}, "", c.rejected(fmt.Errorf("token endpoint refused the code: %w", err))
		}
		return identity.External{}, "", c.unavailable(fmt.Errorf("token request: %w", err))
	}
	var claims map[string]any
	subject, raw := "", ""
	if c.openID() {
		raw, _ = tok.Extra("id_token").(string)
		if raw == "" {
			return identity.External{}, "", c.rejected(errors.New("the token response has no id_token"))
		}
		idt, err := c.VerifyIDToken(ctx, raw, p.Nonce)
		if err != nil {
			return identity.External{}, "", err
		}
		if err := idt.Claims(&claims); err != nil {
			return identity.External{}, "", c.rejected(fmt.Errorf("id_token claims: %w", err))
		}
		subject = idt.Subject
	}
	if err := c.fillFromUserinfo(ctx, tok, claims == nil, &claims, subject); err != nil {
		return identity.External{}, "", err
	}
	ext, err := c.external(claims)
	if err != nil {
		return identity.External{}, "", err
	}
	return ext, raw, nil
}

// VerifyIDToken checks an ID token's signature against the provider's
// JWKS, its issuer, audience (the client id) and expiry, and its nonce.
func (c *Client) VerifyIDToken(ctx context.Context, raw, nonce string) (*oidc.IDToken, error) {
	if _, err := c.endpoint(ctx); err != nil {
		return nil, err
	}
	idt, err := c.discovered().Verifier(&oidc.Config{ClientID: c.cfg.ClientID, Now: c.now}).Verify(c.clientContext(ctx), raw)
	if err != nil {
		return nil, c.rejected(fmt.Errorf("id_token: %w", err))
	}
	if idt.Nonce == "" || idt.Nonce != nonce {
		return nil, c.rejected(fmt.Errorf("id_token nonce %s does not match this login's", names.Quote(idt.Nonce)))
	}
	return idt, nil
}

// EndSessionURL is where logout sends the browser to end the provider's
// session ("" when there is none), coming back to back. idToken is the ID
// token of the login being ended: sent as id_token_hint, it tells the
// provider whose session to end without asking, and most providers
// (Hydra, Keycloak) honour post_logout_redirect_uri only with it.
func (c *Client) EndSessionURL(ctx context.Context, back, idToken string) string {
	if !c.cfg.LogoutFromProvider {
		return ""
	}
	end := c.cfg.EndSessionURL
	if end == "" && c.openID() {
		var doc struct {
			EndSession string `json:"end_session_endpoint"`
		}
		if prov := c.discovered(); prov == nil || prov.Claims(&doc) != nil {
			return ""
		}
		end = doc.EndSession
	}
	if end == "" {
		return ""
	}
	u, err := url.Parse(end)
	if err != nil {
		return ""
	}
	q := u.Query()
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	q.Set("client_id", c.cfg.ClientID)
	q.Set("post_logout_redirect_uri", back)
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *Client) openID() bool { return c.cfg.Issuer != "" }

func (c *Client) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, c.http), c.http)
}

// endpoint is the provider's authorization and token endpoints: from
// discovery (done once, at the first login that needs it) or the
// configuration.
func (c *Client) endpoint(ctx context.Context) (oauth2.Endpoint, error) {
	if !c.openID() {
		return oauth2.Endpoint{AuthURL: c.cfg.AuthorizeURL, TokenURL: c.cfg.TokenURL}, nil
	}
	if prov := c.discovered(); prov != nil {
		return prov.Endpoint(), nil
	}
	// Not under the lock: a login waits for its own discovery only, never
	// for another's against a provider that hangs.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.D())
	defer cancel()
	prov, err := oidc.NewProvider(c.clientContext(ctx), c.cfg.Issuer)
	if err != nil {
		return oauth2.Endpoint{}, c.unavailable(fmt.Errorf("discovery at %s: %w", c.cfg.Issuer, err))
	}
	c.mu.Lock()
	if c.provider == nil {
		c.provider = prov
	}
	c.mu.Unlock()
	return prov.Endpoint(), nil
}

// discovered is the provider's discovery document, nil before the first
// successful discovery.
func (c *Client) discovered() *oidc.Provider {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.provider
}

func (c *Client) oauth(ep oauth2.Endpoint, redirectURL string) *oauth2.Config {
	scopes := c.cfg.Scopes
	if c.openID() && !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	return &oauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: c.secret, Endpoint: ep, RedirectURL: redirectURL, Scopes: scopes}
}

// maxUserinfo bounds the userinfo answer read.
const maxUserinfo = 1 << 20

// fillFromUserinfo adds the claims the ID token lacks (all of them for
// plain OAuth2: must) from the userinfo endpoint. Its subject must be the
// ID token's.
func (c *Client) fillFromUserinfo(ctx context.Context, tok *oauth2.Token, must bool, claims *map[string]any, subject string) error {
	endpoint := c.cfg.UserinfoURL
	if prov := c.discovered(); endpoint == "" && prov != nil {
		endpoint = prov.UserInfoEndpoint()
	}
	_, hasName := (*claims)[c.cfg.UsernameClaim]
	_, hasGroups := (*claims)[c.cfg.GroupsClaim]
	if endpoint == "" || (!must && hasName && (hasGroups || c.cfg.GroupsClaim == "")) {
		if must {
			return c.unavailable(errors.New("no userinfo endpoint to read the claims from"))
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return c.unavailable(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unavailable(fmt.Errorf("userinfo: %w", err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserinfo+1))
	if err != nil || len(body) > maxUserinfo || resp.StatusCode != http.StatusOK {
		return c.unavailable(fmt.Errorf("userinfo: %s, %d bytes, %v", resp.Status, len(body), err))
	}
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		return c.rejected(fmt.Errorf("userinfo is not a JSON object: %w", err))
	}
	if subject != "" && info["sub"] != subject {
		return c.rejected(fmt.Errorf("userinfo is about %s, the id_token about %s", names.Quote(fmt.Sprint(info["sub"])), names.Quote(subject)))
	}
	if *claims == nil {
		*claims = info
		return nil
	}
	for k, v := range info {
		if _, ok := (*claims)[k]; !ok {
			(*claims)[k] = v
		}
	}
	return nil
}

// Bounds on the groups claim: more is an attack or a misconfiguration.
const (
	maxGroups   = 1000
	maxGroupLen = 256
)

// external reads the configured claims.
func (c *Client) external(claims map[string]any) (identity.External, error) {
	sub := claimString(claims[c.cfg.SubjectClaim])
	if sub == "" {
		return identity.External{}, c.rejected(fmt.Errorf("no %s claim to identify the person", c.cfg.SubjectClaim))
	}
	name, ok := claims[c.cfg.UsernameClaim].(string)
	if !ok {
		// A missing or non-string claim: the identity step refuses the
		// empty name and says which setting to check.
		name = ""
	}
	ext := identity.External{Method: Method, Subject: c.issuer() + "#" + sub, Name: name}
	if email, ok := claims["email"].(string); ok && len(email) <= maxGroupLen {
		ext.Email = email
	}
	switch g := claims[c.cfg.GroupsClaim].(type) {
	case string:
		ext.Groups = []string{g}
	case []any:
		for _, v := range g {
			if s, ok := v.(string); ok && s != "" && len(s) <= maxGroupLen && len(ext.Groups) < maxGroups {
				ext.Groups = append(ext.Groups, s)
			}
		}
	}
	return ext, nil
}

// issuer names the provider in subjects, so two providers' "sub" never
// meet.
func (c *Client) issuer() string {
	if c.openID() {
		return c.cfg.Issuer
	}
	return c.cfg.TokenURL
}

// claimString is a claim's value as a subject: strings as they are,
// numbers (GitHub's "id") in decimal.
func claimString(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) <= maxGroupLen {
			return v
		}
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// The sentences shown to the person.
const (
	msgProvider = "The sign-in service %s is not answering. Try again in a few minutes, and tell the administrator if it keeps failing."
	msgRejected = "The answer from %s could not be verified, so you were not signed in. Start again from the login page."
	msgDenied   = "%s did not sign you in (%s). Start again from the login page, or ask an administrator."
)

func (c *Client) unavailable(err error) error {
	return loginerr.New(ErrProvider, fmt.Sprintf(msgProvider, c.cfg.Name), err)
}

func (c *Client) rejected(err error) error {
	return loginerr.New(ErrRejected, fmt.Sprintf(msgRejected, c.cfg.Name), err)
}

// Denied is the failure for a callback that carries the provider's error
// instead of a code.
func (c *Client) Denied(code, description string) error {
	why := names.Quote(code)
	if description != "" {
		why += ": " + names.Quote(description)
	}
	return loginerr.New(ErrDenied, fmt.Sprintf(msgDenied, c.cfg.Name, why), fmt.Errorf("provider error %s", why))
}

// Rejected is the failure for a callback the hub cannot match to a login
// it started (a missing, forged, expired or replayed state).
func (c *Client) Rejected(err error) error { return c.rejected(err) }

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
