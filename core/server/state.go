package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/fsutil"
	"github.com/hubd/hubd/internal/version"
	"github.com/hubd/hubd/upgrade"
)

// markerName is written next to the database when the hub creates its
// schema. Its presence means the data directory has been used, so an empty
// database there was lost (a deleted -wal after a crash, a truncated file)
// and must not silently become a new, empty hub.
const markerName = ".hubd-created"

// MarkerPath is the marker file of the database at db.
func MarkerPath(db string) string { return filepath.Join(filepath.Dir(db), markerName) }

// LostDatabaseError means the database has no schema although its data
// directory shows that a hub used it before.
type LostDatabaseError struct {
	DB       string
	Evidence []string
	Backups  string // the backup directory
}

func (e *LostDatabaseError) Error() string {
	return fmt.Sprintf("database %s is empty, but this hub has run here before (%s): its data was lost (a deleted or damaged -wal file, a truncated database). "+
		"Restore the newest backup (`hubd backup list`, then `hubd backup restore <archive>` from %s); "+
		"to start over with an empty hub on purpose, move the database and %s away first",
		e.DB, strings.Join(e.Evidence, "; "), e.Backups, markerName)
}

// usedBefore lists what shows that a hub already ran with this data: the
// marker written when the schema was created, and backup archives.
func usedBefore(cfg config.Config) []string {
	var out []string
	if fi, err := os.Stat(MarkerPath(cfg.Data.DB)); err == nil {
		out = append(out, fmt.Sprintf("%s from %s", MarkerPath(cfg.Data.DB), fi.ModTime().UTC().Format(time.DateTime)))
	}
	if list, err := backups.List(cfg.Backups.Dir); err == nil && len(list) > 0 {
		out = append(out, fmt.Sprintf("%d backup(s) in %s", len(list), cfg.Backups.Dir))
	}
	return out
}

// CheckNotLost refuses an empty database in a data directory that a hub
// already used (see LostDatabaseError); version is the database's schema
// version.
func CheckNotLost(cfg config.Config, version int) error {
	if version != 0 {
		return nil
	}
	if ev := usedBefore(cfg); len(ev) > 0 {
		return &LostDatabaseError{DB: cfg.Data.DB, Evidence: ev, Backups: cfg.Backups.Dir}
	}
	return nil
}

// LostLogError means the hub stopped without closing its database (a
// crash, kill -9, power loss) and the write-ahead log that holds its last
// acknowledged writes is gone, while the log's index is still there.
type LostLogError struct{ DB string }

func (e *LostLogError) Error() string {
	return fmt.Sprintf("%s-wal is missing but %s-shm is there: the hub did not stop cleanly and its write-ahead log, which holds the writes since the last checkpoint, was deleted. "+
		"Restore the newest backup (`hubd backup list`, then `hubd backup restore <archive>`), or put the -wal file back; "+
		"to go on with only what %s itself holds, delete %s-shm and start again",
		e.DB, e.DB, e.DB, e.DB)
}

// checkLog refuses to open a database whose write-ahead log was lost
// after a crash: SQLite would open the main file as if nothing happened.
// A clean close removes both files, a crash leaves both.
func checkLog(cfg config.Config) error {
	_, walErr := os.Stat(cfg.Data.DB + "-wal")
	_, shmErr := os.Stat(cfg.Data.DB + "-shm")
	if errors.Is(walErr, os.ErrNotExist) && shmErr == nil {
		return &LostLogError{DB: cfg.Data.DB}
	}
	return nil
}

// OpenState opens the database for a hub: it takes the database's lock
// file, refuses a database whose data or write-ahead log was lost, creates the schema
// of a new one (then checkpoints it and writes the marker), and refuses an
// older schema (unless hub.auto_upgrade_db, then it upgrades with a
// backup, reporting to out) or a newer one. The caller closes the store and
// releases the lock, in that order.
func OpenState(ctx context.Context, cfg config.Config, out io.Writer, now func() time.Time) (*store.Store, *fsutil.Lock, error) {
	lock, pid, err := fsutil.TryLock(fsutil.LockPath(cfg.Data.DB))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, nil, fmt.Errorf("another hubd (pid %d) is already running on %s", pid, cfg.Data.DB)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the hub's user needs write access to %s", err, cfg.Data.DB)
	}
	if err := checkLog(cfg); err != nil {
		lock.Release()
		return nil, nil, err
	}
	st, err := openSchema(ctx, cfg, out, now)
	if err != nil {
		lock.Release()
		return nil, nil, err
	}
	return st, lock, nil
}

