package fsutil

import (
	"fmt"
	"os"
	"strings"
)

// ReadSecret reads a password or key that the configuration keeps in a
// file of its own (key names the setting, for the messages): a regular
// file nobody but its owner may read, not empty. Surrounding white space,
// the final newline of `echo secret > file` included, is not part of it.
func ReadSecret(key, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w (write the secret there, mode 0600)", key, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s %s has mode %s: others may read the secret (chmod 600 %s)", key, path, fi.Mode(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("%s %s is empty", key, path)
	}
	return secret, nil
}
