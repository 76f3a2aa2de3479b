package testutil

import (
	"fmt"
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

// Poll calls f until it returns nil or d has passed, and then returns f's
// last error: for waits longer than WaitFor's, whose reason matters.
func Poll(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond) // poll interval, not synchronisation
	}
	return fmt.Errorf("gave up after %s: %w", d, err)
}
