package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/internal/fsutil"
)

// Cookie names, as JupyterHub uses them (scripts and load tools look for them).
const (
	loginCookie   = "jupyterhub-hub-login"
	sessionCookie = "jupyterhub-session-id"
	xsrfCookie    = "_xsrf"
)

// LoadCookieSecret reads the key that signs cookies, creating a random one
// (mode 0600) when the file does not exist. A file others can read is
// refused: whoever reads it can forge any login.
func LoadCookieSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := fsutil.WriteFileAtomic(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("create cookie secret: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cookie secret: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("cookie secret %s has mode %04o: anyone who reads it can forge logins; run `chmod 600 %s`", path, fi.Mode().Perm(), path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cookie secret: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("cookie secret %s is not 32+ hex-encoded bytes: delete it and hubd makes a new one (everyone is logged out)", path)
	}
	return key, nil
}

// signer signs and checks cookie values with the hub's secret.
type signer struct{ key []byte }

func (s signer) mac(parts ...string) string {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// loginValue is "<session id>|<expiry unix>|<mac>".
func (s signer) loginValue(sessionID string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return sessionID + "|" + exp + "|" + s.mac(loginCookie, sessionID, exp)
}

// parseLogin returns the session id of a valid, unexpired login cookie.
func (s signer) parseLogin(v string, now time.Time) (string, bool) {
	parts := strings.Split(v, "|")
	if len(parts) != 3 {
		return "", false
	}
	if !hmac.Equal([]byte(parts[2]), []byte(s.mac(loginCookie, parts[0], parts[1]))) {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || now.Unix() > exp {
		return "", false
	}
	return parts[0], true
}

// xsrfToken binds a random per-browser nonce to the login session (or to
// no session before login): another browser's token, or one minted for
// another session, does not verify.
func (s signer) xsrfToken(nonce, sessionID string) string {
	return nonce + "." + s.mac(xsrfCookie, nonce, sessionID)
}

func (s signer) xsrfValid(token, sessionID string) bool {
	nonce, _, ok := strings.Cut(token, ".")
	if !ok || nonce == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.xsrfToken(nonce, sessionID))) == 1
}

func randomNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// cookie builds a cookie with the attributes every hub cookie shares.
func (w *Web) cookie(r *http.Request, name, value, path string, maxAge int, httpOnly bool) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: httpOnly, Secure: w.isHTTPS(r), SameSite: http.SameSiteLaxMode,
	}
}

// isHTTPS says whether the browser reached us over TLS (directly, or via a
// trusted fronting proxy that says so).
func (w *Web) isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return w.cfg.Hub.TrustForwardedHeaders && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// ensureXSRF returns the request's valid XSRF token for the session, or
// sets a new cookie and returns that.
func (w *Web) ensureXSRF(rw http.ResponseWriter, r *http.Request, sessionID string) string {
	if c, err := r.Cookie(xsrfCookie); err == nil && w.sign.xsrfValid(c.Value, sessionID) {
		return c.Value
	}
	tok := w.sign.xsrfToken(randomNonce(), sessionID)
	// Readable by clients (not HttpOnly) so API scripts can echo it in
	// X-XSRFToken, as with JupyterHub.
	http.SetCookie(rw, w.cookie(r, xsrfCookie, tok, w.hubPrefix, 0, false))
	return tok
}

// checkXSRF verifies the token sent with a cookie-authenticated change: it
// must equal the browser's _xsrf cookie and be bound to this session.
func (w *Web) checkXSRF(r *http.Request, sessionID string) bool {
	sent := r.Header.Get("X-XSRFToken")
	if sent == "" {
		sent = r.Header.Get("X-XSRF-Token")
	}
	if sent == "" {
		sent = r.PostFormValue("_xsrf")
	}
	c, err := r.Cookie(xsrfCookie)
	if sent == "" || err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(sent), []byte(c.Value)) == 1 && w.sign.xsrfValid(sent, sessionID)
}
