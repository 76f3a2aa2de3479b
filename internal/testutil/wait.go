package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test with what after 20
// seconds: tests synchronise on state, never on sleeps of a guessed length.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
