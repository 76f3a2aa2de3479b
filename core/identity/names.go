package identity

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hubd/hubd/core/names"
)

// maxRawName bounds the user name a method may hand over: more is refused
// before any work is done on it (a 10 KB claim is an attack or a bug).
const maxRawName = 256

// NameRules turn a method's user name (a claim, a typed name) into a hub
// user name, which is also the Linux name. Nothing folds Unicode: a
// look-alike such as "ｒｏｏｔ" or a Cyrillic "а" never becomes an ASCII
// name, it is refused or replaced like any other character.
type NameRules struct {
	// Lowercase the name first.
	Lowercase bool
	// StripDomains are domains whose "@domain" suffix is removed
	// ("*": any domain).
	StripDomains []string
	// Replace, when set, stands in for every character a Linux name
	// cannot hold; when empty such a name is refused.
	Replace string
	// UsernameMap maps a normalised name to the hub name, e.g.
	// {"alice.smith" = "asmith"}; applied after the rules above.
	UsernameMap map[string]string
}

// HubName applies the rules to raw. The result passed names.Check and is
// not root; otherwise the error is an *Error that shows the name.
func (r NameRules) HubName(raw string) (string, error) {
	switch {
	case strings.TrimSpace(raw) == "":
		return "", refuse(ErrBadName, msgEmptyName, fmt.Errorf("empty user name"))
	case len(raw) > maxRawName || !utf8.ValidString(raw):
		return "", refuse(ErrBadName, fmt.Sprintf(msgBadName, names.Quote(raw), "too long or not text"),
			fmt.Errorf("user name of %d bytes (valid UTF-8: %v)", len(raw), utf8.ValidString(raw)))
	}
	s := strings.TrimSpace(raw)
	if r.Lowercase {
		s = strings.ToLower(s)
	}
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		domain := strings.ToLower(s[at+1:])
		if slices.Contains(r.StripDomains, "*") || slices.Contains(r.StripDomains, domain) {
			s = s[:at]
		}
	}
	if r.Replace != "" {
		var b strings.Builder
		for _, c := range s {
			if validNameRune(c) {
				b.WriteRune(c)
			} else {
				b.WriteString(r.Replace)
			}
		}
		s = b.String()
	}
	if mapped, ok := r.UsernameMap[s]; ok {
		s = mapped
	}
	if err := names.Check(s); err != nil {
		return "", refuse(ErrBadName, fmt.Sprintf(msgBadName, names.Quote(s), err), fmt.Errorf("%s became %s: %w", names.Quote(raw), names.Quote(s), err))
	}
	if s == "root" {
		return "", refuse(ErrNotAllowed, msgRootRefused, fmt.Errorf("%s maps to root", names.Quote(raw)))
	}
	return s, nil
}

func validNameRune(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}
