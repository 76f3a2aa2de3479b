package fsutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if s, err := ReadSecret("k", write("ok", "  s3cret\n", 0o600)); err != nil || s != "s3cret" {
		t.Errorf("a good file: %q, %v", s, err)
	}
	for what, c := range map[string]struct{ path, says string }{
		"group-readable": {write("loose", "s", 0o640), "chmod 600"},
		"empty":          {write("empty", " \n", 0o600), "is empty"},
		"missing":        {filepath.Join(dir, "none"), "write the secret there"},
		"a directory":    {dir, "others may read"},
	} {
		if _, err := ReadSecret("auth.x.secret_file", c.path); err == nil || !strings.Contains(err.Error(), c.says) ||
			!strings.HasPrefix(err.Error(), "auth.x.secret_file") {
			t.Errorf("%s: %v, want an error naming the setting and saying %q", what, err, c.says)
		}
	}
}
