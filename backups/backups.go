// Package backups makes, checks, restores and prunes hubd backups: one
// tar.gz archive per backup holding manifest.json (first, so listing reads
// only the head of each archive), a consistent snapshot of the sqlite
// database and the configuration file(s), each member with its sha256 in
// the manifest.
//
// The live database is only ever read through sqlite (VACUUM INTO): copying
// the file of a WAL database misses the commits still in its -wal, and
// opening and closing a descriptor of the file would drop sqlite's POSIX
// locks in this process.
package backups

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/hubd/hubd/internal/fsutil"
)

// Format is the archive layout version written into every manifest.
const Format = 1

// Member is one file inside an archive.
type Member struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes an archive; it is its first member, manifest.json.
type Manifest struct {
	Format        int       `json:"format"`
	HubdVersion   string    `json:"hubd_version"`
	SchemaVersion int       `json:"schema_version"`
	Created       time.Time `json:"created"`
	Label         string    `json:"label,omitempty"`
	Host          string    `json:"host"`
	DBPath        string    `json:"db_path"`
	ConfigPaths   []string  `json:"config_paths"`
	Members       []Member  `json:"members"`
}

// Info is an archive on disk.
type Info struct {
	Path     string
	Size     int64
	Manifest Manifest
	// Err is set by List for an archive whose manifest cannot be read.
	Err error
}

// Progress stages.
const (
	StageSnapshot = "snapshot" // copying the live database
	StageCompress = "compress" // writing the archive
	StageExtract  = "extract"  // reading and checking an archive
)

// Progress reports a slow stage; Done and Total are bytes (Total is an
// estimate during the snapshot).
type Progress struct {
	Stage       string
	Done, Total int64
}

// Errors callers can test with errors.Is.
var (
	// ErrNoSpace means a file system filled up; the partial file is gone.
	ErrNoSpace = errors.New("no space left on the device")
	// ErrNotArchive means the file is not a hubd backup at all.
	ErrNotArchive = errors.New("not a hubd backup archive")
	// ErrTruncated means the archive ends early (an interrupted copy).
	ErrTruncated = errors.New("archive is truncated")
	// ErrDamaged means the archive's content does not match its checksums.
	ErrDamaged = errors.New("archive is damaged")
	// ErrHubRunning means a hub holds the database lock.
	ErrHubRunning = errors.New("the hub is running")
)

