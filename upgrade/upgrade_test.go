package upgrade_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/upgrade"
)

// childEnv makes the test binary act as an upgrader that blocks inside its
// transaction, so the parent can kill -9 it mid-upgrade.
const childEnv = "HUBD_TEST_UPGRADE_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(blockingUpgrade(spec))
	}
	os.Exit(m.Run())
}

func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", store.DSN(path, 5*time.Second, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// at builds a database at version v in dir using the first v steps.
func at(t testing.TB, path string, v int) *sql.DB {
	t.Helper()
	db := openDB(t, path)
	if v > 0 {
		if _, err := upgrade.Apply(context.Background(), db, upgrade.Steps()[:v], upgrade.Options{}); err != nil {
			t.Fatalf("build version %d: %v", v, err)
		}
	}
	return db
}

func exec1(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// seedV1 fills a version-1 database with one of everything, including a
// token and an OAuth client that reference a server row (version 2
// rebuilds servers: those references must survive).
func seedV1(t testing.TB, db *sql.DB) { seedRows(t, db, "weird-old-state") }

// seedV2 holds the same rows with a valid state and a recorded stop.
func seedV2(t testing.TB, db *sql.DB) {
	seedRows(t, db, "stopped")
	exec1(t, db, `UPDATE servers SET stop_reason = 'idle', stopped_by = 'culler' WHERE id = 11`)
}

func seedRows(t testing.TB, db *sql.DB, oddState string) {
	t.Helper()
	ts := "2026-01-02T03:04:05.000000Z"
	exec1(t, db, `INSERT INTO users (id, name, admin, created, last_activity, cookie_id) VALUES
		(1, 'alice', 1, ?, ?, 'c1'), (2, 'bob', 0, ?, NULL, 'c2')`, ts, ts, ts)
	exec1(t, db, `INSERT INTO servers (id, user_id, name, state, spawner, spawner_state, ip, port, started, last_activity, token_hash)
		VALUES (10, 2, '', 'running', 'sudo', '{"kind":"sudo","pid":4242}', '127.0.0.1', 40001, ?, ?, 'h-server'),
		       (11, 1, '', ?, '', '{}', '', 0, NULL, NULL, NULL)`, ts, ts, oddState)
	exec1(t, db, `INSERT INTO api_tokens (id, user_id, hash, prefix, kind, server_id, scopes, note, created)
		VALUES (20, 2, 'h-server', 'abcd', 'server', 10, '["users:activity!user"]', 'Server at /user/bob/', ?),
		       (21, 1, 'h-api', 'efgh', 'api', NULL, '[]', 'console', ?)`, ts, ts)
	exec1(t, db, `INSERT INTO oauth_clients (id, identifier, secret_hash, redirect_uri, server_id, created)
		VALUES (30, 'jupyterhub-user-bob', 'h-server', '/user/bob/oauth_callback', 10, ?)`, ts)
	exec1(t, db, `INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, expires_at)
		VALUES ('h-code', 'jupyterhub-user-bob', 2, '/user/bob/oauth_callback', ?)`, ts)
	exec1(t, db, `INSERT INTO login_sessions (id, user_id, created, expires_at) VALUES ('s1', 2, ?, ?)`, ts, ts)
	exec1(t, db, `INSERT INTO events (time, actor, source, action, target) VALUES (?, 'alice', 'web', 'login', 'alice')`, ts)
}

// seedV3 adds a service with a token, a group with a member and an
// OAuth client of the service to the rows of version 2.
func seedV3(t testing.TB, db *sql.DB) {
	seedV2(t, db)
	ts := "2026-02-03T04:05:06.000000Z"
	exec1(t, db, `INSERT INTO services (id, name, created) VALUES (40, 'culler', ?)`, ts)
	exec1(t, db, `INSERT INTO api_tokens (id, service_id, hash, prefix, kind, scopes, note, created)
		VALUES (22, 40, 'h-service', 'ijkl', 'service', '["list:users"]', 'from the config', ?)`, ts)
	exec1(t, db, `INSERT INTO oauth_clients (id, identifier, secret_hash, redirect_uri, service_id, created)
		VALUES (31, 'service-culler', 'h-service', '/services/culler/oauth_callback', 40, ?)`, ts)
	exec1(t, db, `INSERT INTO groups (id, name, properties, created) VALUES (50, 'gpu', '{"quota": 2}', ?)`, ts)
	exec1(t, db, `INSERT INTO group_members (group_id, user_id) VALUES (50, 2)`)
}

// checkV3 asserts, after upgrading a database of version 2 or older, that
// every token still belongs to its user and that the new tables hold
// owners as step 3 defines them.
func checkV3(t testing.TB, db *sql.DB) {
	t.Helper()
	var owned int
	db.QueryRow(`SELECT count(*) FROM api_tokens WHERE id IN (20, 21) AND user_id IS NOT NULL AND service_id IS NULL`).Scan(&owned)
	if owned != 2 {
		t.Errorf("user tokens kept by step 3: %d; want 2", owned)
	}
	if _, err := db.Exec(`INSERT INTO api_tokens (hash, prefix, kind, created) VALUES ('h-orphan', 'x', 'api', 'now')`); err == nil {
		t.Error("a token without an owner was accepted after step 3")
	}
	if _, err := db.Exec(`INSERT INTO services (id, name, created) VALUES (41, 'announce', 'now')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO api_tokens (user_id, service_id, hash, prefix, kind, created) VALUES (1, 41, 'h-both', 'x', 'api', 'now')`); err == nil {
		t.Error("a token with two owners was accepted after step 3")
	}
	exec1(t, db, `DELETE FROM services WHERE id = 41`)
}

// seedV4 adds a user of a single sign-on without a Linux account to the
// rows of version 3.
func seedV4(t testing.TB, db *sql.DB) {
	seedV3(t, db)
	ts := "2026-01-02T03:04:05.000000Z"
	exec1(t, db, `INSERT INTO users (id, name, admin, created, cookie_id, account) VALUES (3, 'carol', 0, ?, 'c3', 'dynamic')`, ts)
	exec1(t, db, `INSERT INTO identities (user_id, method, subject, email, created) VALUES (3, 'oidc', 'https://idp.example/#c-0001', 'carol@idp.example', ?)`, ts)
}

// checkV4 asserts what step 4 must have done: every earlier user logged in
// with PAM under their own name and has a Linux account.
func checkV4(t testing.TB, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT name, method, subject, account FROM users JOIN identities ON user_id = users.id ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var n, m, s, a string
		if err := rows.Scan(&n, &m, &s, &a); err != nil {
			t.Fatal(err)
		}
		got = append(got, n+" "+m+" "+s+" "+a)
	}
	if d := cmp.Diff([]string{"alice pam alice linux", "bob pam bob linux"}, got); d != "" {
		t.Errorf("identities after step 4 (-want +got):\n%s", d)
	}
	if _, err := db.Exec(`UPDATE users SET account = 'bogus' WHERE id = 1`); err == nil {
		t.Error("account CHECK constraint missing after step 4")
	}
}

