package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/fsutil"
	"github.com/hubd/hubd/upgrade"
)

// oldSchemaEnv is backupEnv with the database replaced by the committed
// fixture of schema version 1.
func oldSchemaEnv(t *testing.T) (cfgPath, dbPath, bdir string) {
	t.Helper()
	cfgPath, dbPath, bdir = backupEnv(t)
	fixture, err := os.ReadFile("../../upgrade/testdata/schema-v1.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		os.Remove(p)
	}
	if err := os.WriteFile(dbPath, fixture, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dbPath, bdir
}

func schemaVersion(t *testing.T, dbPath string) int {
	t.Helper()
	db, err := sql.Open("sqlite", store.DSN(dbPath, time.Second, true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := upgrade.Version(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestServeRefusesAnOlderSchema(t *testing.T) {
	cfg, db, _ := oldSchemaEnv(t)
	code, _, stderr := hubd(t, "", "serve", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "hubd upgrade-db") || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
		t.Fatalf("serve on schema 1: code %d, stderr %q; want one line naming hubd upgrade-db", code, stderr)
	}
	if v := schemaVersion(t, db); v != 1 {
		t.Errorf("serve changed the schema to %d", v)
	}
}

func TestUpgradeDBDryRunChangesNothing(t *testing.T) {
	cfg, db, bdir := oldSchemaEnv(t)
	code, out, stderr := hubd(t, "", "upgrade-db", "--dry-run", "--config", cfg)
	if code != 0 {
		t.Fatalf("dry run: %d %s", code, stderr)
	}
	for _, want := range []string{fmt.Sprintf("schema version 1 → %d", upgrade.Latest()), "step 2:", "dry run: nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	if v := schemaVersion(t, db); v != 1 {
		t.Errorf("dry run upgraded to %d", v)
	}
	if list, _ := backups.List(bdir); len(list) != 0 {
		t.Errorf("dry run wrote %d backups", len(list))
	}
}

func TestUpgradeDBBacksUpThenUpgrades(t *testing.T) {
	cfg, db, bdir := oldSchemaEnv(t)
	code, out, stderr := hubd(t, "", "upgrade-db", "--config", cfg)
	if code != 0 {
		t.Fatalf("upgrade-db: %d %s", code, stderr)
	}
	if v := schemaVersion(t, db); v != upgrade.Latest() {
		t.Fatalf("schema after upgrade = %d", v)
	}
	list, err := backups.List(bdir)
	if err != nil || len(list) != 1 {
		t.Fatalf("backups after upgrade: %v, %v", list, err)
	}
	b := list[0]
	if !strings.Contains(out, b.Path) || !strings.Contains(out, "upgraded to schema version") {
		t.Errorf("output does not name the backup %s:\n%s", b.Path, out)
	}
	info, err := backups.Verify(context.Background(), b.Path)
	if err != nil || info.Manifest.SchemaVersion != 1 || info.Manifest.Label != "pre-upgrade" || len(info.Manifest.ConfigPaths) != 1 {
		t.Errorf("pre-upgrade backup: %+v, %v; want schema 1 with the config", info.Manifest, err)
	}

	// Again: nothing pending, nothing written.
	code, out, _ = hubd(t, "", "upgrade-db", "--config", cfg)
	if code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("second upgrade-db: %d %q", code, out)
	}
	if list, _ := backups.List(bdir); len(list) != 1 {
		t.Errorf("a no-op upgrade wrote a backup (%d now)", len(list))
	}
}

func TestNewerSchemaIsRefusedNamingBothVersions(t *testing.T) {
	cfg, db, _ := backupEnv(t)
	raw, err := sql.Open("sqlite", store.DSN(db, time.Second, false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO schema (version, applied_at) VALUES (99, 'later')`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	for _, cmd := range []string{"serve", "upgrade-db"} {
		code, _, stderr := hubd(t, "", cmd, "--config", cfg)
		if code == 0 || !strings.Contains(stderr, "99") || !strings.Contains(stderr, fmt.Sprintf("version %d", upgrade.Latest())) {
			t.Errorf("%s on schema 99: code %d, %q; want both versions named", cmd, code, stderr)
		}
	}
}

func TestUpgradeDBRefusesWhileTheHubRuns(t *testing.T) {
	cfg, db, _ := oldSchemaEnv(t)
	lock, _, err := fsutil.TryLock(fsutil.LockPath(db))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	code, _, stderr := hubd(t, "", "upgrade-db", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "is running") || !strings.Contains(stderr, "stop it first") {
		t.Fatalf("upgrade-db under a running hub: %d %q", code, stderr)
	}
	if v := schemaVersion(t, db); v != 1 {
		t.Errorf("schema changed to %d under a running hub", v)
	}
}
