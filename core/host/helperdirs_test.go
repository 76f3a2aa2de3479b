package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/internal/testutil"
)

// The helper sudo runs as every member, and each directory above it, must
// be root's alone: a directory others may write fails the check with the
// fix.
func TestCheckHelperDirs(t *testing.T) {
	testutil.NeedRoot(t) // the files must be root's to pass
	dir := filepath.Join(t.TempDir(), "libexec")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "hubd")
	if err := os.WriteFile(helper, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{Config: config.Default()}
	o.Config.Spawner.HelperPath = helper
	if f := o.checkHelperDirs(); f.Level != OK {
		t.Fatalf("root-owned helper: %+v", f)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if f := o.checkHelperDirs(); f.Level != Fail || !strings.Contains(f.Message, dir) || !strings.Contains(f.Fix, "chmod go-w "+dir) {
		t.Errorf("group- and world-writable directory above the helper: %+v", f)
	}
}