// seedV5 makes carol an admin by hand with a single sign-on session, on
// the rows of version 4.
func seedV5(t testing.TB, db *sql.DB) {
	seedV4(t, db)
	ts := "2026-03-04T05:06:07.000000Z"
	exec1(t, db, `UPDATE users SET admin = 1, admin_grant = 1 WHERE id = 3`)
	exec1(t, db, `INSERT INTO login_sessions (id, user_id, created, expires_at, id_token) VALUES ('s3', 3, ?, ?, 'eyJ.carol.sig')`, ts, ts)
}

// seedV6 hands GPU 1 to bob's running server.
func seedV6(t testing.TB, db *sql.DB) {
	seedV5(t, db)
	exec1(t, db, `INSERT INTO gpu_assignments (gpu, device, server_id, assigned) VALUES (1, '/dev/nvidia1', 10, '2026-03-04T05:06:07.000000Z')`)
}

// checkV6 asserts, after upgrading a database of version 5 or older, that
// each GPU goes to one server and leaves with it.
func checkV6(t testing.TB, db *sql.DB) {
	t.Helper()
	exec1(t, db, `INSERT INTO gpu_assignments (gpu, device, server_id, assigned) VALUES (0, '/dev/nvidia0', 10, 'now')`)
	if _, err := db.Exec(`INSERT INTO gpu_assignments (gpu, device, server_id, assigned) VALUES (0, '/dev/nvidia0', 11, 'now')`); err == nil {
		t.Error("one GPU was handed to two servers")
	}
	exec1(t, db, `DELETE FROM servers WHERE id = 10`)
	var n int
	db.QueryRow(`SELECT count(*) FROM gpu_assignments`).Scan(&n)
	if n != 0 {
		t.Errorf("%d GPU assignments outlived their server", n)
	}
}

