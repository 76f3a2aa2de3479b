package backups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// List returns the backups in dir, newest first. An archive whose manifest
// cannot be read is listed with Err set rather than failing the list.
func List(dir string) ([]Info, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup directory %s does not exist: run `hubd setup` (it creates it) or set backups.dir: %w", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []Info
	when := map[string]time.Time{}
	for _, e := range entries {
		if !e.Type().IsRegular() || !archiveNameRE.MatchString(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		info := Info{Path: filepath.Join(dir, e.Name()), Size: fi.Size()}
		info.Manifest, info.Err = ReadManifest(info.Path)
		// A damaged archive still sorts by when it was written.
		when[info.Path] = fi.ModTime()
		if info.Err == nil {
			when[info.Path] = info.Manifest.Created
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := when[out[i].Path], when[out[j].Path]
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return out[i].Path > out[j].Path
	})
	return out, nil
}

// Verify reads the whole archive at path: every member against its sha256
// in the manifest, then the database inside must pass integrity_check and
// be at the schema version the manifest claims.
func Verify(ctx context.Context, path string) (Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Info{}, fmt.Errorf("verify backup: %w", err)
	}
	// The database has to be a file for sqlite to check it. Beside the
	// archive is where space for it is likeliest; a read-only backup
	// directory falls back to the temporary directory.
	work, err := os.MkdirTemp(filepath.Dir(path), ".hubd-verify-")
	if err != nil {
		work, err = os.MkdirTemp("", "hubd-verify-")
	}
	if err != nil {
		return Info{}, fmt.Errorf("verify backup: %w", err)
	}
	defer os.RemoveAll(work)
	f, err := os.OpenFile(filepath.Join(work, dbMember), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Info{}, fmt.Errorf("verify backup: %w", err)
	}
	x, err := extractDB(ctx, path, f, nil)
	info := Info{Path: path, Size: fi.Size(), Manifest: x.manifest}
	return info, err
}

// extractDB extracts and checks the archive, writing its database to f,
// which it syncs and closes; then it checks the database file. The caller
// removes f's file on error.
func extractDB(ctx context.Context, archive string, f *os.File, progress func(Progress)) (extracted, error) {
	x, err := extract(ctx, archive, f, progress)
	if err != nil {
		f.Close()
		return x, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return x, fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return x, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	db, err := openFile(f.Name(), true)
	if err != nil {
		return x, err
	}
	defer db.Close()
	if err := integrityCheck(ctx, db); err != nil {
		return x, fmt.Errorf("%s: the database inside: %w; use another backup", archive, err)
	}
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return x, fmt.Errorf("%s: the database inside: %w", archive, err)
	}
	if v != x.manifest.SchemaVersion {
		return x, fmt.Errorf("%s: %w: the manifest says schema version %d but the database inside is at %d", archive, ErrDamaged, x.manifest.SchemaVersion, v)
	}
	return x, nil
}

// Prune removes old backups from dir and returns what it removed: beyond
// the newest keep (0: no count limit) and older than maxAge (0: no age
// limit). The newest backup always stays, and so does anything that is not
// a readable hubd backup: a damaged archive is for an admin to look at.
func Prune(dir string, keep int, maxAge time.Duration, now time.Time) ([]Info, error) {
	list, err := List(dir)
	if err != nil {
		return nil, err
	}
	var removed []Info
	n := 0 // readable backups seen so far, newest first
	for _, info := range list {
		if info.Err != nil {
			continue
		}
		n++
		if n == 1 {
			continue
		}
		tooMany := keep > 0 && n > keep
		tooOld := maxAge > 0 && now.Sub(info.Manifest.Created) > maxAge
		if !tooMany && !tooOld {
			continue
		}
		if err := os.Remove(info.Path); err != nil {
			return removed, fmt.Errorf("prune backups: %w", err)
		}
		removed = append(removed, info)
	}
	return removed, nil
}
