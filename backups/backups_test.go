package backups_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/fsutil"
	"github.com/hubd/hubd/upgrade"
)

// The backup of a database that is being written to contains every write
// acknowledged before the snapshot began, and restores to a sound file.
func TestBackupUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bdir := mkdir(t, filepath.Join(dir, "backups"))
	dbPath := filepath.Join(dir, "hubd.sqlite")
	s := newHubDB(t, dbPath)
	pad(t, s, 2000, 500) // a snapshot that takes a moment

	var mu sync.Mutex
	var acked []int64
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				res, err := s.ExecContext(wctx, `INSERT INTO events (time, action, target) VALUES (?, 'write', ?)`,
					store.FormatTime(time.Now()), fmt.Sprintf("w%d-%d", w, i))
				if wctx.Err() != nil {
					return
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				id, err := res.LastInsertId()
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	eventually(t, "writers to get going", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 100
	})

	var before []int64
	info, err := backups.Create(ctx, backups.CreateOptions{
		Dir: bdir, DB: s, DBPath: dbPath, Label: "manual", HubdVersion: "test",
		Progress: func(p backups.Progress) {
			// The first snapshot report comes just before VACUUM INTO starts.
			if p.Stage == backups.StageSnapshot && before == nil {
				mu.Lock()
				before = slices.Clone(acked)
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	during := len(acked) - len(before)
	mu.Unlock()
	stop()
	wg.Wait()
	t.Logf("%d writes acknowledged before the snapshot, %d more while the backup ran", len(before), during)

	if fi, err := os.Stat(info.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive %s: %v, %v; want mode 0600", info.Path, fi, err)
	}
	if _, err := backups.Verify(ctx, info.Path); err != nil {
		t.Fatal(err)
	}
	fresh := t.TempDir()
	restored := filepath.Join(fresh, "hubd.sqlite")
	res, err := backups.Restore(ctx, backups.RestoreOptions{
		Archive: info.Path, DBPath: restored, Dir: mkdir(t, filepath.Join(fresh, "backups")), MaxSchema: upgrade.Latest(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.SafetyBackup.Path != "" {
		t.Errorf("safety backup %s taken with no database in place", res.SafetyBackup.Path)
	}
	db := openCopy(t, restored)
	wantIntegrityOK(t, db)
	rows, err := db.Query(`SELECT id FROM events WHERE action = 'write'`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, id := range before {
		if !got[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d writes acknowledged before the snapshot are missing from the backup", missing, len(before))
	}
	all := map[int64]bool{}
	for _, id := range acked {
		all[id] = true
	}
	for id := range got {
		if !all[id] {
			t.Errorf("backup has event %d that no writer had acknowledged", id)
		}
	}
}

func TestBackupCreateNameModeAndUniqueness(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newHubDB(t, filepath.Join(dir, "hubd.sqlite"))
	bdir := mkdir(t, filepath.Join(dir, "backups"))
	cfg := filepath.Join(dir, "hubd.toml")
	writeFile(t, cfg, "[hub]\n")
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	opts := backups.CreateOptions{Dir: bdir, DB: s, ConfigFiles: []string{cfg}, Label: "pre-upgrade", Now: func() time.Time { return at }}
	a, err := backups.Create(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := backups.Create(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hubd-20260304T050607Z-pre-upgrade.tar.gz", "hubd-20260304T050607Z.2-pre-upgrade.tar.gz"}
	if got := names(t, bdir); !slices.Equal(got, want) {
		t.Fatalf("backup dir has %v, want %v (no temporary files, unique names)", got, want)
	}
	for _, p := range []string{a.Path, b.Path} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", p, fi, err)
		}
	}
	m := a.Manifest
	if m.SchemaVersion != upgrade.Latest() || m.Label != "pre-upgrade" || len(m.Members) != 2 || m.Members[1].Name != "config/hubd.toml" || m.ConfigPaths[0] != cfg {
		t.Errorf("manifest %+v", m)
	}

	if _, err := backups.Create(ctx, backups.CreateOptions{Dir: bdir, DB: s, ConfigFiles: []string{filepath.Join(dir, "nope.toml")}}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing config file: %v", err)
	}
	if _, err := backups.Create(ctx, backups.CreateOptions{Dir: bdir, DB: s, Label: "../x"}); err == nil {
		t.Error("label with a slash accepted")
	}
}

func TestBackupCreateDirErrors(t *testing.T) {
	ctx := context.Background()
	s := newHubDB(t, filepath.Join(t.TempDir(), "hubd.sqlite"))

	_, err := backups.Create(ctx, backups.CreateOptions{Dir: filepath.Join(t.TempDir(), "missing"), DB: s})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "hubd setup") || !strings.Contains(err.Error(), "backups.dir") {
		t.Errorf("missing dir: %v", err)
	}

	// Root ignores mode bits, so unwritable means a read-only mount.
	ro := mountTmpfs(t, "ro,size=64k")
	_, err = backups.Create(ctx, backups.CreateOptions{Dir: ro, DB: s})
	if !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), "not writable") || !strings.Contains(err.Error(), "backups.dir") {
		t.Errorf("read-only dir: %v", err)
	}
}

// A full backup directory fails with ErrNoSpace and keeps nothing, whether
// the snapshot or the archive is what does not fit.
func TestBackupCreateDiskFull(t *testing.T) {
	for _, tc := range []struct {
		stage      string
		fs         string
		rows, size int
	}{
		{backups.StageSnapshot, "size=256k", 500, 2000}, // ~2 MB (one row a page): the snapshot does not fit
		{backups.StageCompress, "size=512k", 250, 1000}, // the ~360 KB snapshot fits, the archive beside it does not
	} {
		t.Run(tc.stage, func(t *testing.T) {
			dir := mountTmpfs(t, tc.fs)
			s := newHubDB(t, filepath.Join(t.TempDir(), "hubd.sqlite"))
			pad(t, s, tc.rows, tc.size)
			var last string
			_, err := backups.Create(context.Background(), backups.CreateOptions{
				Dir: dir, DB: s, Progress: func(p backups.Progress) { last = p.Stage },
			})
			if !errors.Is(err, backups.ErrNoSpace) || !strings.Contains(err.Error(), "needs up to about") || !strings.Contains(err.Error(), "backups.dir") {
				t.Fatalf("err = %v, want ErrNoSpace saying how much is needed", err)
			}
			if last != tc.stage {
				t.Errorf("failed during %q, want %q: %v", last, tc.stage, err)
			}
			if left := names(t, dir); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestBackupCreateCancelLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := newHubDB(t, filepath.Join(dir, "hubd.sqlite"))
	bdir := mkdir(t, filepath.Join(dir, "backups"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := backups.Create(ctx, backups.CreateOptions{Dir: bdir, DB: s, Progress: func(p backups.Progress) {
		if p.Stage == backups.StageCompress {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if left := names(t, bdir); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// damagedFixture makes a good archive with a config file.
func damagedFixture(t *testing.T) (good, dir string) {
	t.Helper()
	dir = t.TempDir()
	s := newHubDB(t, filepath.Join(dir, "hubd.sqlite"))
	addUser(t, s, "alice")
	pad(t, s, 200, 300)
	cfg := filepath.Join(dir, "hubd.toml")
	writeFile(t, cfg, "[hub]\nlisten = \":8000\"\n")
	info, err := backups.Create(context.Background(), backups.CreateOptions{Dir: dir, DB: s, ConfigFiles: []string{cfg}})
	if err != nil {
		t.Fatal(err)
	}
	return info.Path, dir
}

func TestBackupVerifyRefusesDamagedArchives(t *testing.T) {
	ctx := context.Background()
	good, dir := damagedFixture(t)
	if _, err := backups.Verify(ctx, good); err != nil {
		t.Fatalf("good archive: %v", err)
	}
	data := []byte(readFile(t, good))
	at := func(name string) string { return filepath.Join(dir, name) }

	writeFile(t, at("truncated"), string(data[:len(data)/2]))
	flipped := slices.Clone(data)
	flipped[len(flipped)/2] ^= 0x55
	writeFile(t, at("flipped"), string(flipped))
	writeFile(t, at("text"), "not an archive\n")
	rewrite(t, good, at("db-tampered"), func(name string, b []byte) []byte {
		if name == "hubd.sqlite" {
			b = slices.Clone(b)
			b[len(b)-100] ^= 1
		}
		return b
	})
	rewrite(t, good, at("config-tampered"), func(name string, b []byte) []byte {
		if name == "config/hubd.toml" {
			return []byte("[hub]\nlisten = \":80\"\n")
		}
		return b
	})
	rewrite(t, good, at("no-manifest"), func(name string, b []byte) []byte {
		if name == "manifest.json" {
			return nil
		}
		return b
	})
	rewrite(t, good, at("bad-manifest"), func(name string, b []byte) []byte {
		if name == "manifest.json" {
			return []byte("{}")
		}
		return b
	})

	for _, tc := range []struct {
		file     string
		want     []error // any of
		contains string
	}{
		{"truncated", []error{backups.ErrTruncated}, "incomplete"},
		// Depending on where the flip lands, deflate or gzip's CRC or our
		// sha256 notices; the stream may also seem to end early.
		{"flipped", []error{backups.ErrDamaged, backups.ErrTruncated}, "another backup"},
		{"text", []error{backups.ErrNotArchive}, "hubd backup create"},
		{"db-tampered", []error{backups.ErrDamaged}, "checksum mismatch in member hubd.sqlite"},
		{"config-tampered", []error{backups.ErrDamaged}, "checksum mismatch in member config/hubd.toml"},
		{"no-manifest", []error{backups.ErrNotArchive}, "does not start with manifest.json"},
		{"bad-manifest", []error{backups.ErrDamaged}, "manifest.json has no format"},
	} {
		_, err := backups.Verify(ctx, at(tc.file))
		if err == nil || !slices.ContainsFunc(tc.want, func(e error) bool { return errors.Is(err, e) }) || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("%s: err = %v; want one of %v mentioning %q", tc.file, err, tc.want, tc.contains)
		}
	}
	if left := names(t, dir); slices.ContainsFunc(left, func(n string) bool { return strings.HasPrefix(n, ".hubd-verify") }) {
		t.Errorf("verify left its work directory behind: %v", left)
	}

	list, err := backups.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Path != good || list[0].Err != nil {
		t.Errorf("List = %+v; want only the good archive (the others are not named like backups)", list)
	}
}

func TestBackupListShowsDamagedNewestFirst(t *testing.T) {
	dir := t.TempDir()
	s := newHubDB(t, filepath.Join(dir, "hubd.sqlite"))
	var want []string
	for i := range 3 {
		info, err := backups.Create(context.Background(), backups.CreateOptions{Dir: dir, DB: s,
			Now: func() time.Time { return time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC) }})
		if err != nil {
			t.Fatal(err)
		}
		want = append([]string{info.Path}, want...)
	}
	broken := filepath.Join(dir, "hubd-20250101T000000Z.tar.gz")
	writeFile(t, broken, "garbage")
	if err := os.Chtimes(broken, time.Now(), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "notes.txt"), "mine")
	list, err := backups.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, info := range list {
		got = append(got, info.Path)
	}
	if !slices.Equal(got, append(want, broken)) {
		t.Fatalf("List order %v, want %v", got, append(want, broken))
	}
	if !errors.Is(list[3].Err, backups.ErrNotArchive) {
		t.Errorf("damaged archive listed with Err = %v", list[3].Err)
	}
}

func TestBackupRestoreRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newHubDB(t, filepath.Join(dir, "future.sqlite"))
	if _, err := s.Exec(`INSERT INTO schema (version, applied_at) VALUES (99, 'later')`); err != nil {
		t.Fatal(err)
	}
	info, err := backups.Create(ctx, backups.CreateOptions{Dir: dir, DB: s, HubdVersion: "9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "hubd.sqlite")
	_, err = backups.Restore(ctx, backups.RestoreOptions{Archive: info.Path, DBPath: target, Dir: dir, MaxSchema: upgrade.Latest()})
	var newer *backups.NewerSchemaError
	if !errors.As(err, &newer) || !strings.Contains(err.Error(), "version 99") ||
		!strings.Contains(err.Error(), "version "+strconv.Itoa(upgrade.Latest())) || !strings.Contains(err.Error(), "9.9.9") {
		t.Fatalf("err = %v; want a NewerSchemaError naming both versions", err)
	}
	if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused restore still created %s", target)
	}
}

// restoreFixture is a database with alice, backed up, then bob added and
// the config changed; the store is closed as a stopped hub would be.
func restoreFixture(t *testing.T) (dbPath, bdir, cfg string, archive backups.Info) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "hubd.sqlite")
	bdir = mkdir(t, filepath.Join(dir, "backups"))
	cfg = filepath.Join(dir, "hubd.toml")
	writeFile(t, cfg, "# old\n")
	s := newHubDB(t, dbPath)
	addUser(t, s, "alice")
	archive, err := backups.Create(context.Background(), backups.CreateOptions{Dir: bdir, DB: s, DBPath: dbPath, ConfigFiles: []string{cfg}})
	if err != nil {
		t.Fatal(err)
	}
	addUser(t, s, "bob")
	writeFile(t, cfg, "# new\n")
	s.Close()
	return dbPath, bdir, cfg, archive
}

func TestBackupRestoreWithLockAndSafetyBackup(t *testing.T) {
	ctx := context.Background()
	dbPath, bdir, cfg, archive := restoreFixture(t)
	opts := backups.RestoreOptions{Archive: archive.Path, DBPath: dbPath, Dir: bdir, MaxSchema: upgrade.Latest()}

	lock, _, err := fsutil.TryLock(fsutil.LockPath(dbPath))
	if err != nil {
		t.Fatal(err)
	}
	_, err = backups.Restore(ctx, opts)
	lock.Release()
	if !errors.Is(err, backups.ErrHubRunning) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) ||
		!strings.Contains(err.Error(), "systemctl stop hubd") || !strings.Contains(err.Error(), "--stop-hub") {
		t.Fatalf("restore under a running hub: %v", err)
	}
	if got := userNames(t, openCopy(t, dbPath)); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("refused restore changed the database: users %v", got)
	}

	res, err := backups.Restore(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	db := openCopy(t, dbPath)
	wantIntegrityOK(t, db)
	if got := userNames(t, db); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("restored users %v, want [alice]", got)
	}
	if want := []backups.ConfigFile{{Member: "config/hubd.toml", Path: cfg}}; !slices.Equal(res.Configs, want) {
		t.Errorf("configs %+v, want %+v", res.Configs, want)
	}
	if got := readFile(t, cfg); got != "# new\n" {
		t.Errorf("config rewritten without RestoreConfig: %q", got)
	}

	// The safety backup holds the replaced database, bob included.
	safety := res.SafetyBackup
	if safety.Manifest.Label != "pre-restore" || filepath.Dir(safety.Path) != bdir {
		t.Fatalf("safety backup %+v", safety)
	}
	elsewhere := filepath.Join(t.TempDir(), "hubd.sqlite")
	if _, err := backups.Restore(ctx, backups.RestoreOptions{Archive: safety.Path, DBPath: elsewhere, Dir: bdir}); err != nil {
		t.Fatal(err)
	}
	if got := userNames(t, openCopy(t, elsewhere)); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("safety backup has users %v, want [alice bob]", got)
	}

	opts.RestoreConfig = true
	res, err = backups.Restore(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, cfg); got != "# old\n" || !res.Configs[0].Restored {
		t.Errorf("with RestoreConfig the config is %q (%+v)", got, res.Configs)
	}
}

func TestBackupRestoreStopsHub(t *testing.T) {
	dbPath, bdir, _, archive := restoreFixture(t)
	hub := startHelper(t, "lock", dbPath)
	opts := backups.RestoreOptions{Archive: archive.Path, DBPath: dbPath, Dir: bdir}
	_, err := backups.Restore(context.Background(), opts)
	if !errors.Is(err, backups.ErrHubRunning) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(hub.Process.Pid)) {
		t.Fatalf("err = %v; want ErrHubRunning naming pid %d", err, hub.Process.Pid)
	}
	opts.StopHub = true
	res, err := backups.Restore(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.StoppedPid != hub.Process.Pid {
		t.Errorf("StoppedPid = %d, want %d", res.StoppedPid, hub.Process.Pid)
	}
	if err := hub.Wait(); err != nil {
		t.Errorf("hub exit: %v", err)
	}
	if got := userNames(t, openCopy(t, dbPath)); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("restored users %v", got)
	}
}

// A hub killed with commits still in its -wal: the safety backup must have
// them, and that WAL must not be replayed into the restored file.
func TestBackupRestoreAfterCrashDoesNotReplayOldWAL(t *testing.T) {
	dbPath, bdir, _, archive := restoreFixture(t)
	hub := startHelper(t, "crash", dbPath)
	if err := hub.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	hub.Wait()
	if fi, err := os.Stat(dbPath + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("want a non-empty -wal after the crash: %v, %v", fi, err)
	}
	res, err := backups.Restore(context.Background(), backups.RestoreOptions{Archive: archive.Path, DBPath: dbPath, Dir: bdir})
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(dbPath + suffix); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left beside the restored database: %v", suffix, err)
		}
	}
	db := openCopy(t, dbPath)
	wantIntegrityOK(t, db)
	if got := userNames(t, db); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("restored users %v, want [alice]", got)
	}
	elsewhere := filepath.Join(t.TempDir(), "hubd.sqlite")
	if _, err := backups.Restore(context.Background(), backups.RestoreOptions{Archive: res.SafetyBackup.Path, DBPath: elsewhere, Dir: bdir}); err != nil {
		t.Fatal(err)
	}
	if got := userNames(t, openCopy(t, elsewhere)); !slices.Equal(got, []string{"alice", "bob", "crashed"}) {
		t.Errorf("safety backup users %v, want the crashed hub's commit too", got)
	}
}

// A restore that fails halfway (the database's file system fills up while
// extracting, or the archive turns out damaged) leaves the current database
// as it was and no temporary file beside it.
func TestBackupRestoreFailureLeavesDatabaseIntact(t *testing.T) {
	ctx := context.Background()
	dbDir := mountTmpfs(t, "size=512k")
	dbPath := filepath.Join(dbDir, "hubd.sqlite")
	s := newHubDB(t, dbPath)
	addUser(t, s, "old")
	s.Close()

	src := t.TempDir()
	big := newHubDB(t, filepath.Join(src, "big.sqlite"))
	pad(t, big, 500, 2000)
	bigArchive, err := backups.Create(ctx, backups.CreateOptions{Dir: src, DB: big})
	if err != nil {
		t.Fatal(err)
	}
	small, err := backups.Create(ctx, backups.CreateOptions{Dir: src, DB: newHubDB(t, filepath.Join(src, "small.sqlite"))})
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(src, "tampered.tar.gz")
	rewrite(t, small.Path, tampered, func(name string, b []byte) []byte {
		if name == "hubd.sqlite" {
			b = slices.Clone(b)
			b[len(b)-1] ^= 1
		}
		return b
	})

	bdir := t.TempDir()
	for _, tc := range []struct {
		archive string
		want    error
		says    string
	}{
		{bigArchive.Path, backups.ErrNoSpace, "nothing was changed"},
		{tampered, backups.ErrDamaged, "checksum mismatch in member hubd.sqlite"},
	} {
		_, err := backups.Restore(ctx, backups.RestoreOptions{Archive: tc.archive, DBPath: dbPath, Dir: bdir})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: err = %v, want %v saying %q", filepath.Base(tc.archive), err, tc.want, tc.says)
		}
		if got := names(t, dbDir); slices.ContainsFunc(got, func(n string) bool { return strings.Contains(n, "restore") }) {
			t.Errorf("%s: temporary file left in the database directory: %v", filepath.Base(tc.archive), got)
		}
		db := openCopy(t, dbPath)
		wantIntegrityOK(t, db)
		if got := userNames(t, db); !slices.Equal(got, []string{"old"}) {
			t.Errorf("%s: users %v after a failed restore", filepath.Base(tc.archive), got)
		}
		db.Close()
	}
}

func TestBackupPrune(t *testing.T) {
	dir := t.TempDir()
	s := newHubDB(t, filepath.Join(t.TempDir(), "hubd.sqlite"))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var made []string // oldest first
	for i := range 5 {
		info, err := backups.Create(context.Background(), backups.CreateOptions{Dir: dir, DB: s,
			Now: func() time.Time { return t0.Add(time.Duration(i) * 24 * time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, filepath.Base(info.Path))
	}
	others := []string{"hubd-20200101T000000Z.tar.gz", "hubd-custom.tar.gz", "notes.txt"}
	for _, n := range others {
		writeFile(t, filepath.Join(dir, n), "not a backup")
	}
	check := func(removed []backups.Info, err error, wantRemoved, wantLeft []string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range removed {
			got = append(got, filepath.Base(r.Path))
		}
		slices.Sort(got)
		slices.Sort(wantRemoved)
		if !slices.Equal(got, wantRemoved) {
			t.Errorf("removed %v, want %v", got, wantRemoved)
		}
		left := append(slices.Clone(wantLeft), others...)
		slices.Sort(left)
		if got := names(t, dir); !slices.Equal(got, left) {
			t.Errorf("left %v, want %v", got, left)
		}
	}

	removed, err := backups.Prune(dir, 4, 0, t0)
	check(removed, err, made[:1], made[1:])
	// Older than 2.5 days at day 4: day 1 goes (day 0 is gone already).
	removed, err = backups.Prune(dir, 0, 60*time.Hour, t0.Add(4*24*time.Hour))
	check(removed, err, made[1:2], made[2:])
	removed, err = backups.Prune(dir, 0, 0, t0.Add(1000*24*time.Hour))
	check(removed, err, nil, made[2:])
	// Everything is too old, yet the newest stays.
	removed, err = backups.Prune(dir, 1, time.Hour, t0.Add(1000*24*time.Hour))
	check(removed, err, made[2:4], made[4:])
}
