package backups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// schemaVersion reads the version the way package upgrade records it; it
// is repeated here because upgrade imports this package.
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w (is this a hubd database?)", err)
	}
	return int(v.Int64), nil
}

// liveSize is the size of the database's pages, the most a snapshot takes.
func liveSize(ctx context.Context, db *sql.DB) (int64, error) {
	var pages, size int64
	if err := db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		return 0, fmt.Errorf("read database size: %w", err)
	}
	if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size); err != nil {
		return 0, fmt.Errorf("read database size: %w", err)
	}
	return pages * size, nil
}

// progressInterval is how often the snapshot's growth is reported.
const progressInterval = 250 * time.Millisecond

// snapshot writes a consistent copy of db to dst (which must not exist)
// with VACUUM INTO: it reads one transaction's view, so writers carry on
// and every commit before it started is in the copy. The copy is switched
// to a rollback journal, so it is one self-contained file, and checked.
func snapshot(ctx context.Context, db *sql.DB, dst string, total int64, progress func(Progress)) error {
	report(progress, Progress{Stage: StageSnapshot, Total: total})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if progress != nil {
		// VACUUM INTO is one statement; the growing file is the only
		// measure of how far it got.
		wg.Go(func() {
			t := time.NewTicker(progressInterval)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if fi, err := os.Stat(dst); err == nil {
						progress(Progress{Stage: StageSnapshot, Done: min(fi.Size(), total), Total: total})
					}
				}
			}
		})
	}
	_, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst)
	close(stop)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("snapshot the database: %w", err)
	}
	report(progress, Progress{Stage: StageSnapshot, Done: total, Total: total})

	snap, err := openFile(dst, false)
	if err != nil {
		return err
	}
	defer snap.Close()
	var mode string
	if err := snap.QueryRowContext(ctx, `PRAGMA journal_mode = DELETE`).Scan(&mode); err != nil {
		return fmt.Errorf("prepare snapshot: %w", err)
	}
	if err := integrityCheck(ctx, snap); err != nil {
		return fmt.Errorf("snapshot: %w; the live database may be damaged: run `hubd doctor`", err)
	}
	return snap.Close()
}

func report(progress func(Progress), p Progress) {
	if progress != nil {
		progress(p)
	}
}

// openFile opens a database file that is not the live one (a snapshot or
// an extracted copy) on a single connection.
func openFile(path string, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	if readOnly {
		q.Set("mode", "ro")
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// integrityCheck runs PRAGMA integrity_check and reports the first
// problems it finds.
func integrityCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check(10)`)
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		problems = append(problems, line)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(problems) == 1 && problems[0] == "ok" {
		return nil
	}
	return fmt.Errorf("integrity check failed: %s", strings.Join(problems, "; "))
}

func isSQLiteFull(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
}
