package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hubd/hubd/core/config"
)

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, http.StatusServiceUnavailable},
		{"wrapped refused", fmt.Errorf("x: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), http.StatusServiceUnavailable},
		{"deadline", context.DeadlineExceeded, http.StatusGatewayTimeout},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, http.StatusBadGateway},
		{"eof", io.ErrUnexpectedEOF, http.StatusBadGateway},
		{"other", errors.New("malformed HTTP response"), http.StatusBadGateway},
	}
	for _, tt := range tests {
		if got := ErrorStatus(tt.err); got != tt.want {
			t.Errorf("%s: ErrorStatus(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestOptionsFromConfig(t *testing.T) {
	c := config.Default()
	c.Hub.TrustForwardedHeaders = true
	c.Proxy.MaxIdleConnsPerHost = 100
	c.Proxy.DialTimeout = config.Duration(2 * time.Second)
	got := OptionsFromConfig(&c)
	want := Options{
		TrustForwardedHeaders: true,
		MaxIdleConnsPerHost:   100,
		DialTimeout:           2 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		// The hub bounds both waits on a user server by default.
		ResponseHeaderTimeout: 5 * time.Minute,
		ResponseIdleTimeout:   5 * time.Minute,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OptionsFromConfig (-want +got):\n%s", diff)
	}
	tr := newTransport(got.withDefaults())
	if tr.MaxIdleConnsPerHost != 100 || tr.Proxy != nil || !tr.DisableCompression || tr.ForceAttemptHTTP2 {
		t.Errorf("transport: MaxIdleConnsPerHost %d, Proxy set %v, DisableCompression %v, ForceAttemptHTTP2 %v",
			tr.MaxIdleConnsPerHost, tr.Proxy != nil, tr.DisableCompression, tr.ForceAttemptHTTP2)
	}
}
