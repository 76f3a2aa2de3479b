package names

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// documented is Check's rule as its comment states it, written
// independently: ASCII lowercase letters, digits, '_', '-' and '.',
// starting with a letter or '_', at most MaxLen bytes.
var documented = regexp.MustCompile(`^[a-z_][a-z0-9_.-]*$`)

var seeds = []string{"alice", "bob-2", "_svc", "a.b", "", " alice", "alice ", "ALICE", "-x", "--user=root", "..", ".",
	"a/b", "a\x00b", "a\nb", "\x1b[31m", "root", "DOMAIN\\user", "аlice" /* Cyrillic а */, "ǅ", "\xff\xfe",
	"abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz0123456", "é"}

// FuzzCheck: Check accepts exactly what it documents, says why with one of
// its errors otherwise, and Quote renders anything as one bounded,
// printable, valid UTF-8 line.
func FuzzCheck(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := Check(name)
		want := documented.MatchString(name) && len(name) <= MaxLen
		if (err == nil) != want {
			t.Fatalf("Check(%q) = %v, documented rule says accept=%v", name, err, want)
		}
		if err != nil && !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLong) && !errors.Is(err, ErrBadStart) && !errors.Is(err, ErrBadChar) {
			t.Fatalf("Check(%q) = %v: not one of the package's errors", name, err)
		}
		q := Quote(name)
		if !utf8.ValidString(q) || len(q) > 16*10+40 {
			t.Fatalf("Quote(%q) = %q: invalid UTF-8 or unbounded (%d bytes)", name, q, len(q))
		}
		for _, r := range q {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
				t.Fatalf("Quote(%q) = %q carries control character %U", name, q, r)
			}
		}
	})
}

// FuzzNormalize: Normalize is idempotent, never leaves surrounding space
// or an upper-case letter that has a lower case, and a name Check accepts
// is already normal.
func FuzzNormalize(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n := Normalize(name)
		if again := Normalize(n); again != n {
			t.Fatalf("Normalize(%q) = %q, then %q: not idempotent", name, n, again)
		}
		if strings.TrimSpace(n) != n {
			t.Fatalf("Normalize(%q) = %q keeps surrounding space", name, n)
		}
		for _, r := range n {
			if unicode.IsUpper(r) && unicode.ToLower(r) != r {
				t.Fatalf("Normalize(%q) = %q keeps upper-case %q", name, n, r)
			}
		}
		if Check(name) == nil && n != name {
			t.Fatalf("valid name %q normalised to %q", name, n)
		}
	})
}
