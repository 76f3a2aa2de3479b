package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/config"
)

// Redirect names the plain-HTTP listener that sends browsers to HTTPS.
const Redirect = "redirect"

// loadTLS reads the public listener's certificate and key. It runs at
// every start, so a restart in place serves a certificate renewed on disk.
// A key that does not belong to the certificate refuses the start: the
// hub would otherwise fail every handshake.
func loadTLS(c config.TLS, now time.Time, log *slog.Logger) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		var pathErr *fs.PathError
		switch {
		case errors.As(err, &pathErr):
			return nil, fmt.Errorf("hub.tls: %w: the hub's account must be able to read it (check the path and its permissions)", err)
		case strings.Contains(err.Error(), "does not match"):
			return nil, fmt.Errorf("hub.tls: the key %s does not belong to the certificate %s (%w): point hub.tls.key at the key the certificate was issued for "+
				"(`openssl x509 -noout -pubkey -in %s` and `openssl pkey -pubout -in %s` must print the same key)", c.Key, c.Cert, err, c.Cert, c.Key)
		default:
			return nil, fmt.Errorf("hub.tls: read %s and %s: %w (both must be PEM: the certificate first, then its intermediates; the key unencrypted)", c.Cert, c.Key, err)
		}
	}
	if leaf := pair.Leaf; leaf != nil {
		switch {
		case now.After(leaf.NotAfter):
			log.Warn("the hub's TLS certificate has expired: browsers will refuse it; renew it, then `hubd restart`",
				"cert", c.Cert, "not_after", leaf.NotAfter)
		case now.Before(leaf.NotBefore):
			log.Warn("the hub's TLS certificate is not valid yet (is the clock right?)", "cert", c.Cert, "not_before", leaf.NotBefore)
		default:
			log.Info("TLS certificate loaded", "cert", c.Cert, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
		}
	}
	if strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1") {
		// Browsers would then open websockets as HTTP/2 CONNECT streams,
		// which the proxy does not pass to user servers.
		log.Warn("GODEBUG has http2xconnect=1: kernel websockets through the proxy will fail over HTTP/2; remove it")
	}
	if fi, err := os.Stat(c.Key); err == nil && fi.Mode().Perm()&0o004 != 0 {
		log.Warn("the hub's TLS key is readable by every account on the machine", "key", c.Key,
			"mode", fmt.Sprintf("%04o", fi.Mode().Perm()), "fix", "chmod o-r "+c.Key)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		// HTTP/2 for browsers. Websockets still reach user servers:
		// without extended CONNECT advertised, browsers open them over
		// HTTP/1.1.
		NextProtos: []string{"h2", "http/1.1"},
	}, nil
}

// redirectHandler sends every plain-HTTP request to the same URL on the
// HTTPS listener.
func redirectHandler(httpsAddr string) http.Handler {
	_, port, _ := net.SplitHostPort(httpsAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "use https", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if p, _ := strconv.Atoi(port); p != 443 {
			host += ":" + port
		}
		code := http.StatusMovedPermanently
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			code = http.StatusPermanentRedirect // keep the method and body
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), code)
	})
}
