package upgrade_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubd/hubd/upgrade"
)

// Every released schema version has a committed fixture database in
// testdata/, filled by the seed of its version. Regenerate (only for a new
// version; old fixtures never change) with:
//
//	HUBD_WRITE_FIXTURES=1 go test ./upgrade -run TestWriteFixtures
var seeds = map[int]func(testing.TB, *sql.DB){
	1: seedV1,
	2: seedV2,
}

// checks assert, after upgrading a fixture of a version to the newest,
// what must hold for the rows that fixture held.
var checks = map[int]func(testing.TB, *sql.DB){
	1: checkV2,
	2: func(t testing.TB, db *sql.DB) { checkServers(t, db, "idle") },
}

func fixturePath(v int) string { return filepath.Join("testdata", fmt.Sprintf("schema-v%d.sqlite", v)) }

func TestWriteFixtures(t *testing.T) {
	if os.Getenv("HUBD_WRITE_FIXTURES") == "" {
		t.Skip("set HUBD_WRITE_FIXTURES=1 to regenerate testdata/schema-v*.sqlite")
	}
	for v := 1; v <= upgrade.Latest(); v++ {
		if _, err := os.Stat(fixturePath(v)); err == nil {
			continue // released fixtures are never rewritten
		}
		db := at(t, filepath.Join(t.TempDir(), "src.sqlite"), v)
		seeds[v](t, db)
		out, _ := filepath.Abs(fixturePath(v))
		if _, err := db.Exec(`VACUUM INTO ?`, out); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", out)
	}
}

func TestUpgradeEveryFixture(t *testing.T) {
	for v := 1; v <= upgrade.Latest(); v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			src, err := os.ReadFile(fixturePath(v))
			if err != nil {
				t.Fatalf("missing fixture for released schema %d: %v (see TestWriteFixtures)", v, err)
			}
			path := filepath.Join(t.TempDir(), "hubd.sqlite")
			if err := os.WriteFile(path, src, 0o600); err != nil {
				t.Fatal(err)
			}
			db := openDB(t, path)
			got, err := upgrade.Version(context.Background(), db)
			if err != nil || got != v {
				t.Fatalf("fixture version = %d, %v; want %d", got, err, v)
			}
			if v < upgrade.Latest() {
				if err := upgrade.Check(context.Background(), db, upgrade.Steps()); err == nil {
					t.Fatal("an old fixture passed the serve check")
				}
			}
			if _, err := upgrade.Apply(context.Background(), db, upgrade.Steps(), upgrade.Options{}); err != nil {
				t.Fatal(err)
			}
			if err := upgrade.Check(context.Background(), db, upgrade.Steps()); err != nil {
				t.Fatal(err)
			}
			checks[v](t, db)
			integrityOK(t, db)
		})
	}
}
