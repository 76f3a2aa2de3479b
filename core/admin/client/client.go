// Package client talks to a running hubd over its admin socket. hubtui and
// the hubd CLI subcommands use it; it needs no cgo and imports nothing of
// hubd but the wire types, the version (sent and compared on every call)
// and the ACL reader that names the groups a refused socket is open to.
//
// Errors are typed: *AccessDeniedError (the hub refused the caller),
// *NotRunningError (nobody listens on the socket), *SocketPermissionError
// (the kernel refused the connection) and *APIError (everything else the
// hub answered). Test them with errors.AsType.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/internal/acl"
	"github.com/hubd/hubd/internal/version"
)

// Client is a connection pool to the admin socket. The zero value talks
// to wire.DefaultSocket. A Client must not be copied after first use.
type Client struct {
	// Socket is the admin socket; wire.DefaultSocket when empty.
	Socket string
	// OnVersionMismatch, when set, is called once, the first time the hub
	// answers with a version other than this client's (after an upgrade
	// the running hub may be older or newer than the installed binary).
	OnVersionMismatch func(client, hub string)

	once       sync.Once
	hc         *http.Client
	mismatch   sync.Once
	hubVersion string
	mu         sync.Mutex
}

func (c *Client) socket() string {
	if c.Socket == "" {
		return wire.DefaultSocket
	}
	return c.Socket
}

func (c *Client) http() *http.Client {
	c.once.Do(func() {
		sock := c.socket()
		var d net.Dialer
		c.hc = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", sock)
			},
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		}}
	})
	return c.hc
}

// HubVersion is the version the hub reported in its last answer.
func (c *Client) HubVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hubVersion
}

// do sends one request. body, when not nil, is sent as JSON. A non-2xx
// answer becomes a typed error; the caller closes the body of a 2xx one.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := "http://" + wire.Host + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(wire.VersionHeader, version.Version)
	resp, err := c.http().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.dialError(err)
	}
	c.noteVersion(resp.Header.Get(wire.VersionHeader))
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, errorFrom(resp)
}

func (c *Client) noteVersion(v string) {
	if v == "" {
		return
	}
	c.mu.Lock()
	c.hubVersion = v
	c.mu.Unlock()
	if v != version.Version && c.OnVersionMismatch != nil {
		c.mismatch.Do(func() { c.OnVersionMismatch(version.Version, v) })
	}
}

// dialError explains a failed connection; anything that is not a dial
// problem passes through.
func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return &NotRunningError{Socket: c.socket(), Err: syscall.Errno(errnoOf(err))}
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return &SocketPermissionError{Socket: c.socket(), Groups: socketGroups(c.socket()), Err: err}
	}
	return fmt.Errorf("admin socket %s: %w", c.socket(), err)
}

func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return syscall.EIO
}

// socketGroups names the groups that may connect to the socket: the named
// groups of its ACL, else its owning group. Best effort: an error gives
// an empty list and the generic hint.
func socketGroups(path string) []string {
	var gids []uint32
	if entries, err := acl.Get(path); err == nil {
		gids = acl.NamedGroups(entries)
	}
	if len(gids) == 0 {
		var st syscall.Stat_t
		if syscall.Stat(path, &st) != nil {
			return nil
		}
		gids = []uint32{st.Gid}
	}
	var out []string
	for _, g := range gids {
		id := strconv.FormatUint(uint64(g), 10)
		if gr, err := user.LookupGroupId(id); err == nil {
			out = append(out, gr.Name)
		} else {
			out = append(out, "gid "+id)
		}
	}
	return out
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

func errorFrom(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e wire.Error
	msg := ""
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	} else {
		// Not our shape: net/http's own answers to malformed requests.
		msg = fmt.Sprintf("the hub answered %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if resp.StatusCode == http.StatusForbidden {
		return &AccessDeniedError{Message: msg}
	}
	ae := &APIError{Status: resp.StatusCode, Message: msg}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		ae.RetryAfter = time.Duration(s) * time.Second
	}
	return ae
}

// call sends a request and decodes a JSON answer into out (nil: ignore
// the answer).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read the hub's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// stream sends a request whose answer is NDJSON: progress is told about
// each progress line, and the final result line is decoded into out.
func (c *Client) stream(ctx context.Context, path string, body any, progress func(wire.Progress), out any) error {
	resp, err := c.do(ctx, http.MethodPost, path, nil, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var line wire.StreamLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("read the hub's progress for %s: %w", path, err)
		}
		switch {
		case line.Error != "":
			return &APIError{Status: http.StatusInternalServerError, Message: line.Error}
		case line.Result != nil:
			if err := json.Unmarshal(line.Result, out); err != nil {
				return fmt.Errorf("read the hub's result for %s: %w", path, err)
			}
			return nil
		case progress != nil:
			progress(line.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read the hub's progress for %s: %w", path, err)
	}
	return fmt.Errorf("the hub ended %s without a result: check the hub's log (journalctl -u hubd)", path)
}
