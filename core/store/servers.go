package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Server states. A server row exists for every server ever started; only
// starting, running and stopping count as active.
const (
	StateStopped  = "stopped"
	StateStarting = "starting"
	StateRunning  = "running"
	StateStopping = "stopping"
	StateFailed   = "failed"
)

// Server is a row of servers.
type Server struct {
	ID     int64
	UserID int64
	User   string // filled by queries that join users
	Name   string
	State  string
	// Spawner is the spawner kind that started it; SpawnerState its JSON
	// state (pid, pid start time, unit) used to re-attach after a restart.
	Spawner       string
	SpawnerState  string
	IP            string
	Port          int
	Started       time.Time
	LastActivity  time.Time
	ProxyActivity time.Time
	TokenHash     string
	UserOptions   string
	Version       string
	StoppedAt     time.Time
	StopReason    string
	StoppedBy     string
}

// Active reports whether the server is starting, running or stopping.
func (s Server) Active() bool {
	return s.State == StateStarting || s.State == StateRunning || s.State == StateStopping
}

const serverCols = `s.id, s.user_id, u.name, s.name, s.state, s.spawner, s.spawner_state, s.ip, s.port, s.started,
	s.last_activity, s.proxy_activity, coalesce(s.token_hash, ''), s.user_options, s.version, s.stopped_at, s.stop_reason, s.stopped_by`

func scanServer(sc interface{ Scan(...any) error }) (Server, error) {
	var s Server
	var started, last, proxyAct, stopped sql.NullString
	err := sc.Scan(&s.ID, &s.UserID, &s.User, &s.Name, &s.State, &s.Spawner, &s.SpawnerState, &s.IP, &s.Port,
		&started, &last, &proxyAct, &s.TokenHash, &s.UserOptions, &s.Version, &stopped, &s.StopReason, &s.StoppedBy)
	if err != nil {
		return Server{}, err
	}
	s.Started, s.LastActivity, s.ProxyActivity, s.StoppedAt = parseTime(started), parseTime(last), parseTime(proxyAct), parseTime(stopped)
	return s, nil
}

// Server returns the user's named server ("" = default) or ErrNotFound.
func (s *Store) Server(ctx context.Context, userID int64, name string) (Server, error) {
	srv, err := scanServer(s.db.QueryRowContext(ctx, `SELECT `+serverCols+` FROM servers s JOIN users u ON u.id = s.user_id
		WHERE s.user_id = ? AND s.name = ?`, userID, name))
	return srv, mapErr(err)
}

// ServersOf returns every server row of the given users, keyed by user id.
func (s *Store) ServersOf(ctx context.Context, userIDs []int64) (map[int64][]Server, error) {
	out := map[int64][]Server{}
	if len(userIDs) == 0 {
		return out, nil
	}
	q := `SELECT ` + serverCols + ` FROM servers s JOIN users u ON u.id = s.user_id WHERE s.user_id IN (` + placeholders(len(userIDs)) + `) ORDER BY s.id`
	args := make([]any, len(userIDs))
	for i, id := range userIDs {
		args[i] = id
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		srv, err := scanServer(rows)
		if err != nil {
			return nil, mapErr(err)
		}
		out[srv.UserID] = append(out[srv.UserID], srv)
	}
	return out, mapErr(rows.Err())
}

// ActiveServers returns every starting, running or stopping server.
func (s *Store) ActiveServers(ctx context.Context) ([]Server, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+serverCols+` FROM servers s JOIN users u ON u.id = s.user_id
		WHERE s.state IN ('starting', 'running', 'stopping') ORDER BY s.id`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Server
	for rows.Next() {
		srv, err := scanServer(rows)
		if err != nil {
			return nil, mapErr(err)
		}
		out = append(out, srv)
	}
	return out, mapErr(rows.Err())
}

