package host

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/internal/testutil"
)

// fakeRunner records every command instead of running it.
type fakeRunner struct {
	calls  [][]string
	answer func(argv []string) (string, error)
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) (string, error) {
	argv := append([]string{name}, args...)
	f.calls = append(f.calls, argv)
	if f.answer != nil {
		return f.answer(argv)
	}
	return "", nil
}

// testOptions puts every path under a temporary root, /etc included, and
// names accounts that do not exist.
func testOptions(t *testing.T, run Runner) Options {
	t.Helper()
	root := t.TempDir()
	c := config.Default()
	c.Auth.PAMService, c.Auth.AllowedGroup = "hubtest-nx", "hubtest-nx"
	c.Data.DB = filepath.Join(root, "var/lib/hubd/hubd.sqlite")
	c.Data.CookieSecretFile = filepath.Join(root, "var/lib/hubd/cookie_secret")
	c.Data.LogDir = filepath.Join(root, "var/log/hubd")
	c.Data.RuntimeDir = filepath.Join(root, "run/hubd")
	c.Admin.Socket = filepath.Join(root, "run/hubd/hubd.sock")
	c.Backups.Dir = filepath.Join(root, "var/backups/hubd")
	c.Spawner.HelperPath = filepath.Join(root, "usr/local/bin/hubd")
	c.SharedEnv.Enabled = false
	bin := filepath.Join(t.TempDir(), "hubd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Options{Config: c, ConfigPath: filepath.Join(root, "etc/hubd/hubd.toml"), Name: "hubtest-nx",
		HubUser: "hubtest-nx-hub", Binary: bin, Etc: filepath.Join(root, "etc"), Run: run}
}

