package store_test

import (
	"context"
	"testing"

	"github.com/hubd/hubd/core/store"
)

// A poll reads a server as running, finds its process dead, and records
// it gone, while the server was already recorded gone and started again
// meanwhile: the stale reading must not end the new server (found by the
// soak: the new server lost its record and was never reconciled again).
func TestSetGoneLeavesANewerStartAlone(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	u, _ := s.CreateUser(ctx, "bob", false)
	start := func(tok string) store.Server {
		t.Helper()
		srv, err := s.BeginStart(ctx, store.ServerStart{UserID: u.ID, UserName: "bob", Spawner: "local", Port: 4000,
			TokenHash: store.HashToken(tok), TokenPrefix: tok[:3], TokenScopes: `[]`, ClientID: store.OAuthClientID("bob", "")})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetSpawned(ctx, srv.ID, `{"kind":"local","pid":`+map[string]string{"old": "101", "new": "202"}[tok]+`}`, "127.0.0.1", 4000); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRunning(ctx, srv.ID, "3.0.0"); err != nil {
			t.Fatal(err)
		}
		got, err := s.Server(ctx, u.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := start("old")
	stale := first // what a slow poll read
	if gone, err := s.SetGone(ctx, first, "exited", "hub"); err != nil || !gone {
		t.Fatalf("first record of the dead server: %v %v", gone, err)
	}
	second := start("new")
	if gone, err := s.SetGone(ctx, stale, "exited", "hub"); err != nil || gone {
		t.Fatalf("the stale reading ended the new server: %v %v", gone, err)
	}
	got, _ := s.Server(ctx, u.ID, "")
	if got.State != store.StateRunning || got.SpawnerState != second.SpawnerState {
		t.Errorf("the new server's record: %s %s", got.State, got.SpawnerState)
	}
	if _, err := s.TokenByHash(ctx, store.HashToken("new")); err != nil {
		t.Errorf("the new server's token was revoked: %v", err)
	}
}