// checkV5 asserts what step 5 must have done: the admins of before keep
// their flag as decided by the login rules (the next login decides again),
// nobody is an admin by hand, and earlier sessions have no ID token.
func checkV5(t testing.TB, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT name, admin, admin_grant, admin_rule FROM users WHERE id IN (1, 2) ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var n, rule string
		var admin, grant bool
		if err := rows.Scan(&n, &admin, &grant, &rule); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %v %v %q", n, admin, grant, rule))
	}
	if d := cmp.Diff([]string{`alice true false "login rules"`, `bob false false ""`}, got); d != "" {
		t.Errorf("admin sources after step 5 (-want +got):\n%s", d)
	}
	var idToken string
	if err := db.QueryRow(`SELECT id_token FROM login_sessions WHERE id = 's1'`).Scan(&idToken); err != nil || idToken != "" {
		t.Errorf("session s1 after step 5: id_token %q, %v; want empty", idToken, err)
	}
}

// checkV2 asserts what step 2 must have done to the seeded rows.
func checkV2(t testing.TB, db *sql.DB) { checkServers(t, db, "") }

// checkServers asserts the seeded rows in the newest schema; reason is
// the stop reason recorded for the stopped server.
func checkServers(t testing.TB, db *sql.DB, reason string) {
	t.Helper()
	type srv struct {
		ID                  int
		State, Reason, Spst string
	}
	rows, err := db.Query(`SELECT id, state, stop_reason, spawner_state FROM servers ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []srv
	for rows.Next() {
		var s srv
		if err := rows.Scan(&s.ID, &s.State, &s.Reason, &s.Spst); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	want := []srv{{10, "running", "", `{"kind":"sudo","pid":4242}`}, {11, "stopped", reason, "{}"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("servers after step 2 (-want +got):\n%s", d)
	}
	var tokens, clients int
	db.QueryRow(`SELECT count(*) FROM api_tokens WHERE server_id = 10`).Scan(&tokens)
	db.QueryRow(`SELECT count(*) FROM oauth_clients WHERE server_id = 10`).Scan(&clients)
	if tokens != 1 || clients != 1 {
		t.Errorf("rows referencing the rebuilt servers table: tokens %d, clients %d; want 1 and 1", tokens, clients)
	}
	if _, err := db.Exec(`UPDATE servers SET state = 'bogus' WHERE id = 10`); err == nil {
		t.Error("state CHECK constraint missing after step 2")
	}
}

// exercise builds version v-1, seeds it, applies step v (the incus
// ExerciseUpdate pattern).
func exercise(t *testing.T, v int, seed func(testing.TB, *sql.DB)) *sql.DB {
	t.Helper()
	db := at(t, filepath.Join(t.TempDir(), "hubd.sqlite"), v-1)
	if seed != nil {
		seed(t, db)
	}
	if _, err := upgrade.Apply(context.Background(), db, upgrade.Steps()[:v], upgrade.Options{}); err != nil {
		t.Fatalf("apply step %d: %v", v, err)
	}
	return db
}

func TestStep1CreatesTables(t *testing.T) {
	db := exercise(t, 1, nil)
	seedV1(t, db)
	if v, err := upgrade.Version(context.Background(), db); err != nil || v != 1 {
		t.Fatalf("version = %d, %v; want 1", v, err)
	}
}

func TestStep2RebuildsServers(t *testing.T) {
	db := exercise(t, 2, seedV1)
	checkV2(t, db)
	integrityOK(t, db)
}

func TestStep3TokensOwnedByUserOrService(t *testing.T) {
	db := exercise(t, 3, seedV2)
	checkV3(t, db)
	integrityOK(t, db)
}

func TestStep6GPUAssignments(t *testing.T) {
	db := exercise(t, 6, seedV5)
	checkV6(t, db)
	integrityOK(t, db)
}

func integrityOK(t testing.TB, db *sql.DB) {
	t.Helper()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check = %q, %v", res, err)
	}
	rows, err := db.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		t.Fatal("foreign_key_check found dangling references")
	}
}

// dump is the schema as sqlite_master holds it, normalised for quoting.
func dump(t testing.TB, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var typ, name, q string
		if err := rows.Scan(&typ, &name, &q); err != nil {
			t.Fatal(err)
		}
		q = strings.Join(strings.Fields(strings.ReplaceAll(q, `"`, "")), " ")
		q = strings.Replace(q, "CREATE TABLE servers_new", "CREATE TABLE servers", 1)
		q = strings.Replace(q, "CREATE TABLE api_tokens_new", "CREATE TABLE api_tokens", 1)
		fmt.Fprintf(&b, "%s %s: %s\n", typ, name, q)
	}
	return b.String()
}

