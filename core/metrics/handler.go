package metrics

import (
	"net/http"
	"time"
)

// Hub wraps the handler of the hub's own pages and API so every request
// is recorded under the route pattern the mux matched.
func (m *Metrics) Hub(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return instrument(next, m.Request)
}

// AdminSocket wraps the admin socket's handler likewise.
func (m *Metrics) AdminSocket(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return instrument(next, m.Admin)
}

func instrument(next http.Handler, observe func(method, pattern string, code int, took time.Duration)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		// The mux sets r.Pattern on this same request as it routes it.
		observe(methodLabel(r.Method), r.Pattern, rec.code(), time.Since(start))
	})
}

// methodLabel bounds the label's values: clients may send any method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// recorder notes the status a handler answered with. Unwrap lets
// http.ResponseController reach the connection's own Flush and deadlines
// (the spawn progress stream flushes).
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush keeps the http.Flusher the writer had.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}
