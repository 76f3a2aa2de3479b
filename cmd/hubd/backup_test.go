package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/testutil"
)

// backupEnv is a configuration file naming a database with one user and
// a backup directory, all in a temporary directory.
func backupEnv(t *testing.T) (cfgPath, dbPath, bdir string) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "hubd.sqlite")
	bdir = filepath.Join(dir, "backups")
	if err := os.Mkdir(bdir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(dir, "hubd.toml")
	cfg := "[data]\ndb = \"" + dbPath + "\"\n\n[backups]\ndir = \"" + bdir + "\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateOrCheck(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := testutil.RawDB(t, s.Path()).Exec(`INSERT INTO users (name, created, cookie_id) VALUES ('alice', 'now', 'c')`); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dbPath, bdir
}

// hubd runs the command line with stdin and returns exit code and output.
func hubd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestBackupCLI(t *testing.T) {
	cfg, dbPath, bdir := backupEnv(t)

	code, out, errs := hubd(t, "", "backup", "create", "--config", cfg, "--label", "nightly")
	if code != 0 {
		t.Fatalf("create: %d %s %s", code, out, errs)
	}
	if !strings.Contains(out, "snapshot:") || !strings.Contains(out, "compress:") {
		t.Errorf("create printed no progress:\n%s", out)
	}
	last := lastLine(out)
	archive := strings.Fields(strings.TrimPrefix(last, "backup written to "))[0]
	if !strings.HasPrefix(last, "backup written to ") || filepath.Dir(archive) != bdir || !strings.HasSuffix(archive, "-nightly.tar.gz") {
		t.Fatalf("last line %q does not say where the archive is", last)
	}

	code, out, _ = hubd(t, "", "backup", "list", "--config", cfg, "--json")
	var list []jsonInfo
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 1 || list[0].Path != archive ||
		list[0].Manifest == nil || list[0].Manifest.Label != "nightly" || len(list[0].Manifest.ConfigPaths) != 1 || list[0].Manifest.ConfigPaths[0] != cfg {
		t.Fatalf("list --json: %d %v %s", code, err, out)
	}
	if code, out, _ = hubd(t, "", "backup", "list", "--config", cfg); code != 0 || !strings.Contains(out, archive) || !strings.Contains(out, "nightly") {
		t.Errorf("list: %d %s", code, out)
	}
	if code, out, errs = hubd(t, "", "backup", "verify", archive); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("verify: %d %s %s", code, out, errs)
	}

	// No terminal: --yes is required and nothing changes without it.
	code, _, errs = hubd(t, "y\n", "backup", "restore", "--config", cfg, archive)
	if code != 1 || !strings.Contains(errs, "--yes") {
		t.Errorf("restore without --yes and without a terminal: %d %s", code, errs)
	}
	if entries, _ := os.ReadDir(bdir); len(entries) != 1 {
		t.Errorf("refused restore changed the backup directory: %v", entries)
	}
	code, out, errs = hubd(t, "", "backup", "restore", "--config", cfg, "--yes", archive)
	if code != 0 || !strings.Contains(out, "restored "+dbPath) || !strings.Contains(out, "config/hubd.toml") ||
		!strings.HasPrefix(lastLine(out), "the previous database was saved in "+bdir) {
		t.Fatalf("restore: %d %s %s", code, out, errs)
	}

	// Two backups now (the manual one and the pre-restore one); keep one.
	code, out, errs = hubd(t, "", "backup", "prune", "--config", cfg, "--keep", "1", "--max-age", "30d")
	if code != 0 || !strings.Contains(out, "removed "+archive) || !strings.Contains(lastLine(out), "removed 1 backup(s)") {
		t.Errorf("prune: %d %s %s", code, out, errs)
	}
}

func TestBackupCLIUsageAndErrors(t *testing.T) {
	cfg, _, _ := backupEnv(t)
	for _, action := range []string{"create", "list", "verify", "restore", "prune"} {
		code, _, errs := hubd(t, "", "backup", action, "--help")
		if code != 0 || !strings.Contains(errs, "Usage: hubd backup "+action) || !strings.Contains(errs, "-config") {
			t.Errorf("%s --help: %d %s", action, code, errs)
		}
	}
	if code, out, _ := hubd(t, "", "backup"); code != 2 || !strings.Contains(out, "restore") {
		t.Errorf("backup without an action: %d %s", code, out)
	}
	if code, _, errs := hubd(t, "", "backup", "prune", "--config", cfg, "--max-age", "30x"); code != 2 || !strings.Contains(errs, "30x") {
		t.Errorf("bad --max-age: %d %s", code, errs)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if code, _, errs := hubd(t, "", "backup", "create", "--config", cfg, "--dir", missing); code != 1 || !strings.Contains(errs, "hubd setup") {
		t.Errorf("missing backup dir: %d %s", code, errs)
	}
	if code, _, errs := hubd(t, "", "backup", "verify", cfg); code != 1 || !strings.Contains(errs, "not a hubd backup") {
		t.Errorf("verify of a non-archive: %d %s", code, errs)
	}
}

func TestBackupParseAge(t *testing.T) {
	for in, want := range map[string]string{"30d": "720h0m0s", "12h": "12h0m0s", "0": "0s", "0d": "0s"} {
		got, err := parseAge(in)
		if err != nil || got.String() != want {
			t.Errorf("parseAge(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"-1d", "xd", "-5h", "soon"} {
		if _, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) accepted", in)
		}
	}
}