// CountServers counts servers by state.
func (s *Store) CountServers(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, count(*) FROM servers GROUP BY state`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, mapErr(err)
		}
		out[st] = n
	}
	return out, mapErr(rows.Err())
}

// ServerStart records a server about to start: state starting, a fresh
// token and OAuth client (replacing those of any earlier run), cleared stop
// fields. It fails with ErrConflict when the server is already active.
type ServerStart struct {
	UserID   int64
	UserName string
	Name     string
	Spawner  string
	// Host and Port are where the server will listen, when the hub picks
	// that ("" and 0 for a server that reports its address once it runs).
	Host        string
	Port        int
	TokenHash   string // hash of the server's API token
	TokenPrefix string
	TokenScopes string // JSON list
	ClientID    string // OAuth client id, jupyterhub-user-<name>
	RedirectURI string
	Note        string
	UserOptions string
}

// BeginStart inserts or resets the server row for a start and returns it.
func (s *Store) BeginStart(ctx context.Context, st ServerStart) (Server, error) {
	now := FormatTime(s.now())
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, `SELECT id, state FROM servers WHERE user_id = ? AND name = ?`, st.UserID, st.Name).Scan(&id, &state)
		switch {
		case err == sql.ErrNoRows:
			res, err := tx.ExecContext(ctx, `INSERT INTO servers (user_id, name, state) VALUES (?, ?, 'stopped')`, st.UserID, st.Name)
			if err != nil {
				return err
			}
			if id, err = res.LastInsertId(); err != nil {
				return err
			}
		case err != nil:
			return err
		case state == StateStarting || state == StateRunning || state == StateStopping:
			return fmt.Errorf("%w: server is %s", ErrConflict, state)
		}
		if err := clearServerCredentials(ctx, tx, id, st.ClientID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM gpu_assignments WHERE server_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE servers SET state = 'starting', spawner = ?, spawner_state = '{}', ip = ?,
			port = ?, started = ?, last_activity = ?, proxy_activity = NULL, token_hash = ?, user_options = ?, version = '',
			stopped_at = NULL, stop_reason = '', stopped_by = '' WHERE id = ?`,
			st.Spawner, st.Host, st.Port, now, now, st.TokenHash, st.UserOptions, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (user_id, hash, prefix, kind, server_id, scopes, note, created)
			VALUES (?, ?, ?, 'server', ?, ?, ?, ?)`, st.UserID, st.TokenHash, st.TokenPrefix, id, st.TokenScopes, st.Note, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_clients (identifier, secret_hash, redirect_uri, description, server_id, created)
			VALUES (?, ?, ?, ?, ?, ?)`, st.ClientID, st.TokenHash, st.RedirectURI, st.Note, id, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET last_activity = ? WHERE id = ?`, now, st.UserID)
		return err
	})
	if err != nil {
		return Server{}, err
	}
	return s.Server(ctx, st.UserID, st.Name)
}

// clearServerCredentials removes the tokens and OAuth client of a server's
// earlier run, with every OAuth token issued through that client.
func clearServerCredentials(ctx context.Context, tx *sql.Tx, serverID int64, clientID string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE server_id = ? OR (kind = 'oauth' AND client_id = ?)`, serverID, clientID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM oauth_clients WHERE server_id = ? OR identifier = ?`, serverID, clientID)
	return err
}

// SetSpawned records the spawner's state once the server is started, with
// where the hub reaches it (host and port may still be unknown: "", 0).
func (s *Store) SetSpawned(ctx context.Context, id int64, spawnerState, host string, port int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return expectOne(tx.ExecContext(ctx, `UPDATE servers SET spawner_state = ?, ip = ?, port = ? WHERE id = ?`, spawnerState, host, port, id))
	})
}

// SetRunning marks a started server ready.
func (s *Store) SetRunning(ctx context.Context, id int64, version string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return expectOne(tx.ExecContext(ctx, `UPDATE servers SET state = 'running', version = ? WHERE id = ?`, version, id))
	})
}

// SetStopping marks a server as being stopped.
func (s *Store) SetStopping(ctx context.Context, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return expectOne(tx.ExecContext(ctx, `UPDATE servers SET state = 'stopping' WHERE id = ? AND state IN ('starting', 'running', 'stopping')`, id))
	})
}

// SetStopped records that a server ended (state stopped, or failed when it
// never became ready), why and by whom, and revokes its credentials.
func (s *Store) SetStopped(ctx context.Context, id int64, state, reason, by string) error {
	if state != StateStopped && state != StateFailed {
		return fmt.Errorf("set stopped: bad state %q", state)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.stopped(ctx, tx, id, state, reason, by, nil)
		return err
	})
}

// SetGone records a server as failed with the reason, as SetStopped does,
// but only while its row is still as seen was read: a server that was
// stopped, or stopped and started again, since is left alone (a poll's
// reading goes stale while it checks processes). It reports whether it
// recorded anything.
func (s *Store) SetGone(ctx context.Context, seen Server, reason, by string) (bool, error) {
	var gone bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		gone, err = s.stopped(ctx, tx, seen.ID, StateFailed, reason, by, &seen)
		return err
	})
	return gone, err
}

// stopped ends server id in tx, unless seen is given and the row's state
// or spawner state differ from it.
func (s *Store) stopped(ctx context.Context, tx *sql.Tx, id int64, state, reason, by string, seen *Server) (bool, error) {
	var userName, name, cur, spawnerState string
	if err := tx.QueryRowContext(ctx, `SELECT u.name, s.name, s.state, s.spawner_state FROM servers s JOIN users u ON u.id = s.user_id WHERE s.id = ?`,
		id).Scan(&userName, &name, &cur, &spawnerState); err != nil {
		return false, err
	}
	if seen != nil && (cur != seen.State || spawnerState != seen.SpawnerState) {
		return false, nil
	}
	if err := clearServerCredentials(ctx, tx, id, OAuthClientID(userName, name)); err != nil {
		return false, err
	}
	// A server that ended frees its GPUs in the same step.
	if _, err := tx.ExecContext(ctx, `DELETE FROM gpu_assignments WHERE server_id = ?`, id); err != nil {
		return false, err
	}
	_, err := tx.ExecContext(ctx, `UPDATE servers SET state = ?, spawner_state = '{}', token_hash = NULL, stopped_at = ?,
		stop_reason = ?, stopped_by = ? WHERE id = ?`, state, FormatTime(s.now()), reason, by, id)
	return err == nil, err
}

// RecordActivity moves the server's and its user's last activity forward.
// proxy selects the column for activity seen by the proxy rather than
// reported by the server.
func (s *Store) RecordActivity(ctx context.Context, serverID int64, t time.Time, proxy bool) error {
	col := "last_activity"
	if proxy {
		col = "proxy_activity"
	}
	ts := FormatTime(t)
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE servers SET `+col+` = ? WHERE id = ? AND (`+col+` IS NULL OR `+col+` < ?)`, ts, serverID, ts); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET last_activity = ? WHERE id = (SELECT user_id FROM servers WHERE id = ?)
			AND (last_activity IS NULL OR last_activity < ?)`, ts, serverID, ts)
		return err
	})
}

func placeholders(n int) string {
	b := make([]byte, 0, 2*n)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '?')
	}
	return string(b)
}

// ServerByID returns a server row or ErrNotFound.
func (s *Store) ServerByID(ctx context.Context, id int64) (Server, error) {
	srv, err := scanServer(s.db.QueryRowContext(ctx, `SELECT `+serverCols+` FROM servers s JOIN users u ON u.id = s.user_id
		WHERE s.id = ?`, id))
	return srv, mapErr(err)
}

// NamedServers lists the names of a user's named servers, running or not
// (JupyterHub's named_server_limit_per_user counts them all).
func (s *Store) NamedServers(ctx context.Context, userID int64) ([]string, error) {
	return s.names(ctx, `SELECT name FROM servers WHERE user_id = ? AND name != '' ORDER BY name`, userID)
}

// DeleteServer removes a stopped server's row (a named server the user
// deleted); an active server is ErrConflict, a missing one ErrNotFound.
func (s *Store) DeleteServer(ctx context.Context, userID int64, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM servers WHERE user_id = ? AND name = ?`, userID, name).Scan(&state); err != nil {
			return err
		}
		if state == StateStarting || state == StateRunning || state == StateStopping {
			return fmt.Errorf("%w: server is %s", ErrConflict, state)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM servers WHERE user_id = ? AND name = ?`, userID, name)
		return err
	})
}