func walkAll(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p != root {
			out = append(out, p)
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func TestDryRunRunsNothingAndWritesNothing(t *testing.T) {
	run := &fakeRunner{}
	o := testOptions(t, run)
	var out bytes.Buffer
	results, err := Setup(context.Background(), o, true, &out)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	for _, r := range results {
		if r.Status != WouldChange || len(r.Changes) == 0 {
			t.Errorf("step %s: %s %v, want %q with changes", r.Step, r.Status, r.Changes, WouldChange)
		}
	}
	if len(run.calls) != 0 {
		t.Errorf("dry run ran %v", run.calls)
	}
	if got := walkAll(t, filepath.Dir(o.Etc)); len(got) != 0 {
		t.Errorf("dry run created %v", got)
	}
	if !strings.Contains(out.String(), "nothing was changed") {
		t.Errorf("dry run does not say nothing changed:\n%s", out.String())
	}
}

// A sudoers file visudo refuses is never put in place, no temporary file
// is left behind, setup stops there and says what was not done, and what
// it created so far is recorded.
func TestSetupStopsAtRefusedSudoers(t *testing.T) {
	testutil.NeedRoot(t) // chown of the directories
	run := &fakeRunner{answer: func(argv []string) (string, error) {
		if argv[0] == "visudo" {
			return "", errors.New("visudo: syntax error")
		}
		return "", nil
	}}
	o := testOptions(t, run)
	o.HubUser = "nobody" // exists, so the directories can be chowned to it
	var out bytes.Buffer
	results, err := Setup(context.Background(), o, false, &out)
	if err == nil || !strings.Contains(err.Error(), "visudo: syntax error") {
		t.Fatalf("setup error %v, want the visudo failure\n%s", err, out.String())
	}
	var want [][]string
	want = append(want, []string{"groupadd", "hubtest-nx"}, []string{"usermod", "--append", "--groups", "shadow", "nobody"})
	if len(run.calls) != 3 || !reflect.DeepEqual(run.calls[:2], want) {
		t.Fatalf("commands %q, want %q then visudo", run.calls, want)
	}
	sudoersDir := filepath.Dir(o.SudoersFile())
	if v := run.calls[2]; v[0] != "visudo" || v[1] != "-cf" || filepath.Dir(v[2]) != sudoersDir || !strings.HasPrefix(filepath.Base(v[2]), ".") {
		t.Errorf("visudo ran as %q, want -cf on a dot-file in %s", v, sudoersDir)
	}
	if left := walkAll(t, sudoersDir); len(left) != 0 {
		t.Errorf("left in %s: %v", sudoersDir, left)
	}
	status := map[string]Status{}
	for _, r := range results {
		status[r.Step] = r.Status
	}
	if status["sudoers rule "+o.SudoersFile()] != Failed || status["systemd unit "+o.UnitFile()] != NotDone ||
		status["PAM service "+o.PAMFile()] != Changed {
		t.Errorf("statuses %v", status)
	}
	if _, err := os.Stat(o.UnitFile()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unit written after the failure: %v", err)
	}
	if !strings.Contains(out.String(), "not done (3): sudoers rule") {
		t.Errorf("output does not list what was not done:\n%s", out.String())
	}
	rec, err := LoadRecord(o.RecordFile())
	if err != nil || !slices.Equal(rec.CreatedGroups, []string{"hubtest-nx"}) || !rec.CreatedConfig || !rec.InstalledHelper ||
		!slices.Contains(rec.CreatedDirs, filepath.Dir(o.Config.Data.DB)) {
		t.Errorf("record %+v, %v", rec, err)
	}
	fi, err := os.Stat(filepath.Dir(o.Config.Data.DB))
	if err != nil || modeBits(fi) != 0o750 || !strings.HasPrefix(ownerOf(fi), "nobody:") {
		t.Errorf("data dir %v %v", fi, err)
	}
}

func TestReloadFollowsTheUnitAndSystemd(t *testing.T) {
	need := "no"
	run := &fakeRunner{answer: func(argv []string) (string, error) { return need, nil }}
	o := testOptions(t, run)
	o.Systemd = true
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	var rec Record
	unit := o.fileStep("systemd unit", o.UnitFile(), 0o644, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil }, &rec)
	step := o.reloadStep(unit)
	ctx := context.Background()
	if ch, err := step.Check(ctx); err != nil || len(ch) != 1 {
		t.Fatalf("missing unit: %v %v, want a reload", ch, err)
	}
	if err := unit.apply(ctx); err != nil {
		t.Fatal(err)
	}
	if ch, err := step.Check(ctx); err != nil || len(ch) != 0 {
		t.Errorf("installed unit, systemd up to date: %v %v", ch, err)
	}
	need = "yes"
	if ch, err := step.Check(ctx); err != nil || len(ch) != 1 || ch[0].Fix != "systemctl daemon-reload" {
		t.Errorf("NeedDaemonReload=yes: %v %v", ch, err)
	}
	if err := step.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	show := []string{"systemctl", "show", "--property=NeedDaemonReload", "--value", "hubtest-nx.service"}
	want := [][]string{show, show, show, {"systemctl", "daemon-reload"}}
	if !reflect.DeepEqual(run.calls, want) {
		t.Errorf("commands %q, want %q", run.calls, want)
	}
}

// Uninstall stops the unit, removes the files, and with --purge removes
// only the accounts and directories the record says setup created.
func TestUninstallRemovesOnlyWhatSetupCreated(t *testing.T) {
	run := &fakeRunner{}
	o := testOptions(t, run)
	o.Systemd = true
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	dataDir, logDir := filepath.Dir(o.Config.Data.DB), o.Config.Data.LogDir
	for _, p := range []string{o.ConfigPath, o.UnitFile(), o.SudoersFile(), filepath.Join(dataDir, "hubd.sqlite"), filepath.Join(logDir, "alice.log")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec := Record{Name: o.Name, HubUser: o.HubUser, CreatedUsers: []string{"nobody"}, CreatedGroups: []string{"hubtest-nx-gone"},
		CreatedDirs: []string{dataDir}}
	if _, err := rec.save(o.RecordFile()); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Uninstall(context.Background(), o, UninstallMode{}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	want := [][]string{{"systemctl", "disable", "--now", "hubtest-nx.service"}, {"systemctl", "daemon-reload"}}
	if !reflect.DeepEqual(run.calls, want) {
		t.Errorf("commands %q, want %q", run.calls, want)
	}
	for _, p := range []string{o.UnitFile(), o.SudoersFile()} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "hubd.sqlite")); err != nil {
		t.Errorf("uninstall without --purge removed data: %v", err)
	}

	run.calls = nil
	out.Reset()
	if err := Uninstall(context.Background(), o, UninstallMode{Purge: true}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	want = [][]string{{"systemctl", "daemon-reload"}, {"userdel", "nobody"}}
	if !reflect.DeepEqual(run.calls, want) {
		t.Errorf("purge commands %q, want %q (no groupdel for a group that is gone)", run.calls, want)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("purge kept the data dir setup created: %v", err)
	}
	if _, err := os.Stat(filepath.Join(logDir, "alice.log")); err != nil {
		t.Errorf("purge removed a directory setup did not create: %v", err)
	}
}

// On a packaged host the files dpkg installs are only checked (an edited
// conffile is a warning, a missing one a failure with the reinstall fix),
// and uninstall stops the servers first, leaves those files to dpkg and
// writes the purge plan the package's postrm carries out.
func TestPackagedHostLeavesThePackageFilesToDpkg(t *testing.T) {
	run := &fakeRunner{}
	o := testOptions(t, run)
	o.Name, o.Packaged, o.Config.Auth.PAMService = DefaultName, true, DefaultName
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	files, err := PackageFiles()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(o.Etc)
	for path, data := range files {
		if filepath.Join(root, path) == o.ProfileFile() {
			data = append(data, "alias mine=true\n"...) // the admin's edit
		}
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(o.PAMFile()); err != nil {
		t.Fatal(err)
	}
	var rec Record
	checked := map[string][]Change{}
	for _, s := range o.Steps(&rec) {
		for _, f := range []string{o.UnitFile(), o.PAMFile(), o.ProfileFile()} {
			if s.Name == "systemd unit "+f || s.Name == "PAM service "+f || s.Name == "restart-hub alias "+f {
				if s.Apply != nil {
					t.Errorf("setup would write the package's %s", f)
				}
				checked[f], _ = s.Check(context.Background())
			}
		}
	}
	// The unit here runs the package's hubd with this test's paths, which
	// differ from the defaults PackageFiles renders: a warning too.
	if ch := checked[o.UnitFile()]; len(ch) != 1 || !ch[0].Warn {
		t.Errorf("unit: %+v, want one warning", ch)
	}
	if ch := checked[o.ProfileFile()]; len(ch) != 1 || !ch[0].Warn || !strings.Contains(ch[0].Fix, "dpkg --verify hubd") {
		t.Errorf("edited alias: %+v, want one warning", ch)
	}
	if ch := checked[o.PAMFile()]; len(ch) != 1 || ch[0].Warn || !strings.Contains(ch[0].Fix, "--force-confmiss") {
		t.Errorf("missing PAM file: %+v, want a failure with the reinstall fix", ch)
	}

	dataDir := filepath.Dir(o.Config.Data.DB)
	for _, d := range []string{dataDir, filepath.Dir(o.ConfigPath), filepath.Dir(o.SudoersFile())} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(o.SudoersFile(), []byte("x"), 0o440); err != nil {
		t.Fatal(err)
	}
	rec = Record{Name: o.Name, HubUser: o.HubUser, Packaged: true, CreatedConfig: true, CreatedUsers: []string{o.HubUser},
		CreatedDirs: []string{dataDir, filepath.Dir(o.ConfigPath)}}
	if _, err := rec.save(o.RecordFile()); err != nil {
		t.Fatal(err)
	}
	var order []string
	o.StopServers = func(context.Context) (string, error) {
		if _, err := os.Stat(o.SudoersFile()); err != nil {
			t.Error("the servers were stopped after the sudoers rule was removed")
		}
		order = append(order, "stop")
		return "stopped", nil
	}
	plan := filepath.Join(filepath.Dir(o.ConfigPath), "hubd.purge-plan")
	var out bytes.Buffer
	if err := Uninstall(context.Background(), o, UninstallMode{PurgePlan: plan}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(order) != 1 || len(run.calls) != 0 {
		t.Errorf("stop hook calls %v, commands %q; want the hook once and no systemctl (dpkg's helpers do that)", order, run.calls)
	}
	if _, err := os.Stat(o.SudoersFile()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the sudoers rule is still there: %v", err)
	}
	for _, f := range []string{o.UnitFile(), o.ProfileFile()} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("uninstall removed the package's %s: %v", f, err)
		}
	}
	got, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(got)), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	want := []string{"file " + o.ConfigPath, "user " + o.HubUser, "tree " + dataDir, "file " + o.RecordFile(), "file " + plan,
		"dir " + filepath.Dir(o.ConfigPath)}
	if !slices.Equal(lines, want) {
		t.Errorf("purge plan:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if _, err := encodePlan([]Removal{{RemoveTree, "/var/lib/hub\nd"}}); err == nil {
		t.Error("a plan with a line break in a path was written")
	}
}
