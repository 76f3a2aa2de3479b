package daemon

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary serve HTTP on an inherited listener.
const childEnv = "HUBD_DAEMON_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

func child() int {
	ls, err := LoadListeners()
	if err != nil {
		return 3
	}
	if os.Getenv(inheritEnv) != "" {
		return 4 // must not leak to our own children
	}
	ln, err := ls.Listen("public", "127.0.0.1:1") // port 1: proves the inherited one is used
	if err != nil {
		return 5
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, ls.Sources["public"])
	})}
	_ = srv.Serve(ln)
	return 0
}

func TestNotifyWithAndWithoutSystemd(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("NOTIFY_SOCKET", "")
	NewNotifier(log).Ready("no systemd") // must not block or fail

	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	n := NewNotifier(log)
	n.Ready("3 users")
	n.Reloading()
	n.Stopping()
	var got []string
	buf := make([]byte, 512)
	for i := 0; i < 3; i++ {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(buf[:k]))
	}
	if got[0] != "READY=1\nSTATUS=3 users" || !strings.HasPrefix(got[1], "RELOADING=1\nMONOTONIC_USEC=") || got[2] != "STOPPING=1" {
		t.Errorf("datagrams = %q", got)
	}
}

func TestListenerHandedToAnotherProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h, err := PrepareHandover(map[string]net.Listener{"public": ln})
	if err != nil {
		t.Fatal(err)
	}
	// The original closes, as the old hub's server does on shutdown; the
	// duplicate keeps the port bound and queueing.
	addr := ln.Addr().String()
	ln.Close()
	f := h.files["public"]
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", inheritEnv+"=public:3")
	cmd.ExtraFiles = []*os.File{f} // fd 3 in the child
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	h.Abort()
	resp, err := http.Get("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "inherited") {
		t.Errorf("child served with a %q listener; want the inherited one", body)
	}
}

func TestLogHandlerKeepsTimeOffTheJournalOnly(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	var b strings.Builder
	slog.New(LogHandler(&b, slog.LevelInfo)).Info("hello")
	if !strings.Contains(b.String(), "time=") {
		t.Errorf("plain stderr lost its timestamps: %q", b.String())
	}
}
