package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/hubd/hubd/core/spawner"
)

// ErrNotPlacing means an address report came for a server that is not
// waiting for one (it runs already, or its start ended).
var ErrNotPlacing = errors.New("the server is not waiting to report its address: it is not starting")

// AddressError is a report the spawner refused (the address is not the
// job's node).
type AddressError struct{ Err error }

func (e *AddressError) Error() string { return "address refused: " + e.Err.Error() }

func (e *AddressError) Unwrap() error { return e.Err }

// placement is a start waiting for its server's address report; done
// closes when the start stops listening for reports.
type placement struct {
	reports chan spawner.AddressReport
	done    chan struct{}
}

// expectReport opens the way for a starting server's address report.
func (h *Hub) expectReport(user, server string) *placement {
	p := &placement{reports: make(chan spawner.AddressReport), done: make(chan struct{})}
	h.mu.Lock()
	h.placing[opKey(user, server)] = p
	h.mu.Unlock()
	return p
}

// forgetReport closes the way again; reports on their way get
// ErrNotPlacing.
func (h *Hub) forgetReport(user, server string, p *placement) {
	h.mu.Lock()
	if h.placing[opKey(user, server)] == p {
		delete(h.placing, opKey(user, server))
	}
	h.mu.Unlock()
	close(p.done)
}

// ReportAddress hands a starting server's report of where it listens to
// its spawner, which checks it (a Slurm job must name its own node), and
// returns the verdict. The caller has checked that the report comes with
// that server's own token.
func (h *Hub) ReportAddress(ctx context.Context, user, server, host string, port int) error {
	h.mu.Lock()
	p := h.placing[opKey(user, server)]
	h.mu.Unlock()
	if p == nil {
		return ErrNotPlacing
	}
	reply := make(chan error, 1)
	select {
	case p.reports <- spawner.AddressReport{Host: host, Port: port, Reply: reply}:
	case <-p.done:
		return ErrNotPlacing
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		if err != nil {
			return &AddressError{Err: err}
		}
		h.log.Info("server reported its address", "user", user, "server", server, "host", host, "port", port)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the spawner to check the address: %w", ctx.Err())
	}
}
