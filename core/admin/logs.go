package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"

	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/names"
)

const (
	defaultLogLines = 200
	maxLogLines     = 5000
	// maxLogBytes bounds what one call reads from the end of a log, so a
	// server printing one endless line cannot make an answer huge.
	maxLogBytes = 1 << 20
)

// logTail returns the last lines of a user's server log,
// data.log_dir/<user>.log (<user>-<server>.log for ?server=, a named
// server), as the hub writes it. Members may read their own.
func (s *Server) logTail(w http.ResponseWriter, r *http.Request, who identity) error {
	name := r.PathValue("user")
	if err := names.Check(name); err != nil {
		return errorf(http.StatusBadRequest, "user %s: %v", names.Quote(name), err)
	}
	if who.role != wire.RoleAdmin && name != who.name {
		return errorf(http.StatusForbidden, "members may only read their own server log; %s is a member", who.actor())
	}
	n, err := queryInt(r, "lines", defaultLogLines, 1, maxLogLines)
	if err != nil {
		return err
	}
	server := r.URL.Query().Get("server")
	if server != "" {
		if err := hub.CheckServerName(server); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
	}
	path := hub.LogPath(s.cfg.Data.LogDir, name, server)
	lines, truncated, err := tailFile(path, n, maxLogBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(http.StatusNotFound, "no server log for %s at %s: their server has not been started since the logs were cleared", name, path)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.LogTail{User: name, Path: path, Lines: lines, Truncated: truncated})
	return nil
}

// tailFile returns up to n last lines of path, reading at most limit bytes
// from its end; truncated tells whether the file holds more.
func tailFile(path string, n int, limit int64) ([]string, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("server log %s is not a regular file", path)
	}
	off := max(fi.Size()-limit, 0)
	buf, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	truncated := off > 0
	if truncated {
		// The first line read is probably cut; drop it.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	if len(buf) == 0 {
		return []string{}, truncated, nil
	}
	all := strings.Split(string(buf), "\n")
	if len(all) > n {
		all, truncated = all[len(all)-n:], true
	}
	for i, l := range all {
		all[i] = printable(l)
	}
	return all, truncated, nil
}

// printable replaces control characters (terminal escapes a server may
// print) and invalid UTF-8, so showing a log in a terminal cannot drive
// the admin's terminal. Tabs stay.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\t') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\t') {
			return '\uFFFD'
		}
		return r
	}, s)
}
