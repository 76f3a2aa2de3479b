package services

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "svc.token")
	tok, err := readTokenFile("svc", path)
	if err != nil || len(tok) != 32 {
		t.Fatalf("a missing file gives a fresh token: %q, %v", tok, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("created with mode %04o; want 0600", fi.Mode().Perm())
	}
	again, err := readTokenFile("svc", path)
	if err != nil || again != tok {
		t.Errorf("read back %q, %v; want the same token", again, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readTokenFile("svc", path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable token file: %v; want a refusal naming the fix", err)
	}
	short := filepath.Join(dir, "short.token")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readTokenFile("svc", short); err == nil {
		t.Error("a 3-character token was accepted")
	}
}
