package admin_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin"
	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/upgrade"
)

// rawExchange writes req on a fresh connection, half-closes it and reads
// the status line of the answer (or "" when the server just closed).
func rawExchange(t *testing.T, sock string, req []byte) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server may answer and close before reading everything; a write
	// error then is part of the outcome, not a test failure.
	_, _ = c.Write(req)
	_ = c.(*net.UnixConn).CloseWrite()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		t.Logf("read: %v", err)
	}
	return strings.TrimSpace(line)
}

// TestMalformedInput throws garbage at a real socket; each gets a clean
// error and the server keeps answering.
func TestMalformedInput(t *testing.T) {
	e := newTestEnv(t)
	sock := e.cfg.Admin.Socket
	c := &client.Client{Socket: sock}
	healthy := func(t *testing.T) {
		t.Helper()
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatalf("server unhealthy afterwards: %v", err)
		}
	}
	garbage := make([]byte, 64<<10)
	rand.Read(garbage)
	long := strings.Repeat("a", 1<<20)
	cases := map[string]struct {
		req  string
		want string // status line prefix
	}{
		"binary garbage":     {string(garbage) + "\r\n\r\n", "HTTP/1.1 400"},
		"1 MB request line":  {"GET /v1/status?" + long + " HTTP/1.1\r\nHost: hubd.sock\r\n\r\n", "HTTP/1.1 431"},
		"1 MB header":        {"GET /v1/status HTTP/1.1\r\nHost: hubd.sock\r\nX-Long: " + long + "\r\n\r\n", "HTTP/1.1 431"},
		"1 MB line, no CRLF": {long, "HTTP/1.1 431"},
		"partial then close": {"GET /v1/status HTTP/1.1\r\nHo", "HTTP/1.1 400"},
		"body cut short":     {"POST /v1/sessions/stop HTTP/1.1\r\nHost: hubd.sock\r\nContent-Length: 100\r\n\r\n{\"users\":", "HTTP/1.1 400"},
		"1 MB JSON body":     {"POST /v1/sessions/stop HTTP/1.1\r\nHost: hubd.sock\r\nContent-Length: 1048587\r\n\r\n{\"users\":[\"" + long, "HTTP/1.1 413"},
		"HTTP/0.9":           {"GET /v1/status\r\n", "HTTP/1.1 400"},
		"unknown endpoint":   {"GET /v2/everything HTTP/1.1\r\nHost: hubd.sock\r\n\r\n", "HTTP/1.1 404"},
		"root path":          {"GET / HTTP/1.1\r\nHost: hubd.sock\r\n\r\n", "HTTP/1.1 404"},
		"CONNECT":            {"CONNECT hubd.sock:80 HTTP/1.1\r\nHost: hubd.sock\r\n\r\n", "HTTP/1.1 4"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := rawExchange(t, sock, []byte(c.req))
			if !strings.HasPrefix(got, c.want) {
				t.Errorf("answer %q, want %q", got, c.want)
			}
			healthy(t)
		})
	}

	// A client that sends half a request and then just waits holds one
	// connection, not the server.
	stuck, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	if _, err := stuck.Write([]byte("POST /v1/restart HTTP/1.1\r\nHost: hubd.sock\r\nContent-Le")); err != nil {
		t.Fatal(err)
	}
	healthy(t)

	// Unknown endpoints and wrong methods answer the JSON error shape,
	// through the client's typed errors.
	_, err = c.Events(context.Background(), client.EventsQuery{Limit: 5000})
	if e, ok := errors.AsType[*client.APIError](err); !ok || e.Status != 400 || !strings.Contains(e.Message, "1 to 1000") {
		t.Errorf("bad limit: %v", err)
	}
	_, err = c.ServerLog(context.Background(), "nobody", "", 10)
	if e, ok := errors.AsType[*client.APIError](err); !ok || e.Status != 404 {
		t.Errorf("log of a user without one: %v", err)
	}
	_, err = c.VerifyBackup(context.Background(), "../../etc/passwd")
	if e, ok := errors.AsType[*client.APIError](err); !ok || e.Status != 400 {
		t.Errorf("verify outside the backup directory: %v", err)
	}
}

