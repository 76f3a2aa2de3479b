package proxy

import (
	"errors"
	"net"
	"net/http"
)

// ErrorStatus maps an upstream error to a status: 504 when the backend
// took too long, 503 when nothing accepted the connection (the server is
// not running), 502 for anything else it got wrong.
func ErrorStatus(err error) int {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// defaultErrorHandler answers in plain text; the hub replaces it with its
// "your server is not running" page.
func defaultErrorHandler(w http.ResponseWriter, _ *http.Request, _ Route, err error) {
	code := ErrorStatus(err)
	http.Error(w, http.StatusText(code)+": the server for this URL is not responding", code)
}
