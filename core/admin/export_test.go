package admin

import (
	"net/http"
	"time"

	"github.com/hubd/hubd/core/admin/wire"
)

// Hooks for the tests of package admin_test, which start the whole hub
// through core/server and then reach into its admin server.

// Identity is a peer as the socket sees it; handler tests make them up.
type Identity = identity

// NewIdentity makes up a peer.
func NewIdentity(uid int, name string, role wire.Role, why string) Identity {
	return identity{uid: uid, name: name, role: role, why: why}
}

// UID and Name are the peer's.
func (id identity) UID() int { return id.uid }

// Name is the peer's account name.
func (id identity) Name() string { return id.name }

// ServeAs answers r as if it came from who.
func (s *Server) ServeAs(w http.ResponseWriter, r *http.Request, who Identity) {
	s.ServeHTTP(w, r.WithContext(withIdentity(r.Context(), who)))
}

// SetRestarter replaces what restarts the hub.
func (s *Server) SetRestarter(r Restarter) { s.restarter = r }

// SetGPUProbe makes the sessions call run nvidia-smi from path.
func (s *Server) SetGPUProbe(path string) { s.gpu = newGPUProbe(path, time.Now) }

// BackupSlot is held while a backup or prune runs.
func (s *Server) BackupSlot() chan struct{} { return s.backupSlot }

// Reexeced forgets the restart state as a new hub process starts
// without it.
func (s *Server) Reexeced() {
	s.restartMu.Lock()
	s.lastRestart, s.restartSeeded = time.Time{}, false
	s.restartMu.Unlock()
}

// ForgetLastRestart lifts the restart rate limit.
func (s *Server) ForgetLastRestart() {
	s.restartMu.Lock()
	s.lastRestart, s.restartSeeded = time.Time{}, true
	s.restartMu.Unlock()
}

// Routes lists the API as "METHOD /path" with {user} and {name} holes.
func Routes() []string {
	var out []string
	for _, rt := range table {
		out = append(out, rt.method+" "+rt.path)
	}
	return out
}

// MaxLogBytes bounds a log tail's answer.
const MaxLogBytes = maxLogBytes
