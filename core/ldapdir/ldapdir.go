// Package ldapdir connects to an LDAP directory with bounded waits: it
// dials the configured servers in turn, upgrades plain connections with
// StartTLS when asked, checks certificates against a CA file, and ends any
// operation that outlives its context by closing the connection (a TLS
// handshake or a bind against a hung server otherwise waits for ever).
//
// `hubd doctor` uses it to tell whether the directory behind the host's
// NSS answers, and the LDAP login method to bind as users.
package ldapdir

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Dialer reaches one directory, served by any of URLs.
type Dialer struct {
	// URLs are ldap:// or ldaps:// URLs, tried in order.
	URLs []string
	// StartTLS upgrades ldap:// connections before anything else is sent.
	StartTLS bool
	// TLS verifies the server's certificate (LDAPS and StartTLS); nil
	// means the system's roots. ServerName is filled in per URL.
	TLS *tls.Config
	// DialTimeout bounds connecting to one server, TLS handshake included.
	DialTimeout time.Duration
	// Timeout bounds each operation on a connection.
	Timeout time.Duration
}

// TLSConfig trusts the certificates in caFile ("" = the system's roots).
func TLSConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read the directory's CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate: point it at the CA that signed the directory's certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// CheckURL accepts ldap:// and ldaps:// URLs with a host.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return fmt.Errorf("%q is not an ldap:// or ldaps:// URL with a host", raw)
	}
	return nil
}

// Dial connects to the first server of d.URLs that answers, within ctx and
// d.DialTimeout per server. The connection is closed when ctx ends while
// the dial runs.
func (d Dialer) Dial(ctx context.Context) (*ldap.Conn, error) {
	if len(d.URLs) == 0 {
		return nil, errors.New("no directory URL configured")
	}
	var errs []error
	for _, raw := range d.URLs {
		c, err := d.dialOne(ctx, raw)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", raw, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (d Dialer) dialOne(ctx context.Context, raw string) (*ldap.Conn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	tlsCfg := &tls.Config{}
	if d.TLS != nil {
		tlsCfg = d.TLS.Clone()
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = u.Hostname()
	}
	dialer := &net.Dialer{Timeout: d.DialTimeout}
	if dl, ok := ctx.Deadline(); ok && (d.DialTimeout <= 0 || time.Until(dl) < d.DialTimeout) {
		dialer.Deadline = dl
	}
	c, err := ldap.DialURL(raw, ldap.DialWithDialer(dialer), ldap.DialWithTLSConfig(tlsCfg))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(d.Timeout)
	if d.StartTLS && u.Scheme == "ldap" {
		err := Run(ctx, c, func() error { return c.StartTLS(tlsCfg) })
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
	}
	return c, nil
}

// Run runs op on c, closing c if ctx ends first, so that op returns then
// at the latest. The caller must not reuse c after a ctx error.
func Run(ctx context.Context, c *ldap.Conn, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err := op()
	if !stop() {
		// ctx ended while op ran: op's error is a symptom of the close.
		return fmt.Errorf("%w (the directory did not answer in time)", ctx.Err())
	}
	return err
}

// Probe connects and reads the root DSE anonymously, the cheapest request
// every LDAP server answers, and says how long that took. A server that
// refuses the anonymous read still answered, which is all Probe asks.
func (d Dialer) Probe(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	c, err := d.Dial(ctx)
	if err != nil {
		return time.Since(start), err
	}
	defer c.Close()
	err = Run(ctx, c, func() error {
		_, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
			"(objectClass=*)", []string{"supportedLDAPVersion"}, nil))
		return err
	})
	if err != nil && IsNetwork(err) {
		return time.Since(start), err
	}
	return time.Since(start), nil
}

// IsNetwork reports whether err means the directory could not be reached
// or did not answer, as opposed to an answer that refuses something.
func IsNetwork(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	if le, ok := errors.AsType[*ldap.Error](err); ok {
		return slices.Contains(unreachable, le.ResultCode)
	}
	_, ok := errors.AsType[net.Error](err)
	return ok
}

// unreachable are the result codes of a directory that did not answer:
// go-ldap's own for network failures, and what servers and proxies send
// when they cannot serve.
var unreachable = []uint16{ldap.ErrorNetwork, ldap.LDAPResultTimeout, ldap.LDAPResultUnavailable,
	ldap.LDAPResultBusy, ldap.LDAPResultServerDown, ldap.LDAPResultConnectError}
