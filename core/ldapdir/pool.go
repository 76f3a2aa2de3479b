package ldapdir

import (
	"context"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// maxIdle is how long an unused connection is kept: directories close
// idle clients on their own (Active Directory after 15 minutes, others
// when they restart), and a connection that old is more likely dead
// than worth the handshake it saves.
const maxIdle = time.Minute

// pool bounds the connections to the directory and keeps the idle ones
// for the next login, saving a TCP and TLS handshake each. A connection
// is either in use (holding a slot) or idle; one is dialled only when no
// idle one is left, so at most cap(slots) are ever open.
type pool struct {
	dialer Dialer
	slots  chan struct{}
	idle   chan *conn
	now    func() time.Time
}

// conn is a pooled connection and whom it is bound as.
type conn struct {
	*ldap.Conn
	// service: bound as the service account, ready for a search.
	service bool
	// reused: taken from the idle set, so possibly closed by the server
	// since; a network error on it is worth one retry on a fresh one.
	reused   bool
	lastUsed time.Time
}

func newPool(d Dialer, size int) *pool {
	return &pool{dialer: d, slots: make(chan struct{}, size), idle: make(chan *conn, size), now: time.Now}
}

// get waits for a slot, then returns an idle connection or a new one.
func (p *pool) get(ctx context.Context) (*conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		select {
		case c := <-p.idle:
			if c.IsClosing() || p.now().Sub(c.lastUsed) > maxIdle {
				c.Close()
				continue
			}
			c.reused = true
			return c, nil
		default:
		}
		c, err := p.dialer.Dial(ctx)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return &conn{Conn: c}, nil
	}
}

// put gives c back: kept for the next login when it is still good,
// closed otherwise.
func (p *pool) put(c *conn, good bool) {
	if good && !c.IsClosing() {
		c.lastUsed, c.reused = p.now(), false
		p.idle <- c // never blocks: at most cap(slots) connections exist
	} else {
		c.Close()
	}
	<-p.slots
}

// close closes the idle connections; ones in use are closed as they come back.
func (p *pool) close() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}
