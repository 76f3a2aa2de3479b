package backups_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubd/hubd/backups"
)

// BenchmarkCreate backs up a database of 10,000 users and 100,000 events.
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	s := newHubDB(b, filepath.Join(dir, "hubd.sqlite"))
	tx, err := s.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		`WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 10000)
		 INSERT INTO users (name, created, last_activity, cookie_id)
		 SELECT 'user' || i, '2026-01-01T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z', lower(hex(randomblob(16))) FROM k`,
		`WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 100000)
		 INSERT INTO events (time, actor, actor_uid, source, action, target, detail)
		 SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 1767225600 + i, 'unixepoch'), 'user' || (i % 10000), 1000 + i % 10000,
		        'web', 'server.start', 'user' || (i % 10000), 'spawned by the web page from 10.0.' || (i % 250) || '.' || (i % 200) FROM k`,
	} {
		if _, err := tx.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	var dbBytes int64
	if err := s.QueryRow(`SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`).Scan(&dbBytes); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "backups")
	if err := os.Mkdir(out, 0o700); err != nil {
		b.Fatal(err)
	}
	var size int64
	for b.Loop() {
		info, err := backups.Create(ctx, backups.CreateOptions{Dir: out, DB: s})
		if err != nil {
			b.Fatal(err)
		}
		size = info.Size
		if err := os.Remove(info.Path); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "archive-bytes")
	b.ReportMetric(float64(dbBytes), "db-bytes")
}
