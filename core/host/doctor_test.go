package host

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
)

// A port nobody listens on is free, one answering /hub/api with
// X-JupyterHub-Version is the hub, anything else is a conflict named after
// the process holding it.
func TestCheckPort(t *testing.T) {
	o := Options{Config: config.Default(), ConfigPath: "/etc/hubd/hubd.toml", Run: ExecRunner{}}
	ctx := context.Background()

	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hub/api" {
			w.Header().Set("X-JupyterHub-Version", "3.0.0")
		}
	}))
	defer hub.Close()
	if f := o.checkPort(ctx, "hub.listen", hub.Listener.Addr().String(), time.Second); f.Level != OK || !strings.Contains(f.Message, "hub") {
		t.Errorf("hub: %+v", f)
	}

	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	f := o.checkPort(ctx, "hub.listen", other.Listener.Addr().String(), time.Second)
	if f.Level != Fail || !strings.Contains(f.Fix, "set hub.listen to a free port in /etc/hubd/hubd.toml") {
		t.Errorf("other program: %+v", f)
	}
	// ss names our own process when it may read its sockets (always as root).
	if os.Geteuid() == 0 && !strings.Contains(f.Message, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("conflict does not name this process (pid %d): %s", os.Getpid(), f.Message)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := l.Addr().String()
	l.Close()
	if f := o.checkPort(ctx, "hub.internal_listen", free, time.Second); f.Level != OK || f.Message != "free" {
		t.Errorf("free port: %+v", f)
	}
}
