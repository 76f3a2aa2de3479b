package backups

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Member names inside an archive.
const (
	manifestMember = "manifest.json"
	dbMember       = "hubd.sqlite"
	configDir      = "config/"
)

// Limits that keep a crafted archive from exhausting memory: the manifest
// and the config files are read into memory, the database is streamed.
const (
	maxManifestSize = 1 << 20
	maxConfigSize   = 4 << 20
)

// configFile is a configuration file read at backup time, so the bytes
// hashed are the bytes archived even if the file changes meanwhile.
type configFile struct {
	path, member string
	data         []byte
}

// configMember is where a configuration file lives inside an archive.
func configMember(path string) string { return configDir + filepath.Base(path) }

func readConfigs(paths []string) ([]configFile, error) {
	seen := map[string]string{}
	var out []configFile
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %w", p, err)
		}
		data, err := os.ReadFile(abs)
		if err != nil {
			return nil, fmt.Errorf("read config file for the backup: %w (fix --config or the path)", err)
		}
		if len(data) > maxConfigSize {
			return nil, fmt.Errorf("config file %s is larger than %s: is it the right file?", abs, HumanSize(maxConfigSize))
		}
		name := configMember(abs)
		if other, dup := seen[name]; dup {
			return nil, fmt.Errorf("config files %s and %s have the same name; back up only one of them", other, abs)
		}
		seen[name] = abs
		out = append(out, configFile{path: abs, member: name, data: data})
	}
	return out, nil
}

// writeArchive hashes the members into m, then writes manifest, database
// snapshot and config files to path as tar.gz and fsyncs it.
func writeArchive(ctx context.Context, path string, m *Manifest, snap string, configs []configFile, progress func(Progress)) (err error) {
	dbSum, dbSize, err := hashFile(snap)
	if err != nil {
		return err
	}
	m.Members = append(m.Members, Member{Name: dbMember, Size: dbSize, SHA256: dbSum})
	for _, c := range configs {
		sum := sha256.Sum256(c.data)
		m.ConfigPaths = append(m.ConfigPaths, c.path)
		m.Members = append(m.Members, Member{Name: c.member, Size: int64(len(c.data)), SHA256: hex.EncodeToString(sum[:])})
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	add := func(name string, size int64, r io.Reader) error {
		hdr := &tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
		if _, err := io.Copy(tw, r); err != nil {
			return fmt.Errorf("write %s into the archive: %w", name, err)
		}
		return nil
	}
	if err := add(manifestMember, int64(len(manifest)), bytes.NewReader(manifest)); err != nil {
		return err
	}
	db, err := os.Open(snap)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer db.Close()
	counted := &progressReader{ctx: ctx, r: db, stage: StageCompress, total: dbSize, progress: progress}
	report(progress, Progress{Stage: StageCompress, Total: dbSize})
	if err := add(dbMember, dbSize, counted); err != nil {
		return err
	}
	for _, c := range configs {
		if err := add(c.member, int64(len(c.data)), bytes.NewReader(c.data)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync archive: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	report(progress, Progress{Stage: StageCompress, Done: dbSize, Total: dbSize})
	return nil
}

func hashFile(path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// progressReader reports bytes read about every progressStep and stops
// when ctx is cancelled.
type progressReader struct {
	ctx         context.Context
	r           io.Reader
	stage       string
	done, total int64
	last        int64
	progress    func(Progress)
}

const progressStep = 4 << 20

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.done-p.last >= progressStep {
		p.last = p.done
		report(p.progress, Progress{Stage: p.stage, Done: p.done, Total: p.total})
	}
	return n, err
}

// archiveReader walks an archive's members.
type archiveReader struct {
	path string
	f    *os.File
	gz   *gzip.Reader
	tr   *tar.Reader
}

// openArchive opens path and reads its manifest, which must come first.
func openArchive(path string) (*archiveReader, Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Manifest{}, fmt.Errorf("open backup: %w", err)
	}
	br := bufio.NewReader(f)
	if magic, _ := br.Peek(2); !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		f.Close()
		return nil, Manifest{}, fmt.Errorf("%s: %w (not a gzip file); pick a hubd-*.tar.gz file made by `hubd backup create`", path, ErrNotArchive)
	}
	gz, err := gzip.NewReader(br)
	if err != nil {
		f.Close()
		return nil, Manifest{}, readError(path, "the gzip header", err)
	}
	a := &archiveReader{path: path, f: f, gz: gz, tr: tar.NewReader(gz)}
	m, err := a.manifest()
	if err != nil {
		a.Close()
		return nil, Manifest{}, err
	}
	return a, m, nil
}

func (a *archiveReader) Close() error { return a.f.Close() }

func (a *archiveReader) manifest() (Manifest, error) {
	hdr, err := a.tr.Next()
	if err != nil && !errors.Is(err, io.EOF) {
		return Manifest{}, readError(a.path, manifestMember, err)
	}
	if err != nil || hdr.Name != manifestMember {
		return Manifest{}, fmt.Errorf("%s: %w: it does not start with %s; pick an archive made by `hubd backup create`", a.path, ErrNotArchive, manifestMember)
	}
	data, err := io.ReadAll(io.LimitReader(a.tr, maxManifestSize+1))
	if err != nil {
		return Manifest{}, readError(a.path, manifestMember, err)
	}
	var m Manifest
	if len(data) > maxManifestSize || json.Unmarshal(data, &m) != nil {
		return Manifest{}, fmt.Errorf("%s: %w: %s is not valid; use another backup", a.path, ErrDamaged, manifestMember)
	}
	if m.Format < 1 {
		return Manifest{}, fmt.Errorf("%s: %w: %s has no format number; use another backup", a.path, ErrDamaged, manifestMember)
	}
	if m.Format > Format {
		return Manifest{}, fmt.Errorf("%s: archive format %d is not format %d, which this hubd reads: use the hubd version that made it (%s)", a.path, m.Format, Format, m.HubdVersion)
	}
	return m, nil
}

// readError classifies a failure while decompressing or untarring.
func readError(path, where string, err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: %w (it ends inside %s): the file is incomplete; copy it again or use another backup: %w", path, ErrTruncated, where, err)
	case errors.As(err, &corrupt), errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("%s: %w (at %s): use another backup: %w", path, ErrDamaged, where, err)
	}
	return fmt.Errorf("%s: read %s: %w", path, where, err)
}