// TestBackupStreamAndCancel makes a backup through the client with
// progress, then one cancelled after its first progress line, which
// must leave no partial files and the server able to make the next.
func TestBackupStreamAndCancel(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	// About 10 MB of audit log, so the backup reports progress.
	big := strings.Repeat("x", 1<<20)
	for range 10 {
		if err := e.store.AddEvent(ctx, store.Event{Actor: "test", ActorUID: -1, Source: "test", Action: "fill", Detail: big}); err != nil {
			t.Fatal(err)
		}
	}
	c := &client.Client{Socket: e.cfg.Admin.Socket}

	var stages []string
	b, err := c.CreateBackup(ctx, "stream", func(p wire.Progress) { stages = append(stages, p.Stage) })
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 || stages[0] != "snapshot" {
		t.Errorf("progress stages %v", stages)
	}
	if b.Label != "stream" || b.Size == 0 || b.Name == "" || filepath.Dir(b.Path) != e.cfg.Backups.Dir {
		t.Errorf("backup %+v", b)
	}
	if v, err := c.VerifyBackup(ctx, b.Name); err != nil || v.SchemaVersion != b.SchemaVersion {
		t.Errorf("verify the new backup: %+v, %v", v, err)
	}
	list, err := c.Backups(ctx)
	if err != nil || len(list.Backups) != 1 || list.Backups[0].Name != b.Name {
		t.Fatalf("list: %+v, %v", list, err)
	}
	err = c.RestoreBackup(ctx, b.Name)
	if e, ok := errors.AsType[*client.APIError](err); !ok || e.Status != 409 || !strings.Contains(e.Message, "hubd backup restore "+b.Path) {
		t.Errorf("restore: %v", err)
	}
	_, err = c.CreateBackup(ctx, "Bad Label", nil)
	if e, ok := errors.AsType[*client.APIError](err); !ok || e.Status != 400 {
		t.Errorf("bad label: %v", err)
	}

	// Ctrl-C in the middle.
	cctx, cancel := context.WithCancel(ctx)
	_, err = c.CreateBackup(cctx, "cancelled", func(wire.Progress) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: %v", err)
	}
	// The lock is held until the cancelled handler has cleaned up.
	e.srv.BackupSlot() <- struct{}{}
	entries, err := os.ReadDir(e.cfg.Backups.Dir)
	<-e.srv.BackupSlot()
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), ".") {
			t.Errorf("left behind: %s", en.Name())
		}
	}
	if _, err := c.CreateBackup(ctx, "after", nil); err != nil {
		t.Fatalf("backup after a cancelled one: %v", err)
	}
	var audited []string
	for _, ev := range e.adminEvents(t) {
		if ev.Action == "backup.create" {
			audited = append(audited, ev.Detail)
		}
	}
	t.Logf("backup.create events: %q", audited)
	if len(audited) != 3 {
		t.Errorf("backup.create events %q, want one per started backup", audited)
	}
}

// TestServerLogTail checks the bounds and the cleaning of log lines.
func TestServerLogTail(t *testing.T) {
	e := newTestEnv(t)
	path := filepath.Join(e.cfg.Data.LogDir, "alice.log")
	var b strings.Builder
	for i := range 100000 {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("y", i%50))
		b.WriteString("\n")
	}
	b.WriteString("colour \x1b[31mred\x1b]0;title\x07 tab\there\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	rec := e.do(idRoot, "GET", "/v1/sessions/alice/log?lines=5000", "")
	var tail wire.LogTail
	if err := jsonBody(rec, &tail); err != nil {
		t.Fatal(err)
	}
	if len(tail.Lines) != 5000 || !tail.Truncated {
		t.Fatalf("%d lines, truncated %v", len(tail.Lines), tail.Truncated)
	}
	last := tail.Lines[len(tail.Lines)-1]
	if strings.ContainsAny(last, "\x1b\x07") || !strings.Contains(last, "tab\there") || !strings.Contains(last, "red") {
		t.Errorf("last line %q", last)
	}
	for _, q := range []string{"lines=0", "lines=5001", "lines=x"} {
		if rec := e.do(idRoot, "GET", "/v1/sessions/alice/log?"+q, ""); rec.Code != 400 {
			t.Errorf("%s: %d", q, rec.Code)
		}
	}
	// An endless single line is bounded by bytes, not lines.
	if err := os.WriteFile(path, []byte(strings.Repeat("z", 3<<20)), 0o640); err != nil {
		t.Fatal(err)
	}
	rec = e.do(idRoot, "GET", "/v1/sessions/alice/log", "")
	if rec.Code != 200 || rec.Body.Len() > admin.MaxLogBytes+1024 {
		t.Fatalf("%d, %d bytes", rec.Code, rec.Body.Len())
	}
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	rec = e.do(idRoot, "GET", "/v1/sessions/alice/log", "")
	if !strings.Contains(rec.Body.String(), `"lines":[]`) {
		t.Errorf("empty log: %s", rec.Body)
	}
}

