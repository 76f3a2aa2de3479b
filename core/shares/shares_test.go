package shares

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/sharedenv"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/internal/testutil"
)

const (
	shMembers = "hubtest-shr"   // stands for the hub's members group
	shPrefix  = "hubtest-shg-"  // share groups
	shA       = "hubtest-shr-a" // members of the share
	shB       = "hubtest-shr-b"
	shC       = "hubtest-shr-c" // a member of the hub, not of the share
	shShare   = "proj"
)

// lab makes the accounts and a shares root others can traverse, and
// removes them, and any share group a test made, at the end.
func lab(t *testing.T) *Manager {
	t.Helper()
	testutil.NeedRoot(t)
	h := &testutil.Host{}
	t.Cleanup(h.Cleanup)
	if err := h.Group(shMembers); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{shA, shB, shC} {
		if err := h.User(u, "", shMembers); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.MkdirTemp("", "hubtest-shares-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o755)
	t.Cleanup(func() {
		os.RemoveAll(root)
		// Every share group a test made, even when it failed midway.
		out, _ := exec.Command("getent", "group").Output()
		for line := range strings.SplitSeq(string(out), "\n") {
			if g, _, _ := strings.Cut(line, ":"); strings.HasPrefix(g, shPrefix) {
				exec.Command("groupdel", g).Run()
			}
		}
	})
	return New(Options{Root: filepath.Join(root, "shares"), GroupPrefix: shPrefix, Members: shMembers})
}

// as runs a script as a member in a fresh login-like process (its groups
// read from the group database now, as a new server's are), umask 022.
func as(t *testing.T, u, script string) (string, error) {
	t.Helper()
	acct, err := user.Lookup(u)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("runuser", "-u", u, "--", "env", "-i", "PATH=/usr/bin:/bin", "HOME="+acct.HomeDir,
		"sh", "-ec", "umask 022; cd; "+script).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustAs(t *testing.T, u, script string) string {
	t.Helper()
	out, err := as(t, u, script)
	if err != nil {
		t.Fatalf("as %s: %s: %v\n%s", u, script, err, out)
	}
	return out
}

func mustFail(t *testing.T, u, script, why string) {
	t.Helper()
	if out, err := as(t, u, script); err == nil {
		t.Errorf("%s could %s: %s\n%s", u, why, script, out)
	}
}

func TestShareMembersWorkTogether(t *testing.T) {
	m := lab(t)
	ctx := context.Background()
	s, err := m.Create(ctx, shShare, []string{shA, shB})
	if err != nil {
		t.Fatal(err)
	}
	if s.Group != shPrefix+shShare || !slices.Equal(s.Members, []string{shA, shB}) || s.Path != m.Path(shShare) {
		t.Errorf("created %+v", s)
	}
	p := s.Path
	// Each writes, and changes what the other wrote, whoever created it.
	mustAs(t, shA, "echo a > "+p+"/notes.txt; mkdir "+p+"/data; echo a > "+p+"/data/x.csv")
	mustAs(t, shB, "echo b >> "+p+"/notes.txt; echo b >> "+p+"/data/x.csv; echo b > "+p+"/data/y.csv; mkdir "+p+"/data/sub")
	mustAs(t, shA, "echo a >> "+p+"/data/y.csv; touch "+p+"/data/sub/z; rm "+p+"/data/x.csv")
	if got := mustAs(t, shB, "cat "+p+"/notes.txt "+p+"/data/y.csv"); got != "a\nb\nb\na" {
		t.Errorf("the members' files hold %q", got)
	}
	// Not a member: nothing, not even the names.
	mustFail(t, shC, "ls "+p, "list the share")
	mustFail(t, shC, "cat "+p+"/notes.txt", "read a file in the share")
	if reps, err := m.Check(ctx, shShare, 5); err != nil || len(reps) != 1 || !reps[0].Healthy() {
		t.Errorf("check of a share used as intended: %+v %v", reps, err)
	}

	// A private file moved in keeps its owner's group and mode: check
	// finds it, repair gives it to the group.
	mustAs(t, shA, "umask 077; echo secret > draft.txt; cp -p draft.txt copy.txt; mv draft.txt "+p+"/; mv copy.txt "+p+"/data/")
	mustFail(t, shB, "cat "+p+"/draft.txt", "read a file moved in 0600")
	reps, err := m.Check(ctx, shShare, 5)
	if err != nil || len(reps) != 1 || reps[0].Healthy() {
		t.Fatalf("check missed the moved files: %+v %v", reps, err)
	}
	for _, k := range []sharedenv.Kind{sharedenv.WrongGroup, sharedenv.FileMode} {
		if ex := reps[0].Examples[k]; !slices.Contains(ex, p+"/draft.txt") || !slices.Contains(ex, p+"/data/copy.txt") {
			t.Errorf("%s examples %v lack the moved files", k, ex)
		}
	}
	if reps, err = m.Repair(ctx, shShare, 5); err != nil || !reps[0].Healthy() {
		t.Fatalf("repair: %+v %v", reps, err)
	}
	mustAs(t, shB, "cat "+p+"/draft.txt "+p+"/data/copy.txt; echo b >> "+p+"/draft.txt")
	if reps, err = m.Check(ctx, shShare, 5); err != nil || !reps[0].Healthy() {
		t.Errorf("check after repair: %+v %v", reps, err)
	}

	// The user's next server (a fresh process) no longer has the group.
	of, err := m.Of(shB)
	if err != nil || !slices.ContainsFunc(of, func(s2 spawner.Share) bool { return s2.Name == shShare }) {
		t.Errorf("Of(%s) = %v %v, want the share", shB, of, err)
	}
	if s, err = m.Remove(ctx, shShare, []string{shB}); err != nil || !slices.Equal(s.Members, []string{shA}) {
		t.Fatalf("remove: %+v %v", s, err)
	}
	mustFail(t, shB, "cat "+p+"/notes.txt", "read the share after being removed")
	if of, _ = m.Of(shB); slices.ContainsFunc(of, func(s2 spawner.Share) bool { return s2.Name == shShare }) {
		t.Errorf("Of(%s) still lists the share after the removal: %v", shB, of)
	}
	if _, err := m.Remove(ctx, shShare, []string{shC}); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Errorf("remove a non-member: %v", err)
	}
	if s, err = m.Add(ctx, shShare, []string{shC}); err != nil || !slices.Equal(s.Members, []string{shA, shC}) {
		t.Fatalf("add: %+v %v", s, err)
	}
	mustAs(t, shC, "cat "+p+"/notes.txt >/dev/null; echo c >> "+p+"/notes.txt")

	list, err := m.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != shShare {
		t.Errorf("list: %+v %v", list, err)
	}
	if err := m.Delete(ctx, shShare, false); err == nil || !strings.Contains(err.Error(), "--purge") {
		t.Errorf("delete of a share with files: %v", err)
	}
	if err := m.Delete(ctx, shShare, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("the share's directory is left: %v", err)
	}
	if _, err := user.LookupGroup(shPrefix + shShare); err == nil {
		t.Error("the share's group is left")
	}
}

func TestPublicArea(t *testing.T) {
	m := lab(t)
	ctx := context.Background()
	if err := m.CreatePublic(); err != nil {
		t.Fatal(err)
	}
	pub := m.PublicPath()
	// What the spawners do at each start: every member makes their own
	// folder.
	mustAs(t, shA, "mkdir "+pub+"/"+shA+"; echo hello > "+pub+"/"+shA+"/paper.txt; mkdir "+pub+"/"+shA+"/fig")
	mustAs(t, shB, "mkdir "+pub+"/"+shB)
	if got := mustAs(t, shB, "cat "+pub+"/"+shA+"/paper.txt; ls "+pub+"/"+shA); got != "hello\nfig\npaper.txt" {
		t.Errorf("another member reads %q", got)
	}
	mustFail(t, shB, "echo b >> "+pub+"/"+shA+"/paper.txt", "change another member's published file")
	mustFail(t, shB, "touch "+pub+"/"+shA+"/new", "write into another member's folder")
	mustFail(t, shB, "rm -rf "+pub+"/"+shA, "remove another member's folder")
	mustFail(t, shB, "mv "+pub+"/"+shA+" "+pub+"/x", "rename another member's folder")

	// A private file published with mv: the others cannot read it until
	// a repair.
	mustAs(t, shA, "umask 077; echo draft > d.txt; mv d.txt "+pub+"/"+shA+"/")
	mustFail(t, shB, "cat "+pub+"/"+shA+"/d.txt", "read a file moved in 0600")
	reps, err := m.Check(ctx, Public, 5)
	if err != nil || len(reps) != 2 {
		t.Fatalf("check of the public area: %+v %v", reps, err)
	}
	if reps[0].Healthy() || !slices.Contains(reps[0].Examples[sharedenv.FileMode], pub+"/"+shA+"/d.txt") || !reps[1].Healthy() {
		t.Errorf("check of the public area: %+v", reps)
	}
	if reps, err = m.Repair(ctx, Public, 5); err != nil || !reps[0].Healthy() {
		t.Fatalf("repair: %+v %v", reps, err)
	}
	mustAs(t, shB, "cat "+pub+"/"+shA+"/d.txt")
	mustFail(t, shB, "echo b >> "+pub+"/"+shA+"/d.txt", "change a repaired file of another member")

	of, err := m.Of(shA)
	if err != nil || len(of) != 1 || of[0].Name != Public || of[0].Path != pub {
		t.Errorf("Of(%s) = %v %v, want the public area", shA, of, err)
	}
}

func TestShareBadInput(t *testing.T) {
	m := lab(t)
	ctx := context.Background()
	for _, name := range []string{"../etc", "a b", strings.Repeat("x", 300), "", "Proj", "-x", Public, "x/y", strings.Repeat("y", 21)} {
		if _, err := m.Create(ctx, name, nil); err == nil {
			t.Errorf("Create(%.20q) succeeded", name)
		} else if len(err.Error()) > 300 {
			t.Errorf("Create(%.20q): the error repeats the whole name: %v", name, err)
		}
	}
	if _, err := m.Create(ctx, shShare, []string{"hubtest-nobody-here"}); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Errorf("Create with a user who does not exist: %v", err)
	}
	if _, err := os.Stat(m.Path(shShare)); !os.IsNotExist(err) {
		t.Error("a refused create left the share's directory")
	}
	if _, err := m.Create(ctx, shShare, []string{shA}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Add(ctx, shShare, []string{"hubtest-nobody-here"}); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Errorf("Add of a user who does not exist: %v", err)
	}
	if _, err := m.Add(ctx, "nosuch", []string{shA}); err == nil || !strings.Contains(err.Error(), "no share") {
		t.Errorf("Add to a share that does not exist: %v", err)
	}
	if _, err := m.Create(ctx, shShare, nil); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("Create twice: %v", err)
	}
}
