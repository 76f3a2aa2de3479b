// Package storetest gives tests a fresh state database.
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/hubd/hubd/core/store"
)

// New is an empty database at the newest schema in a temporary
// directory, closed when the test ends.
func New(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "hubd.sqlite"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateOrCheck(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}
