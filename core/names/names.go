// Package names holds the rules for Unix user and group names that hubd
// accepts: the names end up in sudo and systemd argument lists, URLs, unit
// names and file paths, so anything that could become an option, a path
// or a control sequence is refused before it gets there.
package names

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest name accepted (useradd's limit on Debian).
const MaxLen = 32

// Errors returned by Check; wrapped with the offending detail.
var (
	ErrEmpty    = errors.New("name is empty")
	ErrTooLong  = errors.New("name is too long")
	ErrBadStart = errors.New("name must start with a letter or underscore")
	ErrBadChar  = errors.New("name has a character that is not allowed")
)

// Normalize lowercases a login name and trims surrounding spaces, the way
// people type their user name into a login form.
func Normalize(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}

// Check reports whether name is a safe Unix user or group name: ASCII
// lowercase letters, digits, '_', '-' and '.', starting with a letter or
// '_', at most MaxLen bytes, and never "." or "..".
func Check(name string) error {
	switch {
	case name == "":
		return ErrEmpty
	case len(name) > MaxLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLong, len(name), MaxLen)
	}
	first := name[0]
	if !(first >= 'a' && first <= 'z') && first != '_' {
		return fmt.Errorf("%w (got %s)", ErrBadStart, Quote(name[:1]))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			return fmt.Errorf("%w (%s at position %d)", ErrBadChar, Quote(name[i:i+1]), i+1)
		}
	}
	return nil
}

// Quote renders untrusted text for logs and messages: control characters
// escaped, invalid UTF-8 replaced, and anything long cut to 16 characters
// plus its length, so a hostile name cannot flood or forge a log line.
func Quote(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if n := utf8.RuneCountInString(s); n > 32 {
		r := []rune(s)
		return fmt.Sprintf("%q… (%d characters)", string(r[:16]), n)
	}
	return fmt.Sprintf("%q", s)
}