// CreateOptions say what to back up and where.
type CreateOptions struct {
	// Dir is the backup directory; it must exist and be writable.
	Dir string
	// DB is the live database.
	DB *sql.DB
	// DBPath is recorded in the manifest.
	DBPath string
	// ConfigFiles are included in the archive; each must exist.
	ConfigFiles []string
	HubdVersion string
	// Label ends up in the file name: "manual", "pre-upgrade", "pre-restore".
	Label string
	// Progress is told about the snapshot and compression; nil is silent.
	// It is called from one goroutine at a time.
	Progress func(Progress)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

var labelRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// Create snapshots the database while the hub keeps running and writes one
// archive into o.Dir, mode 0600. Nothing is left behind when it fails.
func Create(ctx context.Context, o CreateOptions) (Info, error) {
	if o.DB == nil {
		return Info{}, errors.New("create backup: no database handle")
	}
	if o.Label != "" && !labelRE.MatchString(o.Label) {
		return Info{}, fmt.Errorf("backup label %q: use up to 40 lowercase letters, digits and dashes", o.Label)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if err := checkDir(o.Dir); err != nil {
		return Info{}, err
	}
	configs, err := readConfigs(o.ConfigFiles)
	if err != nil {
		return Info{}, err
	}
	version, err := schemaVersion(ctx, o.DB)
	if err != nil {
		return Info{}, err
	}
	live, err := liveSize(ctx, o.DB)
	if err != nil {
		return Info{}, err
	}
	// The snapshot and the archive exist side by side until the end.
	need := 2 * live
	const fix = "free some space or set backups.dir to a bigger disk"
	// Everything is written inside one private directory and only the
	// finished archive leaves it, so a failure or a cancel cleans up with
	// one RemoveAll, and List never sees a half-written file.
	work, err := os.MkdirTemp(o.Dir, ".hubd-backup-")
	if err != nil {
		return Info{}, spaceError(o.Dir, need, fix, dirError(o.Dir, err))
	}
	defer os.RemoveAll(work)

	snap := filepath.Join(work, dbMember)
	if err := snapshot(ctx, o.DB, snap, live, o.Progress); err != nil {
		return Info{}, spaceError(o.Dir, need, fix, err)
	}
	host, _ := os.Hostname()
	m := Manifest{
		Format:        Format,
		HubdVersion:   o.HubdVersion,
		SchemaVersion: version,
		Created:       now().UTC(),
		Label:         o.Label,
		Host:          host,
		DBPath:        o.DBPath,
	}
	tmp := filepath.Join(work, "archive.tar.gz")
	if err := writeArchive(ctx, tmp, &m, snap, configs, o.Progress); err != nil {
		return Info{}, spaceError(o.Dir, need, fix, err)
	}
	final, err := publish(tmp, o.Dir, m.Created, o.Label)
	if err != nil {
		return Info{}, spaceError(o.Dir, need, fix, err)
	}
	fi, err := os.Stat(final)
	if err != nil {
		return Info{}, fmt.Errorf("stat new backup: %w", err)
	}
	return Info{Path: final, Size: fi.Size(), Manifest: m}, nil
}

// checkDir explains a missing backup directory. Writability is found out
// by creating the work directory: mode bits do not tell for root, and a
// read-only mount is only seen by trying.
func checkDir(dir string) error {
	if dir == "" {
		return errors.New("no backup directory: set backups.dir")
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup directory %s does not exist: run `hubd setup` (it creates it) or set backups.dir: %w", dir, err)
	}
	if err != nil {
		return fmt.Errorf("backup directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("backup directory %s is not a directory: set backups.dir to a directory", dir)
	}
	return nil
}

func dirError(dir string, err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("backup directory %s is not writable (uid %d): run the command as root or the hub's user, or set backups.dir to a writable directory: %w", dir, os.Geteuid(), err)
	}
	return fmt.Errorf("create a file in backup directory %s: %w", dir, err)
}

// spaceError turns running out of space into ErrNoSpace with the numbers
// an admin needs; other errors pass through. need is the most the whole
// operation writes into dir (0: unknown); fix says what to do about it.
func spaceError(dir string, need int64, fix string, err error) error {
	if !isNoSpace(err) {
		return err
	}
	free := "unknown"
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) == nil {
		free = HumanSize(int64(st.Bavail) * st.Bsize)
	}
	if need > 0 {
		return fmt.Errorf("%w in %s: this needs up to about %s there while it runs (%s free); %s: %w",
			ErrNoSpace, dir, HumanSize(need), free, fix, err)
	}
	return fmt.Errorf("%w in %s (%s free); %s: %w", ErrNoSpace, dir, free, fix, err)
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || isSQLiteFull(err)
}

// publish moves the finished archive to its final name without ever
// replacing an existing backup: a hard link fails when the name is taken,
// where a rename would silently overwrite a backup made in the same second.
func publish(tmp, dir string, created time.Time, label string) (string, error) {
	for n := 1; n <= 100; n++ {
		final := filepath.Join(dir, archiveName(created, label, n))
		err := os.Link(tmp, final)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("move backup into place as %s: %w", final, err)
		}
		if err := fsutil.SyncDir(dir); err != nil {
			os.Remove(final)
			return "", err
		}
		return final, nil
	}
	return "", fmt.Errorf("more than 100 backups in %s within one second: try again", dir)
}

const timeLayout = "20060102T150405Z"

// archiveName is hubd-<UTC time>[.n][-label].tar.gz; the .n suffix keeps
// names unique within one second.
func archiveName(created time.Time, label string, n int) string {
	s := "hubd-" + created.UTC().Format(timeLayout)
	if n > 1 {
		s += "." + strconv.Itoa(n)
	}
	if label != "" {
		s += "-" + label
	}
	return s + archiveExt
}

const archiveExt = ".tar.gz"

// isArchiveName tells hubd backups apart from anything else in the
// directory, which List and Prune must leave alone.
var archiveNameRE = regexp.MustCompile(`^hubd-\d{8}T\d{6}Z(\.\d+)?(-[a-z0-9-]+)?\.tar\.gz$`)

// HumanSize formats a byte count for messages ("12.3 MiB").
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
