package ldaplab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testutil"
)

// With Options.NSS the host resolves and logs in the directory's users:
//
//   - nslcd runs with a configuration of its own: in a private mount
//     namespace it sees that file bind-mounted over /etc/nslcd.conf, so the
//     host's /etc/nslcd.conf is never written. Its socket, /run/nslcd/socket,
//     is the host's: one NSS directory at a time (a lock file).
//   - /etc/nsswitch.conf gets "ldap" after "files" on the passwd, group and
//     shadow lines, and is written back byte for byte when the test ends
//     (before nslcd and slapd stop: while nsswitch.conf names ldap and nslcd
//     cannot reach slapd, each lookup of an unknown name waits ~2 s).
//   - /etc/pam.d/hubtest-ldap is a PAM service of its own for LDAP and
//     local users; the host's common-* files are not touched (scripts/deps.sh
//     keeps pam_ldap out of them).
//
// A test binary killed before its cleanup (a -timeout panic) leaves these
// behind; the next NSS Start finds the record in stateDir and puts them
// right first.
const (
	nssLock    = "/run/hubtest-ldaplab.lock"
	stateDir   = "/run/hubtest-ldaplab"
	nsswitch   = "/etc/nsswitch.conf"
	pamService = "hubtest-ldap"
	pamFile    = "/etc/pam.d/" + pamService
)

// pamStack: local users through pam_unix (nodelay: no failure delay), LDAP
// users through pam_ldap, which has nslcd bind as the user.
const pamStack = `# hubd's LDAP test lab (internal/testlab/ldaplab), removed when its test ends.
auth     [success=done default=ignore]  pam_unix.so nodelay
auth     required   pam_ldap.so minimum_uid=1000 use_first_pass
account  [success=1 new_authtok_reqd=done default=ignore]  pam_unix.so
account  requisite  pam_deny.so
account  required   pam_permit.so
account  [success=ok new_authtok_reqd=done ignore=ignore user_unknown=ignore authinfo_unavail=ignore default=bad]  pam_ldap.so minimum_uid=1000
`

func (d *Directory) startNSS(t testing.TB) {
	t.Helper()
	testutil.NeedRoot(t)
	for _, f := range []string{"/usr/sbin/nslcd", "/usr/lib/*/libnss_ldap.so.2", "/lib/*/security/pam_ldap.so"} {
		found, _ := filepath.Glob(f)
		testutil.Require(t, len(found) > 0, "%s is missing (packages nslcd, libnss-ldapd, libpam-ldapd)", f)
	}
	testlab.Lock(t, nssLock) // one NSS directory at a time
	if err := recoverLeftovers(t); err != nil {
		t.Fatalf("ldaplab: %v", err)
	}
	if exec.Command("/usr/sbin/nslcd", "--check").Run() == nil {
		t.Fatal("ldaplab: an nslcd that this test did not start is running and owns /run/nslcd/socket: stop it")
	}
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatalf("ldaplab: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(stateDir) })

	if _, err := os.Stat("/run/nslcd"); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.Command("install", "-d", "-o", "nslcd", "-g", "nslcd", "/run/nslcd").CombinedOutput(); err != nil {
			t.Fatalf("ldaplab: /run/nslcd: %v: %s", err, out)
		}
		t.Cleanup(func() { os.RemoveAll("/run/nslcd") })
	}
	conf := filepath.Join(d.dir, "nslcd.conf")
	if err := os.WriteFile(conf, d.nslcdConf(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `mount --bind "$1" /etc/nslcd.conf && exec /usr/sbin/nslcd -d`, "sh", conf)
	// Go makes the new namespace's mounts private, so the bind mount stays in it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	nslcd, err := testlab.StartDaemon(t, "nslcd", filepath.Join(d.dir, "nslcd.log"), cmd)
	if err != nil {
		t.Fatalf("ldaplab: %v", err)
	}
	// nslcd drops root, which clears its parent-death signal: record it.
	if err := os.WriteFile(filepath.Join(stateDir, "nslcd.pid"), []byte(strconv.Itoa(nslcd.Pid())), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := nslcd.WaitReady(10*time.Second, func() error { _, err := os.Stat("/run/nslcd/socket"); return err }); err != nil {
		t.Fatalf("ldaplab: %v", err)
	}

	orig, err := os.ReadFile(nsswitch)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, "nsswitch.conf"), orig, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := restoreFile(nsswitch, orig); err != nil {
			t.Errorf("ldaplab: %v", err)
		}
	})
	if err := replaceFile(nsswitch, withLDAP(orig)); err != nil {
		t.Fatalf("ldaplab: %v", err)
	}
	if err := writeNew(pamFile, []byte(pamStack)); err != nil {
		t.Fatalf("ldaplab: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(pamFile); err != nil {
			t.Errorf("ldaplab: %v", err)
		}
	})
	d.PAMService = pamService

	if err := nslcd.WaitReady(10*time.Second, func() error {
		return exec.Command("getent", "passwd", "hubtest-ldap1").Run()
	}); err != nil {
		t.Fatalf("ldaplab: the host does not resolve hubtest-ldap1 through nslcd: %v", err)
	}
}

