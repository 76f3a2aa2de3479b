package backups_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/fsutil"
	"github.com/hubd/hubd/internal/testutil"
	"github.com/hubd/hubd/upgrade"
)

// newHubDB creates a hub database with the current schema at path (the
// store's own DSN: WAL, synchronous=FULL) and returns a handle on it.
func newHubDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", store.DSN(path, 5*time.Second, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := upgrade.Apply(context.Background(), db, upgrade.Steps(), upgrade.Options{}); err != nil {
		t.Fatal(err)
	}
	return db
}

func addUser(t testing.TB, db *sql.DB, name string) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO users (name, created, cookie_id) VALUES (?, ?, ?)`,
		name, store.FormatTime(time.Now()), "cookie-"+name); err != nil {
		t.Fatal(err)
	}
}

// pad adds rows of n random (incompressible) bytes each.
func pad(t testing.TB, db *sql.DB, rows, n int) {
	t.Helper()
	if _, err := db.Exec(`WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
		INSERT INTO events (time, action, detail) SELECT ?, 'pad', randomblob(?) FROM k`,
		rows, store.FormatTime(time.Now()), n); err != nil {
		t.Fatal(err)
	}
}

// openCopy opens a database file that is not in use, read-only.
func openCopy(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", store.DSN(path, time.Second, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func userNames(t testing.TB, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM users ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func wantIntegrityOK(t testing.TB, db *sql.DB) {
	t.Helper()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check = %q, %v; want ok", res, err)
	}
}

// names lists a directory, sorted.
func names(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// mountTmpfs mounts a fresh tmpfs with the given options and unmounts it
// when the test ends, whatever happens.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	testutil.NeedRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// rewrite copies the archive src to dst member by member, letting edit
// change member contents (headers and manifest stay as they were); a nil
// result drops the member.
func rewrite(t *testing.T, src, dst string, edit func(name string, data []byte) []byte) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		data = edit(hdr.Name, data)
		if data == nil {
			continue
		}
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The helper process stands in for a running hub. HUBD_BACKUP_HELPER=lock
// holds the hub's lock until SIGTERM; =crash commits a user into the WAL
// and waits to be killed with SIGKILL.
func TestMain(m *testing.M) {
	switch os.Getenv("HUBD_BACKUP_HELPER") {
	case "":
		os.Exit(m.Run())
	case "lock":
		lock, _, err := fsutil.TryLock(fsutil.LockPath(os.Getenv("HUBD_BACKUP_DB")))
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		fmt.Println("ready")
		<-term
		lock.Release()
		os.Exit(0)
	case "crash":
		db, err := sql.Open("sqlite", store.DSN(os.Getenv("HUBD_BACKUP_DB"), 5*time.Second, false))
		if err == nil {
			_, err = db.Exec(`INSERT INTO users (name, created, cookie_id) VALUES ('crashed', 'now', 'c')`)
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("ready")
		// Wait for SIGKILL; reading stdin keeps the runtime from seeing a
		// deadlock.
		io.Copy(io.Discard, os.Stdin)
		os.Exit(1)
	}
}

// startHelper runs the helper process in mode for dbPath and returns once
// it is ready.
func startHelper(t *testing.T, mode, dbPath string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HUBD_BACKUP_HELPER="+mode, "HUBD_BACKUP_DB="+dbPath)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("helper %s: %q, %v", mode, line, err)
	}
	return cmd
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mkdir(t testing.TB, path string) string {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}
