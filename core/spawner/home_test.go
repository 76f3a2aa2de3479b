package spawner

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hubd/hubd/internal/testutil"
)

// createHome makes a missing home as pam_mkhomedir would: from /etc/skel,
// owned by the member, private; an existing home is left alone.
func TestCreateHome(t *testing.T) {
	testutil.NeedRoot(t)
	const name = "hubtest-sp-home"
	h := &testutil.Host{}
	t.Cleanup(h.Cleanup)
	if err := h.User(name, "x-pw-1"); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	acct := account{uid: uid, name: name, home: u.HomeDir}
	if err := os.RemoveAll(u.HomeDir); err != nil {
		t.Fatal(err)
	}
	if err := createHome(t.Context(), acct); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(u.HomeDir)
	if err != nil {
		t.Fatalf("no home after createHome: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || strconv.Itoa(int(st.Gid)) != u.Gid || fi.Mode().Perm() != 0o700 {
		t.Errorf("home %s: uid %d gid %d mode %v; want %d, %s, 0700", u.HomeDir, st.Uid, st.Gid, fi.Mode().Perm(), uid, u.Gid)
	}
	if _, err := os.Stat(filepath.Join(u.HomeDir, ".profile")); err != nil {
		t.Errorf("/etc/skel not copied: %v", err)
	}
	marker := filepath.Join(u.HomeDir, "hubtest-kept")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := createHome(t.Context(), acct); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("an existing home was replaced: %v", err)
	}
	if err := createHome(t.Context(), account{name: name, home: "relative/home"}); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("relative home: %v", err)
	}
}

// A missing working directory is named, with what creates a home.
func TestMissingDirectoryIsExplained(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	_, err := startServer(launch{argv: []string{"/bin/true"}, dir: dir, home: dir}, os.Stderr)
	if err == nil || !strings.Contains(err.Error(), "home directory "+dir+" does not exist") || !strings.Contains(err.Error(), "spawner.create_home") {
		t.Errorf("missing home: %v", err)
	}
	_, err = startServer(launch{argv: []string{"/bin/true"}, dir: dir, home: "/root"}, os.Stderr)
	if err == nil || !strings.Contains(err.Error(), "working directory "+dir+" does not exist") {
		t.Errorf("missing working directory: %v", err)
	}
}

// The login shell comes from NSS: root's as /etc/passwd has it, /bin/sh
// for a name nobody has (test/e2e checks a directory user's).
func TestLoginShell(t *testing.T) {
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(passwd), "\n")
	if f := strings.Split(line, ":"); len(f) != 7 || f[0] != "root" {
		t.Fatalf("the first line of /etc/passwd is not root's: %q", line)
	} else if got := loginShell("root"); got != f[6] {
		t.Errorf("root's shell %q, want %q", got, f[6])
	}
	if got := loginShell("hubtest-nobody-here"); got != "/bin/sh" {
		t.Errorf("unknown user's shell %q, want /bin/sh", got)
	}
}