func TestFreshAndMigratedHaveTheSameSchema(t *testing.T) {
	fresh := at(t, filepath.Join(t.TempDir(), "fresh.sqlite"), upgrade.Latest())
	for v := 1; v < upgrade.Latest(); v++ {
		t.Run(fmt.Sprintf("from-v%d", v), func(t *testing.T) {
			old := at(t, filepath.Join(t.TempDir(), "old.sqlite"), v)
			if _, err := upgrade.Apply(context.Background(), old, upgrade.Steps(), upgrade.Options{}); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(dump(t, fresh), dump(t, old)); d != "" {
				t.Errorf("fresh vs migrated schema (-fresh +migrated):\n%s", d)
			}
		})
	}
}

func TestFailingStepRollsBackEverything(t *testing.T) {
	db := at(t, filepath.Join(t.TempDir(), "hubd.sqlite"), 1)
	seedV1(t, db)
	before := dump(t, db)
	steps := append(upgrade.Steps(), upgrade.Step{Version: upgrade.Latest() + 1, Name: "broken", Apply: func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE half_done (x)`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO no_such_table VALUES (1)`)
		return err
	}})
	backups := 0
	_, err := upgrade.Apply(context.Background(), db, steps, upgrade.Options{Before: func(context.Context, upgrade.Plan) error {
		backups++
		return nil
	}})
	if err == nil || !strings.Contains(err.Error(), "broken") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("err = %v; want the broken step named and nothing changed", err)
	}
	if backups != 1 {
		t.Errorf("Before ran %d times; want once, before the first step", backups)
	}
	if v, _ := upgrade.Version(context.Background(), db); v != 1 {
		t.Errorf("version after failed upgrade = %d; want 1", v)
	}
	if d := cmp.Diff(before, dump(t, db)); d != "" {
		t.Errorf("schema changed by a failed upgrade:\n%s", d)
	}
	integrityOK(t, db)
}

func TestBeforeErrorAbortsWithNothingChanged(t *testing.T) {
	db := at(t, filepath.Join(t.TempDir(), "hubd.sqlite"), 1)
	_, err := upgrade.Apply(context.Background(), db, upgrade.Steps(), upgrade.Options{Before: func(context.Context, upgrade.Plan) error {
		return errors.New("disk full")
	}})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
	if v, _ := upgrade.Version(context.Background(), db); v != 1 {
		t.Errorf("version = %d; want 1", v)
	}
}

func TestNothingPendingChangesNothing(t *testing.T) {
	db := at(t, filepath.Join(t.TempDir(), "hubd.sqlite"), upgrade.Latest())
	called := false
	p, err := upgrade.Apply(context.Background(), db, upgrade.Steps(), upgrade.Options{Before: func(context.Context, upgrade.Plan) error {
		called = true
		return nil
	}})
	if err != nil || p.Pending() || called {
		t.Fatalf("plan %+v, err %v, backup called %v; want nothing to do", p, err, called)
	}
	var rows int
	db.QueryRow(`SELECT count(*) FROM schema`).Scan(&rows)
	if rows != upgrade.Latest() {
		t.Errorf("schema rows = %d; want %d", rows, upgrade.Latest())
	}
}

