package upgrade_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/upgrade"
)

// Every released schema version has a committed fixture database in
// testdata/, filled by the seed of its version. Write the fixture of a new
// version (old fixtures never change) with:
//
//	HUBD_WRITE_FIXTURES=1 go test ./upgrade
var seeds = map[int]func(testing.TB, *sql.DB){
	1: seedV1,
	2: seedV2,
	3: seedV3,
	4: seedV4,
	5: seedV5,
	6: seedV6,
}

// checks assert, after upgrading a fixture of a version to the newest,
// what must hold for the rows that fixture held.
var checks = map[int]func(testing.TB, *sql.DB){
	1: func(t testing.TB, db *sql.DB) {
		checkV2(t, db)
		checkV3(t, db)
		checkV4(t, db)
		checkV5(t, db)
		checkV6(t, db)
	},
	2: func(t testing.TB, db *sql.DB) {
		checkServers(t, db, "idle")
		checkV3(t, db)
		checkV4(t, db)
		checkV5(t, db)
		checkV6(t, db)
	},
	3: func(t testing.TB, db *sql.DB) {
		checkServers(t, db, "idle")
		var tokens, members, clients int
		db.QueryRow(`SELECT count(*) FROM api_tokens WHERE service_id = 40`).Scan(&tokens)
		db.QueryRow(`SELECT count(*) FROM group_members WHERE group_id = 50`).Scan(&members)
		db.QueryRow(`SELECT count(*) FROM oauth_clients WHERE service_id = 40`).Scan(&clients)
		if tokens != 1 || members != 1 || clients != 1 {
			t.Errorf("service tokens %d, group members %d, service clients %d; want 1, 1, 1", tokens, members, clients)
		}
		checkV4(t, db)
		checkV5(t, db)
		checkV6(t, db)
	},
	4: func(t testing.TB, db *sql.DB) {
		checkServers(t, db, "idle")
		var method, subject, account string
		db.QueryRow(`SELECT method, subject, account FROM identities JOIN users ON users.id = user_id WHERE name = 'carol'`).Scan(&method, &subject, &account)
		if method != "oidc" || subject != "https://idp.example/#c-0001" || account != "dynamic" {
			t.Errorf("carol: identity %q %q, account %q; want oidc, her subject, dynamic", method, subject, account)
		}
		checkV5(t, db)
		checkV6(t, db)
	},
	5: func(t testing.TB, db *sql.DB) {
		checkServers(t, db, "idle")
		var admin, grant bool
		var rule, idToken string
		db.QueryRow(`SELECT admin, admin_grant, admin_rule FROM users WHERE name = 'carol'`).Scan(&admin, &grant, &rule)
		db.QueryRow(`SELECT id_token FROM login_sessions WHERE id = 's3'`).Scan(&idToken)
		if !admin || !grant || rule != "" || idToken != "eyJ.carol.sig" {
			t.Errorf("carol: admin %v, grant %v, rule %q, session id_token %q; want an admin by hand and her ID token", admin, grant, rule, idToken)
		}
		checkV6(t, db)
	},
	6: func(t testing.TB, db *sql.DB) {
		checkServers(t, db, "idle")
		var gpu, server int
		if err := db.QueryRow(`SELECT gpu, server_id FROM gpu_assignments`).Scan(&gpu, &server); err != nil || gpu != 1 || server != 10 {
			t.Errorf("GPU assignment after the upgrade: gpu %d server %d (%v); want 1, 10", gpu, server, err)
		}
	},
}

func fixturePath(v int) string { return filepath.Join("testdata", fmt.Sprintf("schema-v%d.sqlite", v)) }

// TestFixturesExist checks that every released schema version has its
// fixture, at that version; with HUBD_WRITE_FIXTURES set it writes the
// missing ones first.
func TestFixturesExist(t *testing.T) {
	write := os.Getenv("HUBD_WRITE_FIXTURES") != ""
	for v := 1; v <= upgrade.Latest(); v++ {
		if _, err := os.Stat(fixturePath(v)); err == nil {
			// Read-only: opening for writing would switch the committed
			// file to WAL mode.
			db, err := sql.Open("sqlite", store.DSN(fixturePath(v), time.Second, true))
			if err != nil {
				t.Fatal(err)
			}
			got, err := upgrade.Version(context.Background(), db)
			db.Close()
			if err != nil || got != v {
				t.Errorf("%s is at schema %d (%v); want %d", fixturePath(v), got, err, v)
			}
			continue // released fixtures are never rewritten
		}
		if !write {
			t.Errorf("schema %d has no fixture: run HUBD_WRITE_FIXTURES=1 go test ./upgrade", v)
			continue
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
