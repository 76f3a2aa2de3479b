package proxy

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

func TestLargeResponseIntact(t *testing.T) {
	payload := randomBytes(1 << 20)
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(payload)
	}))
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", b.URL)
	base := front(t, New(tab, Options{}))
	c := client(t)
	for range 3 {
		code, body := get(t, c, base+"/user/alice/files/blob")
		if code != http.StatusOK || body != string(payload) {
			t.Fatalf("status %d, %d bytes; want 200 and the 1 MiB payload intact", code, len(body))
		}
	}
}

// TestRequestBodyIsStreamed: the backend must see the first chunk while
// the client is still holding back the second, so nothing buffers the
// whole body (notebook saves and uploads can be large).
func TestRequestBodyIsStreamed(t *testing.T) {
	first, second := randomBytes(100<<10), randomBytes(3<<20)
	gotFirst := make(chan struct{})
	var sum [32]byte
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, len(first))
		if _, err := io.ReadFull(r.Body, buf); err != nil || !bytes.Equal(buf, first) {
			http.Error(w, "first chunk wrong", http.StatusBadRequest)
			return
		}
		close(gotFirst)
		h := sha256.New()
		h.Write(buf)
		io.Copy(h, r.Body)
		copy(sum[:], h.Sum(nil))
	}))
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", b.URL)
	base := front(t, New(tab, Options{}))

	pr, pw := io.Pipe()
	go func() {
		pw.Write(first)
		select {
		case <-gotFirst:
			pw.Write(second)
			pw.Close()
		case <-time.After(10 * time.Second):
			pw.CloseWithError(errNotStreamed)
		}
	}()
	req, _ := http.NewRequest("PUT", base+"/user/alice/api/contents/big.ipynb", pr)
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if want := sha256.Sum256(append(first, second...)); sum != want {
		t.Fatal("backend received a different body")
	}
}

var errNotStreamed = errors.New("backend did not see the first chunk before the body ended")

// TestResponseIsStreamed: a chunk the backend flushes reaches the client
// before the backend writes the rest.
func TestResponseIsStreamed(t *testing.T) {
	clientGotFirst := make(chan struct{})
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first\n"))
		http.NewResponseController(w).Flush()
		select {
		case <-clientGotFirst:
			w.Write([]byte("second\n"))
		case <-time.After(10 * time.Second):
		}
	}))
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", b.URL)
	base := front(t, New(tab, Options{}))

	res, err := client(t).Get(base + "/user/alice/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, len("first\n"))
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "first\n" {
		t.Fatalf("first chunk %q, %v", buf, err)
	}
	close(clientGotFirst)
	rest, err := io.ReadAll(res.Body)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

// TestUpstreamConnectionsAreReused counts the backend's connections after
// many requests: a pool of two would churn, ours keeps one per concurrent
// request.
func TestUpstreamConnectionsAreReused(t *testing.T) {
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", b.URL)
	base := front(t, New(tab, Options{}))
	c := client(t)

	for range 200 {
		if code, _ := get(t, c, base+"/user/alice/api/status"); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	if conns, reqs := b.counts(); conns > 1 || reqs != 200 {
		t.Errorf("sequential: %d connections for %d requests, want 1", conns, reqs)
	}

	const workers = 8
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range 100 {
				res, err := c.Get(base + "/user/alice/api/status")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	// The transport may dial a few more than there are workers (a dial can
	// start just before another connection returns to the pool); churn —
	// Go's default pool of 2 opens ~150 here — is what must not happen.
	if conns, reqs := b.counts(); conns > 2*workers || reqs != 200+workers*100 {
		t.Errorf("parallel: %d connections for %d requests, want at most %d", conns, reqs, 2*workers)
	}
}