func TestFreshDatabaseSkipsBackup(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "hubd.sqlite"))
	_, err := upgrade.Apply(context.Background(), db, upgrade.Steps(), upgrade.Options{Before: func(context.Context, upgrade.Plan) error {
		t.Error("Before called for an empty database")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewerDatabaseIsRefused(t *testing.T) {
	db := at(t, filepath.Join(t.TempDir(), "hubd.sqlite"), upgrade.Latest())
	exec1(t, db, `INSERT INTO schema (version, applied_at) VALUES (?, 'x')`, upgrade.Latest()+5)
	err := upgrade.Check(context.Background(), db, upgrade.Steps())
	var newer *upgrade.NewerError
	if !errors.As(err, &newer) || newer.DB != upgrade.Latest()+5 || newer.Binary != upgrade.Latest() {
		t.Fatalf("err = %v; want NewerError naming both versions", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(upgrade.Latest()+5)) || !strings.Contains(err.Error(), fmt.Sprint(upgrade.Latest())) {
		t.Errorf("message %q does not name both versions", err)
	}
	if _, err := upgrade.Apply(context.Background(), db, upgrade.Steps(), upgrade.Options{}); !errors.As(err, &newer) {
		t.Errorf("Apply on a newer DB: %v", err)
	}
}

func TestOlderDatabaseIsBehind(t *testing.T) {
	db := at(t, filepath.Join(t.TempDir(), "hubd.sqlite"), 1)
	err := upgrade.Check(context.Background(), db, upgrade.Steps())
	var behind *upgrade.BehindError
	if !errors.As(err, &behind) || !strings.Contains(err.Error(), "hubd upgrade-db") {
		t.Fatalf("err = %v; want BehindError naming hubd upgrade-db", err)
	}
}

func TestForeignDatabaseIsRefused(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "other.sqlite"))
	exec1(t, db, `CREATE TABLE alembic_version (version_num TEXT)`)
	if _, err := upgrade.Version(context.Background(), db); !errors.Is(err, upgrade.ErrNotHubd) {
		t.Fatalf("err = %v; want ErrNotHubd", err)
	}
}

// blockingUpgrade runs in the child: steps up to Latest, then a step that
// signals the parent and waits to be killed inside the transaction.
func blockingUpgrade(spec string) int {
	dbPath, marker, _ := strings.Cut(spec, "|")
	db, err := sql.Open("sqlite", store.DSN(dbPath, 5*time.Second, false))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	steps := append(upgrade.Steps(), upgrade.Step{Version: upgrade.Latest() + 1, Name: "block", Apply: func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE during_upgrade (x)`); err != nil {
			return err
		}
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			return err
		}
		<-time.After(time.Hour) // killed long before this
		return nil
	}})
	_, err = upgrade.Apply(context.Background(), db, steps, upgrade.Options{})
	fmt.Fprintln(os.Stderr, "upgrade returned:", err)
	return 1
}

func TestKillDuringUpgradeLeavesOldVersion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hubd.sqlite")
	db := at(t, path, 1)
	seedV1(t, db)
	db.Close()

	marker := filepath.Join(dir, "in-step")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path+"|"+marker)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child never reached the blocking step")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	db = openDB(t, path)
	if v, err := upgrade.Version(context.Background(), db); err != nil || v != 1 {
		t.Fatalf("version after kill -9 = %d, %v; want 1", v, err)
	}
	integrityOK(t, db)
	var n int
	db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('during_upgrade', 'servers_new')`).Scan(&n)
	if n != 0 {
		t.Error("tables from the interrupted upgrade are visible")
	}
	if err := db.QueryRow(`SELECT count(*) FROM users`).Scan(&n); err != nil || n != 2 {
		t.Errorf("users after kill = %d, %v; want 2", n, err)
	}
	// And the upgrade can now run to the end.
	if _, err := upgrade.Apply(context.Background(), db, upgrade.Steps(), upgrade.Options{}); err != nil {
		t.Fatal(err)
	}
	checkV2(t, db)
}
