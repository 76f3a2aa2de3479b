package store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/testutil"
)

// envOpen makes the test binary open the database it names and print the
// outcome (run as another user through setpriv).
const envOpen = "HUBD_STORE_TEST_OPEN"

func TestMain(m *testing.M) {
	if path := os.Getenv(envOpen); path != "" {
		s, err := store.Open(context.Background(), path, store.Options{})
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		s.Close()
		fmt.Println("opened")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A database file the hub's account may read but not write is refused at
// open, naming the fix, instead of failing at the first login.
func TestOpenRefusesReadOnlyFile(t *testing.T) {
	testutil.NeedRoot(t)
	dir, err := os.MkdirTemp("", "hubtest-store-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil { // -wal and -shm can be created
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hubd.sqlite")
	s, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOrCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "store.test")
	data, err := os.ReadFile(exe)
	if err == nil {
		err = os.WriteFile(bin, data, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", bin)
	cmd.Env = append(os.Environ(), envOpen+"="+path)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "needs read and write access") {
		t.Fatalf("opening a read-only database as another account: %v: %s", err, out)
	}
}

// A new database (and its write-ahead log) is readable by the hub alone.
func TestNewDatabaseIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hubd.sqlite")
	s, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateOrCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", f, fi.Mode().Perm())
		}
	}
}
