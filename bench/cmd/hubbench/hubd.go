package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
)

// hubdSetup describes one hubd instance: its directory, config and token.
type hubdSetup struct {
	dir, config, token string
	port               int
}

// seed describes a synthetic database: users u1..uUsers, and for u1..uServers
// a server recorded as running, the odd ones at the live backend and the
// even ones at a pid that has exited (all live when dead is zero).
type seed struct {
	users, servers int
	livePID, port  int
	deadPID        int
}

// newHubd writes a config for a hubd in dir from `hubd config show` (the
// defaults), changed only where a benchmark host needs it: loopback ports,
// paths under dir, the local spawner running mocksu, no spawn limit, PAM
// service and group of the login benchmark, warn-level logs.
func newHubd(o *opts, dir string) (*hubdSetup, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("hubd dir: %w", err)
	}
	empty := filepath.Join(dir, "empty.toml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return nil, fmt.Errorf("write empty config: %w", err)
	}
	out, err := exec.Command(o.hubd, "config", "show", "--config", empty).Output()
	if err != nil {
		return nil, fmt.Errorf("hubd config show: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	internal, err := freePort()
	if err != nil {
		return nil, err
	}
	repl := []string{
		`listen = ":8000"`, fmt.Sprintf(`listen = "127.0.0.1:%d"`, port),
		`internal_listen = "127.0.0.1:8081"`, fmt.Sprintf(`internal_listen = "127.0.0.1:%d"`, internal),
		`db = "/var/lib/hubd/hubd.sqlite"`, `db = "` + dir + `/data/hubd.sqlite"`,
		`cookie_secret_file = "/var/lib/hubd/cookie_secret"`, `cookie_secret_file = "` + dir + `/data/cookie_secret"`,
		`log_dir = "/var/log/hubd"`, `log_dir = "` + dir + `/logs"`,
		`runtime_dir = "/run/hubd"`, `runtime_dir = "` + dir + `/run"`,
		`socket = "/run/hubd/hubd.sock"`, `socket = "` + dir + `/run/hubd.sock"`,
		`dir = "/var/backups/hubd"`, `dir = "` + dir + `/backups"`,
		`pam_service = "hubd"`, `pam_service = "` + pamService + `"`,
		`allowed_group = "jupyterhub"`, `allowed_group = "` + pamGroup + `"`,
		`log_level = "info"`, `log_level = "warn"`,
		`kind = "sudo"`, `kind = "local"`,
		`command = ["/usr/bin/jupyterhub-singleuser"]`, `command = ["` + o.mocksu + `"]`,
		`concurrent_spawn_limit = 20`, `concurrent_spawn_limit = 0`,
	}
	text := string(out)
	for i := 0; i < len(repl); i += 2 {
		if !strings.Contains(text, repl[i]) {
			return nil, fmt.Errorf("hubd config show has no %s: update bench/cmd/hubbench", repl[i])
		}
		text = strings.Replace(text, repl[i], repl[i+1], 1)
	}
	cfg := filepath.Join(dir, "hubd.toml")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("write hubd config: %w", err)
	}
	if out, err := exec.Command(o.hubd, "config", "check", "--config", cfg).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("generated hubd config invalid: %s", out)
	}
	return &hubdSetup{dir: dir, config: cfg, port: port}, nil
}

func (h *hubdSetup) db() string   { return filepath.Join(h.dir, "data", "hubd.sqlite") }
func (h *hubdSetup) base() string { return fmt.Sprintf("http://127.0.0.1:%d", h.port) }

// seedDB creates the schema with hubd's store and fills it in one
// transaction (one per row would take minutes at 50k users), plus an admin
// user "bench" with an API token for the driver.
func (h *hubdSetup) seedDB(ctx context.Context, s seed) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(h.db() + suffix)
	}
	st, err := store.Open(ctx, h.db(), store.Options{BusyTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s: %w", h.db(), err)
	}
	defer st.Close()
	if err := st.CreateOrCheck(ctx); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	// Bulk rows go straight in through a second handle: the store has no
	// API for seeding thousands of users.
	db, err := sql.Open("sqlite", store.DSN(h.db(), 5*time.Second, false))
	if err != nil {
		return fmt.Errorf("open %s: %w", h.db(), err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := store.FormatTime(time.Now())
	for i := 1; i <= s.users; i++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, name, admin, created, cookie_id) VALUES (?, ?, 0, ?, ?)`,
			i, fmt.Sprintf("u%d", i), now, store.RandomID(16)); err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
	}
	for i := 1; i <= s.servers; i++ {
		state := spawner.State{Kind: spawner.KindLocal, PID: s.livePID}
		if st, err := pidStart(s.livePID); err == nil {
			state.PIDStart = st
		}
		if s.deadPID != 0 && i%2 == 0 {
			state = spawner.State{Kind: spawner.KindLocal, PID: s.deadPID, PIDStart: 1}
		}
		js, _ := json.Marshal(state)
		if _, err := tx.ExecContext(ctx, `INSERT INTO servers (user_id, name, state, spawner, spawner_state, ip, port, started, last_activity)
			VALUES (?, '', 'running', 'local', ?, '127.0.0.1', ?, ?, ?)`, i, string(js), s.port, now, now); err != nil {
			return fmt.Errorf("insert server: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	admin, err := st.CreateUser(ctx, "bench", true)
	if err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	h.token = store.RandomID(16)
	if _, err := st.CreateToken(ctx, store.Token{UserID: admin.ID, Hash: store.HashToken(h.token), Prefix: h.token[:4],
		Kind: store.TokenAPI, Scopes: `["inherit"]`, Note: "benchmark driver"}); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// saveDB and restoreDB keep a pristine copy of a seeded database, so every
// start of a run sees the same state (a start reconciles the dead servers).
func (h *hubdSetup) saveDB() error    { return copyFile(h.db(), h.db()+".seed") }
func (h *hubdSetup) restoreDB() error { return copyFile(h.db()+".seed", h.db()) }

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(to + suffix)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}

// start runs `hubd serve` and waits until its API answers; it returns the
// process and the time from exec to API-ready.
func (h *hubdSetup) start(bin, name string) (*proc, time.Duration, error) {
	t := time.Now()
	p, err := start(name, filepath.Join(h.dir, "hubd.log"), nil, bin, "serve", "--config", h.config)
	if err != nil {
		return nil, 0, err
	}
	ready, err := waitHTTP(h.base()+"/hub/api", p, t, 5*time.Minute)
	if err != nil {
		p.stop(10 * time.Second)
		return nil, 0, fmt.Errorf("%w (log %s)", err, filepath.Join(h.dir, "hubd.log"))
	}
	return p, ready, nil
}