// TestRestartRateLimit uses a fake clock against admin.restart_min_interval.
func TestRestartRateLimit(t *testing.T) {
	e := newTestEnv(t)
	now := time.Now()
	e.freeze(now)
	r := e.restarts
	if rec := e.do(idMember, "POST", "/v1/restart", `{"reason":"kernel stuck"}`); rec.Code != http.StatusAccepted {
		t.Fatalf("first: %d %s", rec.Code, rec.Body)
	}
	now = now.Add(3 * time.Second)
	e.freeze(now)
	// The hub that restart started knows the restart from the audit log.
	e.srv.Reexeced()
	rec := e.do(idAdmin, "POST", "/v1/restart", "")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "7" {
		t.Fatalf("too soon: %d, Retry-After %q: %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	now = now.Add(7 * time.Second)
	e.freeze(now)
	if rec := e.do(idAdmin, "POST", "/v1/restart", ""); rec.Code != http.StatusAccepted {
		t.Fatalf("after the interval: %d %s", rec.Code, rec.Body)
	}
	if len(r.by) != 2 || r.by[0] != idMember.Name() || r.by[1] != idAdmin.Name() {
		t.Fatalf("restarts by %v", r.by)
	}
	ev := e.adminEvents(t)
	if len(ev) != 2 || !strings.Contains(ev[1].Detail, "kernel stuck") {
		t.Errorf("audit %+v", ev)
	}

	r.err = errors.New("re-exec failed: no such file")
	now = now.Add(time.Minute)
	e.freeze(now)
	if rec := e.do(idRoot, "POST", "/v1/restart", ""); rec.Code != 500 || !strings.Contains(rec.Body.String(), "re-exec failed") {
		t.Fatalf("failing restarter: %d %s", rec.Code, rec.Body)
	}
	// A restart that failed does not count against the interval.
	r.err = nil
	if rec := e.do(idRoot, "POST", "/v1/restart", ""); rec.Code != http.StatusAccepted {
		t.Fatalf("retry after a failed restart: %d %s", rec.Code, rec.Body)
	}
	e.srv.SetRestarter(nil)
	if rec := e.do(idRoot, "POST", "/v1/restart", ""); rec.Code != http.StatusNotImplemented || !strings.Contains(rec.Body.String(), "systemctl restart hubd") {
		t.Fatalf("no restarter: %d %s", rec.Code, rec.Body)
	}
}

func TestEventsPaging(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for i := range 250 {
		if err := e.store.AddEvent(ctx, store.Event{Actor: "t", ActorUID: i, Source: "test", Action: "n", Target: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	before := int64(0)
	for page := 0; ; page++ {
		path := "/v1/events?limit=100"
		if before > 0 {
			path += "&before=" + strconv.FormatInt(before, 10)
		}
		var got wire.Events
		if err := jsonBody(e.do(idRoot, "GET", path, ""), &got); err != nil {
			t.Fatal(err)
		}
		for _, ev := range got.Events {
			seen = append(seen, ev.Target)
		}
		if got.NextBefore == 0 {
			break
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
		before = got.NextBefore
	}
	if len(seen) != 250 || seen[0] != "249" || seen[249] != "0" {
		t.Fatalf("%d events, first %v last %v", len(seen), seen[0], seen[len(seen)-1])
	}
	for _, q := range []string{"limit=0", "limit=1001", "before=-1", "before=x"} {
		if rec := e.do(idRoot, "GET", "/v1/events?"+q, ""); rec.Code != 400 {
			t.Errorf("%s: %d", q, rec.Code)
		}
	}
}

func TestUpgradeNothingPending(t *testing.T) {
	e := newTestEnv(t)
	for _, method := range []string{"GET /v1/upgrade/plan", "POST /v1/upgrade/run"} {
		m, p, _ := strings.Cut(method, " ")
		var plan wire.UpgradePlan
		if err := jsonBody(e.do(idRoot, m, p, ""), &plan); err != nil {
			t.Fatal(err)
		}
		if plan.Pending || plan.From != upgrade.Latest() || plan.To != upgrade.Latest() || len(plan.Steps) != 0 || !strings.Contains(plan.Message, "nothing to do") {
			t.Errorf("%s: %+v", method, plan)
		}
	}
}

// A second backup (or a prune) waits for the one under way instead of
// failing or racing it, and says that it waits.
func TestBackupWaitsForTheOneUnderWay(t *testing.T) {
	e := newTestEnv(t)
	c := &client.Client{Socket: e.cfg.Admin.Socket}
	ctx := context.Background()
	e.srv.BackupSlot() <- struct{}{} // a backup under way
	waiting := make(chan struct{})
	var once sync.Once
	done := make(chan error, 2)
	go func() {
		_, err := c.CreateBackup(ctx, "second", func(p wire.Progress) {
			if strings.HasPrefix(p.Stage, "waiting") {
				once.Do(func() { close(waiting) })
			}
		})
		done <- err
	}()
	go func() {
		_, err := c.PruneBackups(ctx, wire.PruneRequest{})
		done <- err
	}()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("finished while another backup held the slot: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no waiting line while another backup held the slot")
	}
	// Status is not held up meanwhile.
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	<-e.srv.BackupSlot()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("after the first backup finished: %v", err)
		}
	}
	var actions []string
	for _, ev := range e.adminEvents(t) {
		actions = append(actions, ev.Action)
	}
	if !slices.Contains(actions, "backup.create") || !slices.Contains(actions, "backup.prune") {
		t.Errorf("audit log %v lacks the backup and the prune", actions)
	}
}
