package main

import (
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDebianChangelogFromKeepAChangelog(t *testing.T) {
	md := `# Changelog

Some prose that is not an entry.

## [Unreleased]

### Added
- A new thing whose description is long enough that it has to be wrapped at eighty columns, twice over at least.
- Short.

### Fixed
- A fix
  continued on the next line.

## [0.1.0] - 2026-01-02

### Added
- The first release.
`
	date := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	got, err := debianChangelog(md, "0.2.0~dev.5+gabc", date, "Maint <m@example.org>")
	if err != nil {
		t.Fatal(err)
	}
	want := `hubd (0.2.0~dev.5+gabc) unstable; urgency=medium

  [ Added ]
  * A new thing whose description is long enough that it has to be wrapped at
    eighty columns, twice over at least.
  * Short.
  [ Fixed ]
  * A fix continued on the next line.

 -- Maint <m@example.org>  Wed, 04 Mar 2026 05:06:07 +0000

hubd (0.1.0) unstable; urgency=medium

  [ Added ]
  * The first release.

 -- Maint <m@example.org>  Fri, 02 Jan 2026 00:00:00 +0000
`
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	// A release build names its section; the empty [Unreleased] above it
	// is dropped rather than listed twice.
	rel := strings.Replace(md, "## [Unreleased]\n", "## [Unreleased]\n\n## [0.2.0] - 2026-03-04\n", 1)
	got, err = debianChangelog(rel, "0.2.0", date, "Maint <m@example.org>")
	if err != nil || strings.Count(string(got), "hubd (0.2.0)") != 1 || !strings.HasPrefix(string(got), "hubd (0.2.0) ") {
		t.Errorf("release build: %v\n%s", err, got)
	}
}

// The project's own changelog converts, within Debian's 80 columns.
func TestTheChangelogConverts(t *testing.T) {
	md, err := os.ReadFile("../../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := debianChangelog(string(md), "9.9.9~dev.1", time.Now(), "Maint <m@example.org>")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "hubd (9.9.9~dev.1) unstable; urgency=medium\n") {
		t.Errorf("first line: %.80s", got)
	}
	for i, l := range strings.Split(string(got), "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line %d has %d columns: %s", i+1, n, l)
		}
	}
}
