package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/version"
)

// handler serves one endpoint for an authorised peer. A returned error
// becomes the JSON error answer (an *httpError keeps its status).
type handler func(s *Server, w http.ResponseWriter, r *http.Request, who identity) error

// route is one line of the route table.
type route struct {
	method, path string
	// members lets members call the endpoint; the handler limits them to
	// their own data. Admin-only otherwise.
	members bool
	handle  handler
	// own marks long-running endpoints bounded by a lock of their own
	// (backups stream progress for minutes): they take no request slot, so
	// status and sessions keep answering meanwhile.
	own bool
}

// table is the whole admin API. Mutating endpoints write the audit log
// themselves, because what they record depends on how the call went.
var table = []route{
	{"GET", "/v1/whoami", true, (*Server).whoami, false},
	{"GET", "/v1/status", true, (*Server).status, false},
	{"GET", "/v1/sessions", true, (*Server).sessions, false},
	{"POST", "/v1/sessions/stop", false, (*Server).stopMany, false},
	{"POST", "/v1/sessions/{user}/stop", false, (*Server).stopOne, false},
	{"GET", "/v1/sessions/{user}/log", true, (*Server).logTail, false},
	{"GET", "/v1/backups", false, (*Server).listBackups, false},
	{"POST", "/v1/backups", false, (*Server).createBackup, true},
	{"POST", "/v1/backups/prune", false, (*Server).pruneBackups, true},
	{"POST", "/v1/backups/{name}/verify", false, (*Server).verifyBackup, false},
	{"POST", "/v1/backups/{name}/restore", false, (*Server).restoreBackup, false},
	{"GET", "/v1/upgrade/plan", false, (*Server).upgradePlan, false},
	{"POST", "/v1/upgrade/run", false, (*Server).upgradeRun, false},
	{"POST", "/v1/restart", true, (*Server).restart, false},
	{"GET", "/v1/events", false, (*Server).events, false},
	{"GET", "/v1/tokens", true, (*Server).listTokens, false},
	{"POST", "/v1/tokens", true, (*Server).createToken, false},
	{"DELETE", "/v1/tokens/{id}", true, (*Server).revokeToken, false},
	{"GET", "/v1/sharedenv", false, (*Server).sharedEnv, false},
	{"GET", "/v1/users", false, (*Server).listUsers, false},
	{"POST", "/v1/users/{user}/admin", false, (*Server).setAdmin, false},
	{"POST", "/v1/users/{user}/unlink", false, (*Server).unlinkUser, false},
	{"DELETE", "/v1/users/{user}", false, (*Server).deleteUser, false},
	{"GET", "/v1/shares", false, (*Server).listShares, false},
	{"POST", "/v1/shares", false, (*Server).createShare, false},
	{"POST", "/v1/shares/{name}/members", false, (*Server).changeShareMembers, false},
	{"DELETE", "/v1/shares/{name}", false, (*Server).deleteShare, false},
	{"POST", "/v1/shares/{name}/check", false, (*Server).checkShare, true},
	{"POST", "/v1/shares/{name}/repair", false, (*Server).repairShare, true},
}

// routes builds the mux: one entry per path, dispatching on the method
// itself so wrong methods and unknown paths get JSON errors too.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	byPath := map[string]methods{}
	var order []string
	for _, rt := range table {
		if byPath[rt.path] == nil {
			byPath[rt.path] = methods{}
			order = append(order, rt.path)
		}
		byPath[rt.path][rt.method] = rt
	}
	for _, p := range order {
		mux.Handle(p, s.dispatch(byPath[p]))
	}
	mux.Handle("/", s.dispatch(nil))
	return mux
}

type methods map[string]route

// dispatch checks the method, then the route's permission (ServeHTTP has
// already refused peers without a role).
func (s *Server) dispatch(ms methods) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := identityOf(r.Context())
		if ms == nil {
			writeError(w, errorf(http.StatusNotFound, "unknown endpoint %s %s: this hub (version %s) serves %s", r.Method, r.URL.Path, version.Version, endpointList()))
			return
		}
		rt, ok := ms[r.Method]
		if !ok {
			allowed := make([]string, 0, len(ms))
			for m := range ms {
				allowed = append(allowed, m)
			}
			slices.Sort(allowed)
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, errorf(http.StatusMethodNotAllowed, "%s %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
			return
		}
		if !rt.members && who.role != wire.RoleAdmin {
			s.log.Info("refused admin-only request from a member", "uid", who.uid, "user", who.name, "method", r.Method, "path", r.URL.Path)
			writeError(w, errorf(http.StatusForbidden, "%s %s needs an admin; %s is a member (%s), and members may only see the status, their own sessions and logs, manage their own tokens, and restart the hub",
				r.Method, rt.path, who.actor(), who.why))
			return
		}
		if !rt.own {
			slots := s.writes
			if r.Method == http.MethodGet {
				slots = s.reads
			}
			if !slots.acquire(r.Context(), who.uid) {
				return
			}
			defer slots.release()
		}
		if err := rt.handle(s, w, r, who); err != nil {
			var he *httpError
			if !errors.As(err, &he) {
				he = s.internal(r, err)
			}
			writeError(w, he)
		}
	})
}

func endpointList() string {
	var out []string
	for _, rt := range table {
		out = append(out, rt.method+" "+rt.path)
	}
	return strings.Join(out, ", ")
}

// httpError is an error with the status it is answered with.
type httpError struct {
	status     int
	msg        string
	retryAfter time.Duration
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// internal maps an unexpected error: a busy database is worth retrying,
// anything else is logged and passed on as it is (the messages are
// written for admins).
func (s *Server) internal(r *http.Request, err error) *httpError {
	if errors.Is(err, store.ErrBusy) {
		return &httpError{status: http.StatusServiceUnavailable, msg: err.Error() + ": try again in a moment", retryAfter: time.Second}
	}
	s.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return &httpError{status: http.StatusInternalServerError, msg: err.Error()}
}

func writeError(w http.ResponseWriter, e *httpError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.status, wire.Error{Error: e.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// queryInt reads the number of r's query parameter key: def when it is
// absent, a 400 that says what to give when it is not from lo to hi.
func queryInt(r *http.Request, key string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	switch {
	case err == nil && n >= lo && n <= hi:
		return n, nil
	case hi == math.MaxInt:
		return 0, errorf(http.StatusBadRequest, "%s=%q: give a number from %d up", key, v, lo)
	}
	return 0, errorf(http.StatusBadRequest, "%s=%q: give a number from %d to %d", key, v, lo, hi)
}

// decodeBody reads an optional JSON body into v: empty is fine (v keeps
// its zero value), anything else must be one JSON object of known fields
// within wire.MaxBodyBytes.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, wire.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes", wire.MaxBodyBytes)
	}
	if err != nil {
		return errorf(http.StatusBadRequest, "bad request body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "bad request body: more than one JSON value")
	}
	return nil
}
