package web

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/testutil"
)

// Recording a caller's activity never holds up the request: with the
// database locked by a writer, touch returns at once and the write waits
// in the background (a request that itself writes then waits for one busy
// timeout, not two).
func TestActivityWriteIsOffTheRequestPath(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hubd.sqlite")
	st, err := store.Open(ctx, path, store.Options{BusyTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateOrCheck(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(ctx, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	w := New(Options{Config: config.Default(), Store: st, Logger: slog.New(slog.DiscardHandler)})
	lock, err := testutil.RawDB(t, path).BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	go func() {
		w.touch(&caller{user: u})
		close(returned)
	}()
	testutil.WaitFor(t, "touch to return while the database is locked", func() bool {
		select {
		case <-returned:
			return true
		default:
			return false
		}
	})
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	w.Wait()
	got, err := st.UserByName(ctx, "alice")
	if err != nil || got.LastActivity.IsZero() {
		t.Errorf("activity not recorded once the lock was gone: %v %v", got.LastActivity, err)
	}
}
