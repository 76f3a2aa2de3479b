package backups_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubd/hubd/backups"
)

// members reads every member of a tar.gz archive with the standard
// library alone.
func members(data []byte) (map[string][]byte, []string, error) {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	tr := tar.NewReader(gz)
	out := map[string][]byte{}
	var order []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, order, nil
		}
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, err
		}
		out[hdr.Name] = b
		order = append(order, hdr.Name)
	}
}

// pack writes members (in order) as a tar.gz archive.
func pack(t testing.TB, names []string, content map[string][]byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o600, Size: int64(len(content[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzVerify hands the archive reader fuzzed archives, either whole files
// (mode 0) or a good archive whose manifest is replaced by the fuzzed bytes
// (mode 1, so mutations reach the member checks). Verify never panics and
// leaves nothing behind; an error names the archive; success means every
// member is listed in the manifest with its size and sha256, none is
// missing, and the database is among them; anything ReadManifest refuses,
// Verify refuses too.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	db := newHubDB(f, filepath.Join(dir, "hubd.sqlite"))
	addUser(f, db, "alice")
	cfg := filepath.Join(dir, "hubd.toml")
	writeFile(f, cfg, "[hub]\nlisten = \":8000\"\n")
	info, err := backups.Create(context.Background(), backups.CreateOptions{Dir: dir, DB: db, ConfigFiles: []string{cfg}, Label: "seed"})
	if err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(info.Path)
	if err != nil {
		f.Fatal(err)
	}
	content, order, err := members(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), good)
	f.Add(uint8(0), good[:len(good)/2])
	f.Add(uint8(0), []byte("not an archive"))
	f.Add(uint8(1), content["manifest.json"])
	f.Add(uint8(1), []byte(`{"format": 1, "members": [{"name": "hubd.sqlite", "size": 1, "sha256": "00"}]}`))
	f.Add(uint8(1), []byte(`{"format": 99}`))
	f.Add(uint8(1), []byte(`{"format": 1, "config_paths": ["../../etc/passwd"], "members": []}`))
	work := f.TempDir()
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		archive := data
		if mode%2 == 1 {
			c := map[string][]byte{}
			for k, v := range content {
				c[k] = v
			}
			c["manifest.json"] = data
			archive = pack(t, order, c)
		}
		path := filepath.Join(work, "hubd-20260101-000000-fuzz.tar.gz")
		if err := os.WriteFile(path, archive, 0o600); err != nil {
			t.Fatal(err)
		}
		_, mErr := backups.ReadManifest(path)
		got, err := backups.Verify(context.Background(), path)
		if left, _ := filepath.Glob(filepath.Join(work, ".hubd-verify-*")); len(left) > 0 {
			t.Fatalf("Verify left %v behind", left)
		}
		if err != nil {
			if !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), filepath.Base(path)) {
				t.Fatalf("error %q does not name the archive", err)
			}
			return
		}
		if mErr != nil {
			t.Fatalf("ReadManifest refused (%v) what Verify accepted", mErr)
		}
		files, _, err := members(archive)
		if err != nil {
			t.Fatalf("Verify accepted an archive the standard library cannot read: %v", err)
		}
		listed := map[string]backups.Member{}
		for _, m := range got.Manifest.Members {
			listed[m.Name] = m
		}
		if _, ok := listed["hubd.sqlite"]; !ok || got.Manifest.Format < 1 || got.Manifest.Format > backups.Format {
			t.Fatalf("accepted manifest %+v", got.Manifest)
		}
		for name, b := range files {
			if name == "manifest.json" {
				continue
			}
			sum := sha256.Sum256(b)
			m, ok := listed[name]
			if !ok || m.Size != int64(len(b)) || m.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("member %s (%d bytes) does not match the manifest's %+v", name, len(b), m)
			}
			delete(listed, name)
		}
		if len(listed) > 0 {
			raw, _ := json.Marshal(listed)
			t.Fatalf("manifest lists members the archive lacks: %s", raw)
		}
	})
}
