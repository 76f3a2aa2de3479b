package version_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hubd/hubd/internal/testutil"
	"github.com/hubd/hubd/internal/version"
)

// scripts/version.sh in a scratch repository: the scheme must work in a
// clone without tags, give exactly X.Y.Z on a vX.Y.Z tag, sort dev builds
// after the last release, and refuse a Base that was not raised after one.
func TestVersionScript(t *testing.T) {
	_, err := exec.LookPath("git")
	testutil.Require(t, err == nil, "git is not installed")
	repo := t.TempDir()
	for _, f := range []string{"scripts/version.sh", "internal/version/version.go"} {
		data, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(repo, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, f), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run := func() (string, error) {
		out, err := exec.Command(filepath.Join(repo, "scripts/version.sh")).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	commit := func() string { return git("rev-parse", "--short=12", "HEAD") }
	want := func(pattern string) {
		t.Helper()
		v, err := run()
		if err != nil || !regexp.MustCompile("^"+pattern+"$").MatchString(v) {
			t.Errorf("version %q (%v), want %s", v, err, pattern)
		}
	}
	base := regexp.QuoteMeta(version.Base)

	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "one")
	want(base + `~dev\.1\+g` + commit()) // no tags at all
	git("commit", "-q", "--allow-empty", "-m", "two")
	want(base + `~dev\.2\+g` + commit())
	git("tag", "v0.0.1")
	want(`0\.0\.1`) // exactly at a release tag
	if err := os.WriteFile(filepath.Join(repo, "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "README")
	want(base + `~dev\.0\+g` + commit() + `\.dirty`) // a tag with changes on top is not the release
	git("commit", "-q", "-m", "three")
	want(base + `~dev\.1\+g` + commit()) // counted from the last tag

	git("tag", "v"+version.Base)
	git("commit", "-q", "--allow-empty", "-m", "after the release")
	if v, err := run(); err == nil || !strings.Contains(v, "raise Base") {
		t.Errorf("after tagging v%s with Base unchanged: %q (%v), want a refusal", version.Base, v, err)
	}
}
