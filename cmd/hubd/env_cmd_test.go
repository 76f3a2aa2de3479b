package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubd/hubd/internal/testutil"
)

// envConfig writes a configuration whose shared environment is envPath,
// owned by the existing group users, with the kernel spec under dir.
func envConfig(t *testing.T, dir, envPath, extra string) string {
	t.Helper()
	cfg := "[auth]\nallowed_group = \"users\"\n\n[shared_env]\npath = \"" + envPath + "\"\n" +
		"python = \"/usr/bin/python3\"\nkernel_spec_dir = \"" + filepath.Join(dir, "kernels") + "\"\n" + extra
	p := filepath.Join(dir, "hubd.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnvCLIUsage(t *testing.T) {
	if code, out, _ := hubd(t, "", "env"); code != 2 || !strings.Contains(out, "repair  fix what check finds") {
		t.Errorf("env: %d\n%s", code, out)
	}
	if code, _, errOut := hubd(t, "", "env", "bogus"); code != 1 || !strings.Contains(errOut, `unknown env action "bogus"`) {
		t.Errorf("env bogus: %d %s", code, errOut)
	}
	cfg := envConfig(t, t.TempDir(), "/nonexistent/env", "")
	if code, _, _ := hubd(t, "", "env", "check", "--config", cfg, "extra"); code != 2 {
		t.Errorf("env check extra: %d", code)
	}
}

func TestEnvCLIRefusals(t *testing.T) {
	dir := t.TempDir()
	off := envConfig(t, dir, filepath.Join(dir, "env"), "enabled = false\n")
	if code, _, errOut := hubd(t, "", "env", "status", "--config", off); code != 1 || !strings.Contains(errOut, "shared_env.enabled = false in "+off) {
		t.Errorf("disabled: %d %s", code, errOut)
	}

	cfg := envConfig(t, dir, filepath.Join(dir, "env"), "")
	geteuid = func() int { return 1000 }
	t.Cleanup(func() { geteuid = os.Geteuid })
	for _, action := range []string{"init", "repair"} {
		code, _, errOut := hubd(t, "", "env", action, "--config", cfg)
		if code != 1 || !strings.Contains(errOut, "must run as root: run `sudo hubd env "+action+"`") {
			t.Errorf("%s as non-root: %d %s", action, code, errOut)
		}
	}
	if code, _, errOut := hubd(t, "", "env", "status", "--config", cfg); code != 1 || !strings.Contains(errOut, "run `sudo hubd env init`") {
		t.Errorf("status without an environment: %d %s", code, errOut)
	}
}

func TestEnvCLICheckRepair(t *testing.T) {
	testutil.NeedRoot(t)
	dir := t.TempDir()
	envPath := filepath.Join(dir, "env")
	if err := os.MkdirAll(filepath.Join(envPath, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(envPath, "lib", "moved.py")
	if err := os.WriteFile(moved, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := envConfig(t, dir, envPath, "")

	code, out, errOut := hubd(t, "", "env", "check", "--config", cfg, "--examples", "1")
	for _, want := range []string{
		"2 directories", "1 files", "not owned by the group: 3\n      " + envPath + "\n",
		"files not group-writable: 1\n      " + moved + "\n", "directories without setgid: 2",
		"directories without a default ACL granting the group rwx: 2", "run `sudo hubd env repair` to fix it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	if code != 1 || t.Failed() {
		t.Fatalf("check: %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = hubd(t, "", "env", "repair", "--config", cfg)
	if code != 0 || !strings.Contains(out, "files not group-writable: 1 found, 1 fixed") {
		t.Errorf("repair: %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := hubd(t, "", "env", "check", "--config", cfg); code != 0 || !strings.Contains(out, "no drift: everything is shared with group users") {
		t.Errorf("check after repair: %d\n%s%s", code, out, errOut)
	}
}

func TestEnvCLIInitStatus(t *testing.T) {
	testutil.NeedRoot(t)
	dir := t.TempDir()
	envPath := filepath.Join(dir, "opt", "env")
	cfg := envConfig(t, dir, envPath, "")

	// t.TempDir is 0700 under root: members could not reach the env.
	code, _, errOut := hubd(t, "", "env", "init", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "members cannot reach the environment") || !strings.Contains(errOut, "chmod o+x") {
		t.Fatalf("init under a 0700 directory: %d %s", code, errOut)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := hubd(t, "", "env", "init", "--config", cfg)
	if code != 0 || !strings.Contains(out, "shared environment "+envPath+": created") ||
		!strings.Contains(out, `kernel "Shared (hubd)": `+filepath.Join(dir, "kernels", "hubd-shared", "kernel.json")+" (written)") ||
		!strings.Contains(out, "spawned servers get "+envPath+"/bin first on PATH") {
		t.Fatalf("init: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = hubd(t, "", "env", "status", "--config", cfg)
	for _, want := range []string{"python      3.", "ipykernel imports", "kernel      Shared (hubd) at ", "POSIX ACLs  yes", "health      ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q", want)
		}
	}
	if code != 0 || t.Failed() {
		t.Errorf("status: %d\n%s%s", code, out, errOut)
	}
}
