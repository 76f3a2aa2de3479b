package backups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hubd/hubd/internal/fsutil"
)

// RestoreOptions say what to restore where.
type RestoreOptions struct {
	// Archive is the backup to restore.
	Archive string
	// DBPath is the database to replace.
	DBPath string
	// Dir receives the safety backup of the current database.
	Dir string
	// RestoreConfig also puts the archived config files back in place.
	RestoreConfig bool
	// StopHub sends SIGTERM to a running hub and waits for it to exit.
	StopHub bool
	// MaxSchema refuses archives with a newer schema (0: no limit).
	MaxSchema int
	// HubdVersion goes into the safety backup's manifest.
	HubdVersion string
	Progress    func(Progress)
}

// ConfigFile is a configuration file found in a restored archive.
type ConfigFile struct {
	Member   string // name inside the archive
	Path     string // where it was when backed up
	Restored bool   // written back to Path
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Manifest Manifest
	// SafetyBackup is the backup of the replaced database; zero when there
	// was no database.
	SafetyBackup Info
	// StoppedPid is the hub stopped for the restore (StopHub), else 0.
	StoppedPid int
	Configs    []ConfigFile
}

// NewerSchemaError refuses an archive made by a newer hubd.
type NewerSchemaError struct {
	Archive     string
	Schema, Max int
	HubdVersion string // of the archive
}

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("%s has schema version %d, newer than this hubd supports (version %d): restore it with hubd %s or newer",
		e.Archive, e.Schema, e.Max, e.HubdVersion)
}

// stopWait bounds how long Restore waits for a stopped hub to let go.
const stopWait = 60 * time.Second

// Restore replaces the database with the one in o.Archive. The archive is
// extracted and fully checked beside the database first, the current
// database is backed up (label "pre-restore"), and only then is the new
// file renamed into place; on any failure before that rename the current
// database is untouched. The hub must not run: Restore holds its lock for
// the duration, so it cannot start halfway either.
func Restore(ctx context.Context, o RestoreOptions) (res RestoreResult, err error) {
	m, err := ReadManifest(o.Archive)
	if err != nil {
		return res, err
	}
	res.Manifest = m
	if o.MaxSchema > 0 && m.SchemaVersion > o.MaxSchema {
		return res, &NewerSchemaError{Archive: o.Archive, Schema: m.SchemaVersion, Max: o.MaxSchema, HubdVersion: m.HubdVersion}
	}
	dbDir := filepath.Dir(o.DBPath)
	if fi, err := os.Stat(dbDir); err != nil || !fi.IsDir() {
		return res, fmt.Errorf("database directory %s does not exist: run `hubd setup` (it creates it) or set data.db", dbDir)
	}
	lock, stopped, err := lockHub(ctx, o.DBPath, o.StopHub)
	if err != nil {
		return res, err
	}
	defer lock.Release()
	res.StoppedPid = stopped

	// Extract and check beside the database, so the final step is one
	// rename on the same file system.
	var need int64
	for _, mem := range m.Members {
		if mem.Name == dbMember {
			need = mem.Size
		}
	}
	const fix = "free some space beside the database; nothing was changed"
	f, err := os.CreateTemp(dbDir, "."+filepath.Base(o.DBPath)+".restore-")
	if err != nil {
		return res, spaceError(dbDir, need, fix, fmt.Errorf("create a file beside the database: %w", err))
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	x, err := extractDB(ctx, o.Archive, f, o.Progress)
	if err != nil {
		return res, spaceError(dbDir, need, fix, err)
	}
	old, err := os.Stat(o.DBPath)
	switch {
	case err == nil:
		if err := matchOwner(tmp, old); err != nil {
			return res, err
		}
		res.SafetyBackup, err = safetyBackup(ctx, o)
		if err != nil {
			return res, err
		}
	case errors.Is(err, fs.ErrNotExist):
		if err := matchOwnerOfDir(tmp, dbDir); err != nil {
			return res, err
		}
	default:
		return res, fmt.Errorf("database %s: %w", o.DBPath, err)
	}
	if err := clearSidecars(o.DBPath); err != nil {
		return res, err
	}
	if err := os.Rename(tmp, o.DBPath); err != nil {
		return res, fmt.Errorf("move the restored database into place: %w; the current database is unchanged", err)
	}
	if err := fsutil.SyncDir(dbDir); err != nil {
		return res, err
	}
	res.Configs, err = restoreConfigs(m, x.configs, o.RestoreConfig)
	return res, err
}

// lockHub takes the hub's lock, stopping the hub first when asked.
func lockHub(ctx context.Context, dbPath string, stop bool) (*fsutil.Lock, int, error) {
	path := fsutil.LockPath(dbPath)
	lock, pid, err := fsutil.TryLock(path)
	if err == nil {
		return lock, 0, nil
	}
	if !errors.Is(err, fsutil.ErrLocked) {
		return nil, 0, fmt.Errorf("check whether the hub is running: %w", err)
	}
	if pid <= 0 {
		return nil, 0, fmt.Errorf("%w (it holds %s but recorded no pid): stop it first with `systemctl stop hubd`", ErrHubRunning, path)
	}
	if !stop {
		return nil, 0, fmt.Errorf("%w (pid %d holds %s): stop it first with `systemctl stop hubd`, or pass --stop-hub", ErrHubRunning, pid, path)
	}
	lock, err = fsutil.StopHolder(ctx, path, pid, stopWait)
	switch {
	case errors.Is(err, fsutil.ErrHolderAlive):
		return nil, 0, fmt.Errorf("%w: pid %d did not exit within %s of SIGTERM; stop it with `systemctl stop hubd` and run the restore again", ErrHubRunning, pid, stopWait)
	case err != nil:
		return nil, 0, fmt.Errorf("stop the hub: %w; stop it with `systemctl stop hubd`", err)
	}
	return lock, pid, nil
}

// safetyBackup backs up the current database before it is replaced. It
// opens the database through sqlite, which also recovers a -wal left by a
// hub that crashed, so the backup has those commits too; closing the last
// connection checkpoints the WAL into the file and removes it.
func safetyBackup(ctx context.Context, o RestoreOptions) (Info, error) {
	db, err := openFile(o.DBPath, false)
	if err != nil {
		return Info{}, err
	}
	defer db.Close()
	info, err := Create(ctx, CreateOptions{
		Dir: o.Dir, DB: db, DBPath: o.DBPath, HubdVersion: o.HubdVersion,
		Label: "pre-restore", Progress: o.Progress,
	})
	if err != nil {
		return Info{}, fmt.Errorf("back up the current database before replacing it: %w; nothing was changed (if the current database is damaged, move %s and its -wal and -shm files aside and run the restore again)", err, o.DBPath)
	}
	if err := closeCleanly(ctx, db); err != nil {
		return info, err
	}
	return info, nil
}

// closeCleanly checkpoints the WAL into the database file and closes it.
func closeCleanly(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("checkpoint the current database: %w; nothing was changed", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close the current database: %w; nothing was changed", err)
	}
	return nil
}

// clearSidecars removes the old database's -wal, -journal and -shm files,
// which would otherwise be applied to the restored file: sqlite cannot
// tell that a WAL belongs to another database and replays it. They are
// removed only when they hold nothing: after closeCleanly a WAL is empty
// or gone; anything else means a process still has the database open
// without the lock, or (no database at all) a WAL that belongs to nothing.
func clearSidecars(dbPath string) error {
	for _, suffix := range []string{"-wal", "-journal"} {
		p := dbPath + suffix
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check %s: %w", p, err)
		}
		if fi.Size() > 0 {
			return fmt.Errorf("%s still holds %s of changes that are not in the database, so another process may have it open: stop it (`systemctl stop hubd`), or move %s aside if no process uses it, then run the restore again; nothing was changed",
				p, HumanSize(fi.Size()), p)
		}
	}
	// -shm last: it is only an index of the WAL, safe to drop once the WAL is.
	for _, suffix := range []string{"-wal", "-journal", "-shm"} {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w; nothing was changed", dbPath+suffix, err)
		}
	}
	return nil
}

