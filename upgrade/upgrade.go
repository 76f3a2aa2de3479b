// Package upgrade owns hubd's database schema: an append-only list of
// versioned steps, the plan between the version a database is at and the
// version this binary needs, and applying that plan in one transaction.
// Taking a backup is the caller's: Options.Before runs before the first
// step and can refuse the upgrade (core/server's UpgradeWithBackup does).
package upgrade

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// BehindError means the database needs `hubd upgrade-db` before use.
type BehindError struct{ DB, Binary int }

func (e *BehindError) Error() string {
	return fmt.Sprintf("database schema is at version %d but this hubd needs version %d: run `hubd upgrade-db` (it takes a backup first)", e.DB, e.Binary)
}

// NewerError means the database was written by a newer hubd.
type NewerError struct{ DB, Binary int }

func (e *NewerError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this hubd supports (version %d): run the newer hubd, or restore a backup made with this version", e.DB, e.Binary)
}

// ErrNotHubd means the file holds tables but no hubd schema record.
var ErrNotHubd = errors.New("the database has tables but no hubd schema table: it is not a hubd database; point data.db at the right file")

// Plan is what an upgrade would do.
type Plan struct {
	From, To int
	Steps    []Step
}

// Pending reports whether the plan has anything to do.
func (p Plan) Pending() bool { return len(p.Steps) > 0 }

// Version reads the schema version of db: 0 for an empty database.
func Version(ctx context.Context, q querier) (int, error) {
	var tables int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema'`).Scan(&tables); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if tables == 0 {
		var any int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).Scan(&any); err != nil {
			return 0, fmt.Errorf("read schema version: %w", err)
		}
		if any > 0 {
			return 0, ErrNotHubd
		}
		return 0, nil
	}
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT max(version) FROM schema`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// MakePlan compares the database with steps. It fails with *NewerError when
// the database is ahead of the steps.
func MakePlan(ctx context.Context, db *sql.DB, steps []Step) (Plan, error) {
	from, err := Version(ctx, db)
	if err != nil {
		return Plan{}, err
	}
	return planFrom(from, steps)
}

func planFrom(from int, steps []Step) (Plan, error) {
	to := steps[len(steps)-1].Version
	if from > to {
		return Plan{}, &NewerError{DB: from, Binary: to}
	}
	p := Plan{From: from, To: to}
	for _, s := range steps {
		if s.Version > from {
			p.Steps = append(p.Steps, s)
		}
	}
	return p, nil
}

// Check is what `hubd serve` runs: nil when db is at the version of steps,
// *BehindError or *NewerError otherwise. An empty database is behind too.
func Check(ctx context.Context, db *sql.DB, steps []Step) error {
	p, err := MakePlan(ctx, db, steps)
	if err != nil {
		return err
	}
	if p.Pending() {
		return &BehindError{DB: p.From, Binary: p.To}
	}
	return nil
}

// Options tune Apply.
type Options struct {
	// Before runs once, after the plan is known and before the first step,
	// only when something is pending and the database is not empty (a new
	// database has nothing to back up). Returning an error aborts the
	// upgrade with nothing changed.
	Before func(ctx context.Context, p Plan) error
	// Progress is told about each step as it starts.
	Progress func(s Step)
	// Now stamps schema rows; time.Now when nil.
	Now func() time.Time
}

// Apply brings db to the newest version of steps in one transaction and
// returns the plan it carried out. A failing step rolls everything back.
func Apply(ctx context.Context, db *sql.DB, steps []Step, opts Options) (Plan, error) {
	if err := checkSteps(steps); err != nil {
		return Plan{}, err
	}
	plan, err := MakePlan(ctx, db, steps)
	if err != nil || !plan.Pending() {
		return plan, err
	}
	if plan.From > 0 && opts.Before != nil {
		if err := opts.Before(ctx, plan); err != nil {
			return plan, fmt.Errorf("before upgrading: %w", err)
		}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	// One connection for the whole upgrade: foreign keys must be off while
	// tables are rebuilt, and that pragma is per connection and ignored
	// inside a transaction.
	conn, err := db.Conn(ctx)
	if err != nil {
		return plan, fmt.Errorf("open connection for upgrade: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return plan, fmt.Errorf("disable foreign keys for upgrade: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`)

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return plan, fmt.Errorf("begin upgrade: %w", err)
	}
	defer tx.Rollback()

	// Someone may have upgraded between planning and now.
	from, err := Version(ctx, tx)
	if err != nil {
		return plan, err
	}
	if from != plan.From {
		return plan, fmt.Errorf("database changed from version %d to %d while planning: run the upgrade again", plan.From, from)
	}
	for _, s := range plan.Steps {
		if opts.Progress != nil {
			opts.Progress(s)
		}
		if err := s.Apply(ctx, tx); err != nil {
			return plan, fmt.Errorf("step %d (%s): %w; nothing was changed", s.Version, s.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema (version, applied_at) VALUES (?, ?)`,
			s.Version, now().UTC().Format(time.RFC3339Nano)); err != nil {
			return plan, fmt.Errorf("record step %d: %w; nothing was changed", s.Version, err)
		}
	}
	if err := foreignKeyCheck(ctx, tx); err != nil {
		return plan, err
	}
	if err := tx.Commit(); err != nil {
		return plan, fmt.Errorf("commit upgrade: %w; nothing was changed", err)
	}
	return plan, nil
}

func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("check foreign keys: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return fmt.Errorf("check foreign keys: %w", err)
		}
		return fmt.Errorf("upgrade would leave a row of %s (rowid %d) pointing at a missing %s row; nothing was changed", table, rowid.Int64, parent)
	}
	return rows.Err()
}

// checkSteps guards the append-only rule: versions contiguous from 1.
func checkSteps(steps []Step) error {
	if len(steps) == 0 {
		return errors.New("no schema steps")
	}
	for i, s := range steps {
		if s.Version != i+1 {
			return fmt.Errorf("schema step %d has version %d: versions must run 1, 2, 3… without gaps", i+1, s.Version)
		}
	}
	return nil
}