// missingOrEmpty reports whether there is no database at path yet.
func missingOrEmpty(path string) bool {
	fi, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0)
}

func openSchema(ctx context.Context, cfg config.Config, out io.Writer, now func() time.Time) (*store.Store, error) {
	// Refuse before store.Open creates a file: a refused start leaves the
	// data directory as it found it.
	if missingOrEmpty(cfg.Data.DB) {
		if err := CheckNotLost(cfg, 0); err != nil {
			return nil, err
		}
	}
	st, err := store.Open(ctx, cfg.Data.DB, store.Options{Now: now})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*store.Store, error) {
		st.Close()
		return nil, fmt.Errorf("%s: %w", cfg.Data.DB, err)
	}
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		return fail(err)
	}
	if err := CheckNotLost(cfg, v); err != nil {
		st.Close()
		return nil, err
	}
	if v == 0 {
		if _, err := st.Upgrade(ctx, upgrade.Options{}); err != nil {
			return fail(fmt.Errorf("create schema: %w", err))
		}
		// The new schema goes into the main file at once: a crash that
		// loses the -wal must not leave an empty file looking like a new
		// hub, and the marker then tells an empty database from a new one.
		if err := st.Checkpoint(ctx); err != nil {
			return fail(err)
		}
		if err := writeMarker(cfg.Data.DB); err != nil {
			return fail(err)
		}
		return st, nil
	}
	err = st.Check(ctx)
	if behind, ok := errors.AsType[*upgrade.BehindError](err); ok && cfg.Hub.AutoUpgradeDB {
		fmt.Fprintf(out, "hub.auto_upgrade_db is set: upgrading %s from schema %d to %d\n", cfg.Data.DB, behind.DB, behind.Binary)
		_, err = UpgradeWithBackup(ctx, out, cfg, st)
	}
	if err != nil {
		return fail(err)
	}
	// Databases created before the marker existed get it now.
	if _, err := os.Stat(MarkerPath(cfg.Data.DB)); errors.Is(err, os.ErrNotExist) {
		if err := writeMarker(cfg.Data.DB); err != nil {
			return fail(err)
		}
	}
	return st, nil
}

func writeMarker(db string) error {
	if err := fsutil.WriteFileAtomic(MarkerPath(db), []byte("hubd "+version.Version+" uses this database\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", MarkerPath(db), err)
	}
	return nil
}

// UpgradeWithBackup applies the pending schema steps, taking a backup of
// the database and configuration right before the first one (an empty
// database has nothing to back up). It returns the backup's path.
func UpgradeWithBackup(ctx context.Context, out io.Writer, cfg config.Config, st *store.Store) (string, error) {
	var backupPath string
	var configFiles []string
	if cfg.Source != "" {
		configFiles = []string{cfg.Source}
	}
	_, err := st.Upgrade(ctx, upgrade.Options{
		Before: func(ctx context.Context, p upgrade.Plan) error {
			fmt.Fprintf(out, "backing up %s to %s …\n", cfg.Data.DB, cfg.Backups.Dir)
			info, err := st.Backup(ctx, backups.CreateOptions{
				Dir: cfg.Backups.Dir, ConfigFiles: configFiles, HubdVersion: version.Version, Label: "pre-upgrade",
			})
			if err != nil {
				return fmt.Errorf("backup failed, nothing was upgraded: %w", err)
			}
			backupPath = info.Path
			fmt.Fprintf(out, "backup written: %s\n", info.Path)
			return nil
		},
		Progress: func(s upgrade.Step) { fmt.Fprintf(out, "applying step %d: %s\n", s.Version, s.Name) },
	})
	return backupPath, err
}
