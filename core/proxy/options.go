package proxy

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/hubd/hubd/core/config"
)

// Defaults used for zero-valued Options fields.
const (
	DefaultMaxIdleConnsPerHost = 256
	DefaultDialTimeout         = 5 * time.Second
	DefaultIdleConnTimeout     = 90 * time.Second
	DefaultActivityInterval    = 30 * time.Second
)

// Options configure a Proxy. Zero values select the defaults above.
type Options struct {
	// NotFound serves requests that no route matches; the hub renders its
	// "start your server" redirect there. Default: 404.
	NotFound http.Handler
	// ErrorHandler renders an upstream failure (refused, reset, timeout).
	// r is the outbound request: same path, query, Host and cookies as the
	// client's, but its URL points at the backend. Default: a plain-text
	// reply with ErrorStatus(err).
	ErrorHandler func(w http.ResponseWriter, r *http.Request, route Route, err error)
	// OnActivity is told that a route carried traffic (a backend response,
	// websocket frames), at most once per route per ActivityInterval. It
	// runs on the request's goroutine, so it must not block for long.
	OnActivity       func(route Route, t time.Time)
	ActivityInterval time.Duration

	// TrustForwardedHeaders keeps the client's X-Forwarded-* and Forwarded
	// headers (appending to X-Forwarded-For); set it only behind a fronting
	// proxy that overwrites them.
	TrustForwardedHeaders bool
	// MaxPathBytes refuses longer request paths. Default 8 KiB.
	MaxPathBytes int

	MaxIdleConnsPerHost int
	DialTimeout         time.Duration
	// IdleConnTimeout closes pooled upstream connections left unused; it
	// never applies to a websocket in use.
	IdleConnTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a backend's response
	// headers (504 when it passes). Zero means no limit, as in CHP.
	ResponseHeaderTimeout time.Duration
	// ResponseIdleTimeout ends a response whose body sends nothing for
	// this long, so a backend that stalls mid-answer cannot hold a client
	// forever. Upgraded connections (websockets) are exempt. Zero means no
	// limit.
	ResponseIdleTimeout time.Duration

	// Logger receives upstream errors and refused requests at debug level.
	Logger *slog.Logger
}

// OptionsFromConfig returns the options the configuration file sets; the
// caller adds the handlers, the activity callback and the logger.
func OptionsFromConfig(c *config.Config) Options {
	return Options{
		TrustForwardedHeaders: c.Hub.TrustForwardedHeaders,
		MaxIdleConnsPerHost:   c.Proxy.MaxIdleConnsPerHost,
		DialTimeout:           c.Proxy.DialTimeout.D(),
		IdleConnTimeout:       c.Proxy.IdleConnTimeout.D(),
		ResponseHeaderTimeout: c.Proxy.ResponseHeaderTimeout.D(),
		ResponseIdleTimeout:   c.Proxy.ResponseIdleTimeout.D(),
	}
}

// withDefaults fills the zero fields.
func (o Options) withDefaults() Options {
	if o.NotFound == nil {
		o.NotFound = http.NotFoundHandler()
	}
	if o.ErrorHandler == nil {
		o.ErrorHandler = defaultErrorHandler
	}
	if o.ActivityInterval <= 0 {
		o.ActivityInterval = DefaultActivityInterval
	}
	if o.MaxPathBytes <= 0 {
		o.MaxPathBytes = DefaultMaxPathBytes
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("component", "proxy")
	return o
}
