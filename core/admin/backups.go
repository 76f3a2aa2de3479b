package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/internal/version"
)

func (s *Server) listBackups(w http.ResponseWriter, _ *http.Request, _ identity) error {
	list, err := backups.List(s.cfg.Backups.Dir)
	if err != nil {
		return err
	}
	out := wire.Backups{Dir: s.cfg.Backups.Dir, Backups: make([]wire.Backup, 0, len(list))}
	for _, info := range list {
		out.Backups = append(out.Backups, backupOf(info))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func backupOf(info backups.Info) wire.Backup {
	b := wire.Backup{Name: filepath.Base(info.Path), Path: info.Path, Size: info.Size}
	if info.Err != nil {
		b.Error = info.Err.Error()
		return b
	}
	m := info.Manifest
	b.Created, b.SchemaVersion, b.HubdVersion, b.Label, b.Host = m.Created, m.SchemaVersion, m.HubdVersion, m.Label, m.Host
	return b
}

// labelRE is backups.Create's rule, checked here too so a typo is a 400
// before anything starts rather than a failed backup.
var labelRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// createBackup makes a backup while the hub runs and streams its progress
// as NDJSON. Failures before the first progress line get an ordinary
// error answer; later ones end the stream with an error line. A client
// that hangs up cancels the backup, which then leaves nothing behind.
func (s *Server) createBackup(w http.ResponseWriter, r *http.Request, who identity) error {
	var req wire.BackupRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Label == "" {
		req.Label = "manual"
	}
	if !labelRE.MatchString(req.Label) {
		return errorf(http.StatusBadRequest, "backup label %q: use up to 40 lowercase letters, digits and dashes", req.Label)
	}
	st := &ndjson{w: w}
	release, ok := s.waitBackupSlot(r.Context(), func() {
		st.line(wire.StreamLine{Progress: wire.Progress{Stage: "waiting for the backup already under way"}})
	})
	if !ok {
		return nil
	}
	defer release()
	var configs []string
	if s.cfg.Source != "" {
		configs = append(configs, s.cfg.Source)
	}
	info, err := s.store.Backup(r.Context(), backups.CreateOptions{
		Dir: s.cfg.Backups.Dir, ConfigFiles: configs,
		HubdVersion: version.Version, Label: req.Label,
		Progress: func(p backups.Progress) {
			st.line(wire.StreamLine{Progress: wire.Progress{Stage: p.Stage, Done: p.Done, Total: p.Total}})
		},
	})
	if err != nil {
		s.audit(r.Context(), who, "backup.create", s.cfg.Backups.Dir, "failed: "+err.Error())
		if !st.begun() {
			status := http.StatusInternalServerError
			if errors.Is(err, backups.ErrNoSpace) {
				status = http.StatusInsufficientStorage
			}
			return &httpError{status: status, msg: "backup failed: " + err.Error()}
		}
		st.line(wire.StreamLine{Error: "backup failed: " + err.Error()})
		return nil
	}
	s.audit(r.Context(), who, "backup.create", info.Path, backups.HumanSize(info.Size))
	res, _ := json.Marshal(backupOf(info))
	st.line(wire.StreamLine{Result: res})
	return nil
}

// waitBackupSlot waits for the one backup slot (a second backup or prune
// waits for the first instead of racing it), telling waiting first when
// it has to wait. ok is false when the client gave up.
func (s *Server) waitBackupSlot(ctx context.Context, waiting func()) (release func(), ok bool) {
	select {
	case s.backupSlot <- struct{}{}:
	default:
		waiting()
		select {
		case s.backupSlot <- struct{}{}:
		case <-ctx.Done():
			return nil, false
		}
	}
	return func() { <-s.backupSlot }, true
}

// pruneBackups removes old backups as `hubd backup prune` does, after any
// backup under way.
func (s *Server) pruneBackups(w http.ResponseWriter, r *http.Request, who identity) error {
	var req wire.PruneRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	keep, age := s.cfg.Backups.Keep, s.cfg.Backups.MaxAge.D()
	if req.Keep != nil {
		keep = *req.Keep
	}
	if req.MaxAgeSeconds != nil {
		age = time.Duration(*req.MaxAgeSeconds) * time.Second
	}
	if keep < 0 || age < 0 {
		return errorf(http.StatusBadRequest, "keep and max_age_seconds must not be negative (0 means no limit)")
	}
	release, ok := s.waitBackupSlot(r.Context(), func() {})
	if !ok {
		return nil
	}
	defer release()
	removed, err := backups.Prune(s.cfg.Backups.Dir, keep, age, s.now())
	out := wire.PruneResult{Dir: s.cfg.Backups.Dir, Removed: make([]wire.Backup, 0, len(removed))}
	for _, info := range removed {
		out.Removed = append(out.Removed, backupOf(info))
	}
	detail := fmt.Sprintf("removed %d (keep %d, max age %s)", len(removed), keep, age)
	if err != nil {
		s.audit(r.Context(), who, "backup.prune", s.cfg.Backups.Dir, detail+"; failed: "+err.Error())
		return err
	}
	s.audit(r.Context(), who, "backup.prune", s.cfg.Backups.Dir, detail)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ndjson writes one JSON line at a time, flushed, sending the 200 header
// with the first line. backups.Create reports the snapshot's progress
// from a goroutine of its own, hence the lock.
type ndjson struct {
	w       http.ResponseWriter
	mu      sync.Mutex
	started bool
}

func (n *ndjson) line(v wire.StreamLine) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.started {
		n.started = true
		n.w.Header().Set("Content-Type", wire.NDJSON)
		n.w.WriteHeader(http.StatusOK)
	}
	// A write error means the client left; the request context is then
	// cancelled and the backup stops on its own.
	_ = json.NewEncoder(n.w).Encode(v)
	_ = http.NewResponseController(n.w).Flush()
}

func (n *ndjson) begun() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.started
}

// archivePath resolves a backup named in the URL to a file of the backup
// directory; only plain file names are accepted, so no request can point
// the hub at another file.
func (s *Server) archivePath(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || !strings.HasSuffix(name, ".tar.gz") {
		return "", errorf(http.StatusBadRequest, "backup %q: give the file name of a backup as the backups list shows it (hubd-….tar.gz)", name)
	}
	path := filepath.Join(s.cfg.Backups.Dir, name)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", errorf(http.StatusNotFound, "no backup %s in %s: the backups list shows what there is", name, s.cfg.Backups.Dir)
	}
	if err != nil {
		return "", fmt.Errorf("backup %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", errorf(http.StatusBadRequest, "backup %s is not a regular file", path)
	}
	return path, nil
}

// verifyBackup reads a whole archive and checks it. A damaged archive is
// answered 422 with what is wrong.
func (s *Server) verifyBackup(w http.ResponseWriter, r *http.Request, _ identity) error {
	path, err := s.archivePath(r.PathValue("name"))
	if err != nil {
		return err
	}
	info, err := backups.Verify(r.Context(), path)
	if err != nil {
		return errorf(http.StatusUnprocessableEntity, "verify failed: %v", err)
	}
	writeJSON(w, http.StatusOK, backupOf(info))
	return nil
}

// restoreBackup refuses: a restore replaces the database file under the
// running hub, which holds it open and locked, so it must run with the
// hub stopped. The answer names the exact command.
func (s *Server) restoreBackup(_ http.ResponseWriter, r *http.Request, who identity) error {
	path, err := s.archivePath(r.PathValue("name"))
	if err != nil {
		return err
	}
	s.audit(r.Context(), who, "backup.restore", path, "refused: the hub is running")
	return errorf(http.StatusConflict, "a running hub cannot restore its own database: stop the hub and run `hubd backup restore %s` as root (or `hubd backup restore --stop-hub %s`), then start the hub again", path, path)
}
