package proxy

import (
	"net"
	"net/http"
	"time"
)

// newTransport builds the upstream transport. Go's default keeps two idle
// connections per host, which under load churns sockets into TIME_WAIT
// (about 12k sockets after a minute at 200 clients); user servers are
// HTTP/1.1, so no HTTP/2 attempt.
func newTransport(o Options) *http.Transport {
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		// Proxy stays nil: HTTP_PROXY from the environment must never
		// capture loopback traffic to user servers.
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       o.IdleConnTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		// Pass Accept-Encoding and compressed bodies through untouched.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
		WriteBufferSize:    32 << 10,
		ReadBufferSize:     32 << 10,
	}
}

// bufferPool recycles the copy buffers ReverseProxy would otherwise
// allocate per response. A buffered channel rather than sync.Pool: the
// interface hands out bare slices, which sync.Pool would box on every Put.
type bufferPool chan []byte

const copyBufferSize = 32 << 10

func newBufferPool(n int) bufferPool { return make(bufferPool, n) }

func (p bufferPool) Get() []byte {
	select {
	case b := <-p:
		return b
	default:
		return make([]byte, copyBufferSize)
	}
}

func (p bufferPool) Put(b []byte) {
	select {
	case p <- b:
	default:
	}
}
