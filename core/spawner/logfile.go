package spawner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// tailBytes and tailLines bound the output quoted in a StartError.
const (
	tailBytes = 16 << 10
	tailLines = 20
)

// serverLog is the per-server log file, opened by the hub for one start.
type serverLog struct {
	path  string
	f     *os.File
	start int64 // size when this start began: the tail shows only newer output
}

// openLog opens (creating 0640) the log for appending. The hub owns the
// file; the server only ever gets the write-only descriptor.
func openLog(path string) (*serverLog, error) {
	if path == "" {
		return nil, errors.New("no log file for the server: Request.LogPath is required")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open the server log: %w", err)
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open the server log: %w", err)
	}
	return &serverLog{path: path, f: f, start: end}, nil
}

func (l *serverLog) Close() error { return l.f.Close() }

// tail returns the last lines written since openLog, for error messages.
func (l *serverLog) tail() string {
	f, err := os.Open(l.path)
	if err != nil {
		return ""
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil || end <= l.start {
		return ""
	}
	from := max(l.start, end-tailBytes)
	buf := make([]byte, end-from)
	if _, err := f.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if from > l.start && len(lines) > 1 {
		lines = lines[1:] // the first line was cut in the middle
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return strings.Join(lines, "\n")
}
