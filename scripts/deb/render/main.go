// Command render writes the generated files of the hubd Debian package
// into a staging directory, for scripts/deb/build.sh: the systemd unit, PAM
// service and restart-hub alias rendered by core/host exactly as setup
// checks them on a packaged host, the Debian changelog made from
// CHANGELOG.md, and the man pages, compressed as Debian wants them.
//
//	go run ./scripts/deb/render -out DIR -version V -date UNIX -maintainer "Name <mail>"
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hubd/hubd/core/host"
)

func main() {
	out := flag.String("out", "", "staging `DIR` (the package's root)")
	version := flag.String("version", "", "the package `VERSION`")
	date := flag.Int64("date", 0, "`UNIX` time of the newest changelog entry (the commit's)")
	maintainer := flag.String("maintainer", "", "`NAME <MAIL>` signing the changelog entries")
	changelog := flag.String("changelog", "CHANGELOG.md", "the Keep a Changelog `FILE`")
	man := flag.String("man", "scripts/deb/man", "`DIR` of the man page sources (NAME.SECTION)")
	flag.Parse()
	if *out == "" || *version == "" || *date == 0 || *maintainer == "" {
		fmt.Fprintln(os.Stderr, "render: -out, -version, -date and -maintainer are required")
		os.Exit(2)
	}
	if err := run(*out, *version, time.Unix(*date, 0).UTC(), *maintainer, *changelog, *man); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(out, version string, date time.Time, maintainer, changelog, manDir string) error {
	files, err := host.PackageFiles()
	if err != nil {
		return err
	}
	md, err := os.ReadFile(changelog)
	if err != nil {
		return err
	}
	deb, err := debianChangelog(string(md), version, date, maintainer)
	if err != nil {
		return fmt.Errorf("%s: %w", changelog, err)
	}
	files["/usr/share/doc/hubd/changelog.gz"] = gz(deb)
	pages, err := filepath.Glob(filepath.Join(manDir, "*.[18]"))
	if err != nil || len(pages) == 0 {
		return fmt.Errorf("no man pages in %s", manDir)
	}
	for _, p := range pages {
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		name := filepath.Base(p)
		files["/usr/share/man/man"+name[len(name)-1:]+"/"+name+".gz"] = gz(src)
	}
	for path, data := range files {
		dst := filepath.Join(out, path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gz compresses as Debian policy asks for documentation: maximum
// compression, no name and no time stamp in the header (reproducible).
func gz(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = w.Write(data)
	_ = w.Close()
	return b.Bytes()
}

var release = regexp.MustCompile(`^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?\s*$`)

// debianChangelog turns Keep a Changelog sections into Debian changelog
// entries, newest first: [Unreleased] becomes the entry of the version
// being built (dated at its commit), each released [X.Y.Z] - DATE its own.
// Items are wrapped at 80 columns, grouped under their "### Added" kind.
func debianChangelog(md, version string, date time.Time, maintainer string) ([]byte, error) {
	type entry struct {
		version string
		date    time.Time
		lines   []string
	}
	var entries []*entry
	var cur *entry
	var item []string
	flush := func() {
		if cur != nil && len(item) > 0 {
			cur.lines = append(cur.lines, wrap(strings.Join(item, " "), "  * ", "    ", 80)...)
		}
		item = nil
	}
	for _, line := range strings.Split(md, "\n") {
		if m := release.FindStringSubmatch(line); m != nil {
			flush()
			cur = &entry{version: m[1], date: date}
			if m[1] == "Unreleased" {
				cur.version = version
			} else if m[2] != "" {
				d, err := time.Parse(time.DateOnly, m[2])
				if err != nil {
					return nil, err
				}
				cur.date = d
			}
			if cur.version == version && len(entries) > 0 && entries[len(entries)-1].version == version {
				// A release build whose section is already named: the
				// empty [Unreleased] above it adds nothing.
				entries = entries[:len(entries)-1]
			}
			entries = append(entries, cur)
			continue
		}
		switch {
		case cur == nil:
		case strings.HasPrefix(line, "### "):
			flush()
			cur.lines = append(cur.lines, "  [ "+strings.TrimSpace(line[4:])+" ]")
		case strings.HasPrefix(line, "- "):
			flush()
			item = []string{strings.TrimSpace(line[2:])}
		case strings.TrimSpace(line) != "" && item != nil:
			item = append(item, strings.TrimSpace(line))
		default:
			flush()
		}
	}
	flush()
	var b bytes.Buffer
	for _, e := range entries {
		if len(e.lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "hubd (%s) unstable; urgency=medium\n\n%s\n\n -- %s  %s\n\n",
			e.version, strings.Join(e.lines, "\n"), maintainer, e.date.Format(time.RFC1123Z))
	}
	if b.Len() == 0 {
		return nil, fmt.Errorf("no entries for version %s", version)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// wrap breaks text into lines of at most width columns (a longer word
// gets a line of its own), the first starting with first, the rest with
// rest.
func wrap(text, first, rest string, width int) []string {
	var lines []string
	line, empty := first, true
	for _, w := range strings.Fields(text) {
		if !empty && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) > width {
			lines = append(lines, line)
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line, empty = line+w, false
	}
	return append(lines, line)
}
