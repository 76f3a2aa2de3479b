package testutil

import (
	"database/sql"
	"testing"
	"time"

	"github.com/hubd/hubd/core/store"
)

// RawDB opens a second handle on a hub database, for tests that write
// rows behind the store's back (clock skew, stale states, fault
// injection). It is closed when the test ends.
func RawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", store.DSN(path, 5*time.Second, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