// matchOwner gives the restored file the owner and mode of the database it
// replaces: a restore runs as root, and the hub must still open the file.
func matchOwner(path string, like fs.FileInfo) error {
	if err := os.Chmod(path, like.Mode().Perm()); err != nil {
		return fmt.Errorf("set mode of the restored database: %w", err)
	}
	return chownLike(path, like)
}

// matchOwnerOfDir is matchOwner without an old database: owner from the
// directory, mode 0600.
func matchOwnerOfDir(path, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("database directory: %w", err)
	}
	return chownLike(path, fi)
}

func chownLike(path string, like fs.FileInfo) error {
	st, ok := like.Sys().(*syscall.Stat_t)
	if !ok || (int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()) {
		return nil
	}
	if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give the restored database to uid %d gid %d: %w; run the restore as root", st.Uid, st.Gid, err)
	}
	return nil
}

// restoreConfigs writes the archived config files back when asked and
// otherwise just reports where they are.
func restoreConfigs(m Manifest, data map[string][]byte, write bool) ([]ConfigFile, error) {
	var out []ConfigFile
	for _, p := range m.ConfigPaths {
		c := ConfigFile{Member: configMember(p), Path: p}
		if write {
			if !filepath.IsAbs(p) {
				return out, fmt.Errorf("the database was restored, but config path %q in the manifest is not absolute; extract %s from the archive by hand", p, c.Member)
			}
			perm := fs.FileMode(0o644)
			old, err := os.Stat(p)
			if err == nil {
				perm = old.Mode().Perm()
			}
			if err := fsutil.WriteFileAtomic(p, data[c.Member], perm); err != nil {
				return out, fmt.Errorf("the database was restored, but not config file %s: %w", p, err)
			}
			if old != nil {
				if err := chownLike(p, old); err != nil {
					return out, err
				}
			}
			c.Restored = true
		}
		out = append(out, c)
	}
	return out, nil
}
