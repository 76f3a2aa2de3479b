package upgrade

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

// Step moves the schema from Version-1 to Version.
//
// Rules (the history is the product's contract with every existing install):
//   - append only: never edit, reorder or remove a released step;
//   - self-contained: a step uses plain SQL (or Go on the transaction), never
//     the store package, whose code follows the newest schema;
//   - constraint changes use the rebuild idiom (create new, copy, drop,
//     rename): foreign keys are off while steps run and checked before commit.
type Step struct {
	Version int
	Name    string
	Apply   func(ctx context.Context, tx *sql.Tx) error
}

// Steps is the schema history.
func Steps() []Step {
	return []Step{
		{Version: 1, Name: "create the tables", Apply: sqlFile("sql/0001_initial.sql")},
		{Version: 2, Name: "servers: stop reason, stopped by, proxy activity, server version; events by time", Apply: sqlFile("sql/0002_server_stops.sql")},
		{Version: 3, Name: "services and groups; tokens owned by a user or a service", Apply: sqlFile("sql/0003_services_groups.sql")},
		{Version: 4, Name: "identities: each user's login method and subject; users' account kind (linux, dynamic)", Apply: sqlFile("sql/0004_identities.sql")},
		{Version: 5, Name: "users: admin granted by hand and the login rule that made them an admin; login sessions: the single sign-on ID token", Apply: sqlFile("sql/0005_admin_sources_id_tokens.sql")},
		{Version: 6, Name: "GPUs handed to servers", Apply: sqlFile("sql/0006_gpu_assignments.sql")},
	}
}

// Latest is the schema version this binary creates and expects.
func Latest() int {
	s := Steps()
	return s[len(s)-1].Version
}

func sqlFile(name string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		body, err := sqlFiles.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("run %s: %w", name, err)
		}
		return nil
	}
}
