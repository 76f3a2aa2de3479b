package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// TinyServer stands in for jupyterhub-singleuser in tests that re-execute
// their own binary as a server: it listens on the port of
// JUPYTERHUB_SERVICE_URL and answers every request with its path until
// SIGTERM. It returns the process exit code.
func TinyServer() int {
	u, err := url.Parse(os.Getenv("JUPYTERHUB_SERVICE_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "tiny server:", err)
		return 2
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tiny server:", err)
		return 1
	}
	fmt.Println("tiny server listening on", u.Host)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	})}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "tiny server:", err)
		return 1
	}
	return 0
}

// LogBuffer collects log lines written from several goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
