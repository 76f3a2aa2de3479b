package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MaxRouteDepth bounds the number of segments in a route prefix, which in
// turn bounds the map probes of a lookup. Hub routes have two or three
// (/user/<name>/[<server>/]) plus the base URL's.
const MaxRouteDepth = 16

// DefaultMaxPathBytes is the longest request path the proxy forwards when
// Options.MaxPathBytes is zero.
const DefaultMaxPathBytes = 8 << 10

// ErrInvalidRoute is returned (wrapped) by Table.Set for a prefix or target
// that could never be served safely.
var ErrInvalidRoute = errors.New("invalid route")

// routeKey checks a route prefix and returns its table key (the prefix
// without its trailing slash; "" for the root) and its depth.
func routeKey(prefix string) (string, int, error) {
	if !strings.HasPrefix(prefix, "/") {
		return "", 0, fmt.Errorf("%w: prefix %q does not start with /", ErrInvalidRoute, prefix)
	}
	if len(prefix) > DefaultMaxPathBytes {
		return "", 0, fmt.Errorf("%w: prefix is %d bytes long", ErrInvalidRoute, len(prefix))
	}
	key := strings.TrimSuffix(prefix, "/")
	if key == "" {
		return "", 0, nil
	}
	// A prefix is compared with a request's escaped path, so it must be
	// spelled the way Go escapes a path it parsed, or it would never match.
	u, err := url.Parse(key)
	if err != nil || u.EscapedPath() != key || u.RawQuery != "" || u.Fragment != "" || u.Host != "" {
		return "", 0, fmt.Errorf("%w: prefix %q is not an escaped URL path", ErrInvalidRoute, prefix)
	}
	if reason := badPath(u.Path); reason != "" {
		return "", 0, fmt.Errorf("%w: prefix %q: %s", ErrInvalidRoute, prefix, reason)
	}
	depth := strings.Count(key, "/")
	if strings.Contains(key, "//") {
		return "", 0, fmt.Errorf("%w: prefix %q has an empty segment", ErrInvalidRoute, prefix)
	}
	if depth > MaxRouteDepth {
		return "", 0, fmt.Errorf("%w: prefix %q has more than %d segments", ErrInvalidRoute, prefix, MaxRouteDepth)
	}
	return key, depth, nil
}

// parseTarget accepts a bare http(s) origin: the proxy forwards the
// client's path unchanged, so a target path would silently be ignored.
func parseTarget(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: target %q: %w", ErrInvalidRoute, s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: target %q is not http or https", ErrInvalidRoute, s)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("%w: target %q must be scheme://host:port only", ErrInvalidRoute, s)
	}
	u.Path, u.RawPath = "", ""
	return u, nil
}

// badPath says why a decoded request path must not be forwarded, or "".
// Checking the decoded form catches %2e%2e and ..%2f as well as "..".
func badPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "path does not start with /"
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "path contains a NUL byte"
	}
	for rest := p[1:]; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "." || seg == ".." {
			return "path contains a dot segment"
		}
		if !more {
			return ""
		}
		rest = tail
	}
}
