package store

import (
	"context"
	"database/sql"
	"time"
)

// Event is one line of the audit log: who did what to what, from where.
type Event struct {
	ID   int64
	Time time.Time
	// Actor is a user name, "root", "culler", "hub" or "uid:N".
	Actor    string
	ActorUID int // -1 when not known (web requests)
	// Source is where it came from: web, api, admin, cli, culler, hub.
	Source string
	Action string
	Target string
	Detail string
}

// AddEvent appends to the audit log.
func (s *Store) AddEvent(ctx context.Context, e Event) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	var uid any
	if e.ActorUID >= 0 {
		uid = e.ActorUID
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO events (time, actor, actor_uid, source, action, target, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			FormatTime(e.Time), e.Actor, uid, e.Source, e.Action, e.Target, e.Detail)
		return err
	})
}

// EventFilter selects audit events, newest first.
type EventFilter struct {
	Limit    int   // default 100
	BeforeID int64 // page backwards: only events with a smaller id
	Action   string
	Target   string
}

// Events lists audit events, newest first.
func (s *Store) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	q := `SELECT id, time, actor, actor_uid, source, action, target, detail FROM events WHERE 1=1`
	var args []any
	if f.BeforeID > 0 {
		q += ` AND id < ?`
		args = append(args, f.BeforeID)
	}
	if f.Action != "" {
		q += ` AND action = ?`
		args = append(args, f.Action)
	}
	if f.Target != "" {
		q += ` AND target = ?`
		args = append(args, f.Target)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var t sql.NullString
		var uid sql.NullInt64
		if err := rows.Scan(&e.ID, &t, &e.Actor, &uid, &e.Source, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, mapErr(err)
		}
		e.Time = parseTime(t)
		e.ActorUID = -1
		if uid.Valid {
			e.ActorUID = int(uid.Int64)
		}
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}
