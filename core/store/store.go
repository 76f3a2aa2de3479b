// Package store is hubd's state in one sqlite file: users, servers, API
// tokens, OAuth clients and codes, login sessions and the audit log. The
// schema itself lives in package upgrade; this package only reads and
// writes rows of the newest schema.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/upgrade"
)

// Domain errors; callers test them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
	ErrBusy     = errors.New("database is busy")
)

// Store is an open state database.
type Store struct {
	db       *sql.DB
	path     string
	readOnly bool
	now      func() time.Time
}

// Options tune Open.
type Options struct {
	// BusyTimeout is how long a statement waits for a lock before ErrBusy.
	BusyTimeout time.Duration
	// ReadOnly opens the file without write access (backups, doctor).
	ReadOnly bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// DSN is the modernc connection string for path: WAL, a busy timeout,
// foreign keys on, FULL sync (an acknowledged write survives a crash), and
// immediate write transactions so a read never has to be upgraded to a
// write halfway (which fails with SQLITE_BUSY instead of waiting).
func DSN(path string, busy time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Set("mode", "ro")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open opens (creating if needed) the database at path. It does not change
// the schema: see CreateOrCheck.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("database path %s: %w", path, err)
		}
		path = abs
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("database directory %s does not exist: create it (hubd setup does) or set data.db", dir)
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("database %s: %w", path, err)
		}
	} else if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		// A new database is the hub's alone (tokens, sessions); SQLite
		// would create it world-readable, and gives its -wal and -shm
		// files the database's mode.
		f.Close()
	}
	db, err := sql.Open("sqlite", DSN(path, opts.BusyTimeout, opts.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// Readers run in parallel under WAL; writers queue on sqlite's lock.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := probe(ctx, db, opts.ReadOnly); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, explainOpen(err, path))
	}
	return &Store{db: db, path: path, readOnly: opts.ReadOnly, now: opts.Now}, nil
}

// probe runs a read and, for writable handles, takes the write lock once,
// so a read-only or corrupt file fails at startup, not on the first login.
func probe(ctx context.Context, db *sql.DB, readOnly bool) error {
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil || readOnly {
		return err
	}
	// SQLite opens a file it may not write read-only without a word and
	// fails only at the first write: write the header's user_version back
	// unchanged, then roll back.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v))
	return err
}

func explainOpen(err error, path string) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM:
			return fmt.Errorf("%w: the hub's user needs read and write access to %s and its directory", err, path)
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return fmt.Errorf("%w: the file is damaged or not a database; restore a backup with `hubd backup restore`", err)
		}
	}
	return mapErr(err)
}

// CreateOrCheck creates the schema in an empty database (at the newest
// version, nothing to back up) and otherwise checks that the database is
// at the version this binary needs (*upgrade.BehindError,
// *upgrade.NewerError).
func (s *Store) CreateOrCheck(ctx context.Context) error {
	v, err := upgrade.Version(ctx, s.db)
	if err != nil {
		return err
	}
	if v == 0 {
		if _, err := upgrade.Apply(ctx, s.db, upgrade.Steps(), upgrade.Options{Now: s.now}); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		return nil
	}
	return upgrade.Check(ctx, s.db, upgrade.Steps())
}

// Check reports whether the database is at the schema this binary needs
// (*upgrade.BehindError, *upgrade.NewerError otherwise).
func (s *Store) Check(ctx context.Context) error {
	return upgrade.Check(ctx, s.db, upgrade.Steps())
}

// SchemaVersion is the database's schema version; 0 for an empty database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	return upgrade.Version(ctx, s.db)
}

// Plan says which schema steps the database is missing.
func (s *Store) Plan(ctx context.Context) (upgrade.Plan, error) {
	return upgrade.MakePlan(ctx, s.db, upgrade.Steps())
}

// Upgrade applies every pending schema step in one transaction; opts'
// Before runs first (the pre-upgrade backup).
func (s *Store) Upgrade(ctx context.Context, opts upgrade.Options) (upgrade.Plan, error) {
	if opts.Now == nil {
		opts.Now = s.now
	}
	return upgrade.Apply(ctx, s.db, upgrade.Steps(), opts)
}

// Backup writes a consistent snapshot of the live database (with the
// files o names) as a backup archive; o.DB and o.DBPath are this store's.
func (s *Store) Backup(ctx context.Context, o backups.CreateOptions) (backups.Info, error) {
	o.DB, o.DBPath = s.db, s.path
	return backups.Create(ctx, o)
}

// Ping checks that the database answers (watchdog, health checks).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Checkpoint copies the write-ahead log into the main file and empties
// it, so the main file alone holds every committed write.
func (s *Store) Checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
		return mapErr(fmt.Errorf("checkpoint: %w", err))
	}
	if busy != 0 {
		return fmt.Errorf("checkpoint: %w: a reader or writer held the log", ErrBusy)
	}
	return nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close checkpoints the write-ahead log (so a clean stop never leaves
// committed writes only in the -wal file) and closes the database.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if !s.readOnly {
		errs = append(errs, s.Checkpoint(ctx))
	}
	return errors.Join(append(errs, s.db.Close())...)
}

// mapErr turns driver errors into the domain errors.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT:
			if se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
				return fmt.Errorf("%w: %v", ErrConflict, err)
			}
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: %v", ErrBusy, err)
		}
	}
	return err
}

// tx runs f in a write transaction and maps its errors.
func (s *Store) tx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(fmt.Errorf("begin: %w", err))
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return mapErr(err)
	}
	return mapErr(tx.Commit())
}

// timeFormat is the fixed-width UTC form stored in every timestamp column.
const timeFormat = "2006-01-02T15:04:05.000000Z"

// FormatTime renders t for storage and for the JupyterHub API.
func FormatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// nullTime converts a zero time to NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return FormatTime(t)
}

// parseTime reads a stored timestamp; NULL gives the zero time.
func parseTime(v sql.NullString) time.Time {
	if !v.Valid || v.String == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v.String)
	if err != nil {
		return time.Time{}
	}
	return t
}
