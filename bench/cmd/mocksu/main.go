// Command mocksu is the benchmarks' stand-in for a single-user server
// (hubd's equivalent of jupyterhub.tests.mocksu). It answers every path:
// a websocket upgrade is echoed message by message, a path ending in
// /large gets 1 MiB, anything else 3 bytes. It is both the spawn
// benchmark's server (hubd's spawner.command; the port comes from
// JUPYTERHUB_SERVICE_URL) and the proxy benchmarks' shared backend
// (--port).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (default: the port of $JUPYTERHUB_SERVICE_URL)")
	flag.Parse()
	if err := run(*port); err != nil {
		fmt.Fprintln(os.Stderr, "mocksu:", err)
		os.Exit(1)
	}
}

func run(port int) error {
	if port == 0 {
		u, err := url.Parse(os.Getenv("JUPYTERHUB_SERVICE_URL"))
		if err != nil {
			return fmt.Errorf("JUPYTERHUB_SERVICE_URL: %w", err)
		}
		if port, err = strconv.Atoi(u.Port()); err != nil {
			return fmt.Errorf("no port in JUPYTERHUB_SERVICE_URL %q and no --port", os.Getenv("JUPYTERHUB_SERVICE_URL"))
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	large := make([]byte, 1<<20)
	for i := range large {
		large[i] = 'x'
	}
	small := []byte("ok\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			echo(w, r)
		case strings.HasSuffix(r.URL.Path, "/large"):
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(large)
		default:
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(small)
		}
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		// Close, not Shutdown: hijacked websockets would hold Shutdown up.
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// echo sends every message back, of the same type, until the peer closes.
func echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	// The throughput test sends 64 KiB messages; the default 32 KiB limit
	// would close the connection.
	c.SetReadLimit(1 << 20)
	ctx := r.Context()
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, b); err != nil {
			return
		}
	}
}