// nslcdConf binds as the service account over plain LDAP (nslcd runs as
// user nslcd, which cannot read the test's CA file). Short time limits: a
// frozen or dead directory costs each lookup seconds, not minutes. Local
// users' group lists never ask the directory (sudo and su stay fast).
func (d *Directory) nslcdConf() []byte {
	return fmt.Appendf(nil, `# nslcd of hubd's LDAP test lab (internal/testlab/ldaplab)
uid nslcd
gid nslcd
uri %s/
base %s
binddn %s
bindpw %s
bind_timelimit 3
timelimit 3
reconnect_sleeptime 1
reconnect_retrytime 3
nss_initgroups_ignoreusers ALLLOCAL
`, d.URL, BaseDN, d.BindDN, d.BindPassword)
}

var nssLine = regexp.MustCompile(`(?m)^((?:passwd|group|shadow):[^\n#]*?)[ \t]*$`)

// withLDAP returns conf with "ldap" at the end of the passwd, group and
// shadow lines. conf is not modified.
func withLDAP(conf []byte) []byte {
	return nssLine.ReplaceAllFunc(conf, func(line []byte) []byte {
		if slices.ContainsFunc(bytes.Fields(line), func(f []byte) bool { return string(f) == "ldap" }) {
			return line
		}
		// A new slice: appending to line would write into conf.
		return slices.Concat(bytes.TrimRight(line, " \t"), []byte(" ldap"))
	})
}

// replaceFile writes b to path through a temporary file and a rename, so that
// no process ever reads half a file, keeping path's mode and owner.
func replaceFile(path string, b []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".hubtest-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Chown(tmp.Name(), int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), fi.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeNew creates path (0644) with b; an existing file is not this lab's
// and stays as it is.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// restoreFile puts b back into path unless it is there already.
func restoreFile(path string, b []byte) error {
	cur, err := os.ReadFile(path)
	if err == nil && bytes.Equal(cur, b) {
		return nil
	}
	if err := replaceFile(path, b); err != nil {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	return nil
}

// recoverLeftovers undoes what an NSS directory of a test binary that died
// before its cleanup left behind (see stateDir). The caller holds the lock,
// so no live test owns these.
func recoverLeftovers(t testing.TB) error {
	if _, err := os.Stat(stateDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	t.Logf("ldaplab: putting right what an earlier test left in %s", stateDir)
	if b, err := os.ReadFile(filepath.Join(stateDir, "nsswitch.conf")); err == nil {
		if err := restoreFile(nsswitch, b); err != nil {
			return err
		}
	}
	if err := os.Remove(pamFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(stateDir, "nslcd.pid")); err == nil {
		pid, _ := strconv.Atoi(string(b))
		if pid > 1 && runningNslcd(pid) {
			syscall.Kill(pid, syscall.SIGTERM)
			for end := time.Now().Add(10 * time.Second); runningNslcd(pid); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(end) {
					return fmt.Errorf("a leftover nslcd (pid %d) ignored SIGTERM", pid)
				}
			}
		}
	}
	return os.RemoveAll(stateDir)
}

// runningNslcd reports whether pid is an nslcd that has not exited (an
// orphan stays a zombie until init reaps it).
func runningNslcd(pid int) bool {
	comm, state, ok := testutil.Proc{PID: pid}.Stat()
	return ok && comm == "nslcd" && state != 'Z'
}