// ReadManifest reads only the manifest of an archive, which is cheap.
func ReadManifest(path string) (Manifest, error) {
	a, m, err := openArchive(path)
	if err != nil {
		return Manifest{}, err
	}
	a.Close()
	return m, nil
}

// extracted is what a full read of an archive yields besides the database.
type extracted struct {
	manifest Manifest
	configs  map[string][]byte // member name → content
}

// extract reads every member of the archive, checking each against the
// manifest, and writes the database member to db. It also drains the gzip
// stream so its own checksum is verified.
func extract(ctx context.Context, path string, db io.Writer, progress func(Progress)) (extracted, error) {
	a, m, err := openArchive(path)
	if err != nil {
		return extracted{}, err
	}
	defer a.Close()
	want := map[string]Member{}
	var dbSize int64
	for _, mem := range m.Members {
		want[mem.Name] = mem
		if mem.Name == dbMember {
			dbSize = mem.Size
		}
	}
	if _, ok := want[dbMember]; !ok {
		return extracted{}, fmt.Errorf("%s: %w: the manifest lists no %s", path, ErrDamaged, dbMember)
	}
	out := extracted{manifest: m, configs: map[string][]byte{}}
	for {
		hdr, err := a.tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return extracted{}, readError(path, "the member after the last one read", err)
		}
		mem, ok := want[hdr.Name]
		if !ok {
			return extracted{}, fmt.Errorf("%s: %w: member %s is not in the manifest, so the archive was altered; use another backup", path, ErrDamaged, hdr.Name)
		}
		delete(want, hdr.Name)
		var dst io.Writer
		var buf *bytes.Buffer
		var r io.Reader = a.tr
		if hdr.Name == dbMember {
			dst = db
			r = &progressReader{ctx: ctx, r: a.tr, stage: StageExtract, total: dbSize, progress: progress}
		} else {
			buf = &bytes.Buffer{}
			dst = buf
			r = io.LimitReader(a.tr, maxConfigSize+1)
		}
		h := sha256.New()
		w := &errWriter{w: dst}
		n, err := io.Copy(io.MultiWriter(w, h), r)
		if w.err != nil {
			return extracted{}, fmt.Errorf("write %s from %s: %w", hdr.Name, path, w.err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return extracted{}, err
			}
			return extracted{}, readError(path, "member "+hdr.Name, err)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); n != mem.Size || sum != mem.SHA256 {
			return extracted{}, fmt.Errorf("%s: %w: checksum mismatch in member %s (sha256 %s, %d bytes; the manifest says %s, %d bytes); use another backup",
				path, ErrDamaged, hdr.Name, sum, n, mem.SHA256, mem.Size)
		}
		if buf != nil {
			out.configs[hdr.Name] = buf.Bytes()
		}
	}
	for name := range want {
		return extracted{}, fmt.Errorf("%s: %w: member %s is missing; copy the file again or use another backup", path, ErrTruncated, name)
	}
	if _, err := io.Copy(io.Discard, a.gz); err != nil {
		return extracted{}, readError(path, "the end of the archive", err)
	}
	return out, nil
}

// errWriter remembers a write error, so a full disk is not mistaken for a
// damaged archive.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	n, err := e.w.Write(b)
	if err != nil {
		e.err = err
	}
	return n, err
}
