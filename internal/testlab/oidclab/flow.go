package oidclab

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// ErrLoginRefused is what Login returns when the login page refuses the
// username and password.
var ErrLoginRefused = errors.New("the provider's login page refused the username or password")

// ErrLoginForm is what Follow returns when the provider shows its login
// form: it does not remember a login of this browser.
var ErrLoginForm = errors.New("the provider shows its login form")

var challengeField = regexp.MustCompile(`name="login_challenge" value="([^"]*)"`)

// Login is a browser without JavaScript: it opens authorizeURL (the URL a
// hub redirects to), fills in the login form as username with password,
// follows the provider's redirects and returns the first redirect that leads
// away from the provider, unopened: the client's callback with code and
// state, or with error and error_description. With remembered logins
// (Options.Remember) the form may not be shown at all.
//
// c must have a cookie jar (Hydra's CSRF cookies) and may share it with the
// hub under test; its redirect policy is not used. A nil c is a fresh
// client.
func (p *Provider) Login(ctx context.Context, c *http.Client, authorizeURL, username, password string) (*url.URL, error) {
	return p.follow(ctx, c, authorizeURL, &credentials{username, password})
}

// Follow opens u on the provider (an authorization URL, or the end-session
// URL of a logout) in c's browser and follows the provider's redirects
// without filling in any form, as Login does. It returns the first
// redirect that leads away from the provider, or ErrLoginForm when the
// provider shows its login form.
func (p *Provider) Follow(ctx context.Context, c *http.Client, u string) (*url.URL, error) {
	return p.follow(ctx, c, u, nil)
}

type credentials struct{ username, password string }

func (p *Provider) follow(ctx context.Context, c *http.Client, start string, login *credentials) (*url.URL, error) {
	if c == nil {
		jar, _ := cookiejar.New(nil)
		c = &http.Client{Jar: jar, Timeout: 30 * time.Second}
	}
	if c.Jar == nil {
		return nil, errors.New("oidclab: the http.Client needs a cookie jar")
	}
	hop := *c
	hop.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, start, nil)
	if err != nil {
		return nil, err
	}
	posted := false
	for range 20 {
		resp, err := hop.Do(req)
		if err != nil {
			return nil, fmt.Errorf("oidclab: %w", err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 3:
			loc, err := resp.Location()
			if err != nil {
				return nil, fmt.Errorf("oidclab: %s: %w", req.URL.Redacted(), err)
			}
			if !p.owns(loc) {
				return loc, nil
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
			if err != nil {
				return nil, err
			}
		case resp.StatusCode == http.StatusOK && !posted && p.owns(req.URL) && req.URL.Path == "/login":
			if login == nil {
				return nil, ErrLoginForm
			}
			m := challengeField.FindSubmatch(body)
			if m == nil {
				return nil, fmt.Errorf("oidclab login: no login_challenge in the form at %s", req.URL.Redacted())
			}
			form := url.Values{
				"login_challenge": {html.UnescapeString(string(m[1]))},
				"username":        {login.username},
				"password":        {login.password},
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.LoginURL, strings.NewReader(form.Encode()))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			posted = true
		case resp.StatusCode == http.StatusUnauthorized && posted:
			return nil, fmt.Errorf("%w (user %q)", ErrLoginRefused, login.username)
		default:
			return nil, fmt.Errorf("oidclab: %s %s: %s: %.300s", req.Method, req.URL.Redacted(), resp.Status, body)
		}
	}
	return nil, errors.New("oidclab: more than 20 redirects")
}

// owns reports whether u is on the provider (Hydra or its login pages).
func (p *Provider) owns(u *url.URL) bool {
	for _, base := range []string{p.Issuer, p.LoginURL} {
		b, err := url.Parse(base)
		if err == nil && u.Scheme == b.Scheme && u.Host == b.Host {
			return true
		}
	}
	return false
}
