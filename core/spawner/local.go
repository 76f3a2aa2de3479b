package spawner

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// LocalOptions configures the local spawner.
type LocalOptions struct {
	Logger *slog.Logger
}

// Local runs every server as the hub's own uid, without sudo: for
// development and benchmarks only. It uses the helper's start and stop
// code in-process. One difference: the helper sets umask 0002 for the
// server, but umask is per process and setting it in the hub would race
// with the hub's own files, so local servers inherit the hub's umask.
type Local struct {
	log *slog.Logger

	mu sync.Mutex
	// children are the servers this hub process started and reaps, so
	// Poll and Watch can report their exit status. Servers re-attached
	// after a restart are not here; Poll and Stop use /proc for them.
	children map[int]*localChild
}

// localChild is a started server and its log, for the output of an exit.
type localChild struct {
	*started
	log *serverLog
}

var (
	_ Spawner   = (*Local)(nil)
	_ Watcher   = (*Local)(nil)
	_ Reclaimer = (*Local)(nil)
)

// NewLocal returns a local spawner.
func NewLocal(o LocalOptions) *Local {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Local{
		log:      o.Logger.With("component", "spawner", "kind", KindLocal),
		children: map[int]*localChild{},
	}
}

// Start implements Spawner.
func (l *Local) Start(_ context.Context, r Request) (State, error) {
	lg, err := beginStart(r, false)
	if err != nil {
		return State{}, err
	}
	defer lg.Close()
	acct, err := currentAccount()
	if err != nil {
		return State{}, startFailed(err)
	}
	lc, err := prepare(startRequest(r), acct)
	if err != nil {
		return State{}, startFailed(err)
	}
	s, err := startServer(lc, lg.f)
	if err != nil {
		return State{}, &StartError{Reason: err.Error(), Output: lg.tail(), Err: err}
	}
	l.mu.Lock()
	l.children[s.pid] = &localChild{started: s, log: lg}
	l.mu.Unlock()
	l.log.Debug("server started", "user", r.User, "server", r.Server, "pid", s.pid, "port", r.Port)
	return State{Kind: KindLocal, Host: r.listenHost(), Port: r.Port, PID: s.pid, PIDStart: s.pidStart}, nil
}

// Watch implements Watcher for the servers this process started.
func (l *Local) Watch(st State) (<-chan Status, func()) {
	c := l.child(st)
	if c == nil {
		return nil, func() {}
	}
	exited, stop := make(chan Status, 1), make(chan struct{})
	go func() {
		select {
		case <-c.done:
			exited <- c.exitStatus(c.log.tail())
		case <-stop:
		}
	}()
	var once sync.Once
	return exited, func() { once.Do(func() { close(stop) }) }
}

// Stop implements Spawner.
func (l *Local) Stop(ctx context.Context, _ string, st State, timeout time.Duration) error {
	if st.Kind != KindLocal {
		return fmt.Errorf("server state of kind %q given to the local spawner", st.Kind)
	}
	if timeout <= 0 {
		timeout = defaultStopTimeout
	}
	res, err := terminate(ctx, st.PID, st.PIDStart, os.Getuid(), timeout)
	if err != nil {
		return fmt.Errorf("stop pid %d: %w", st.PID, err)
	}
	if c := l.child(st); c != nil {
		// terminate counts a zombie as gone; wait for our reaper so the
		// entry can go and no zombie outlives Stop.
		<-c.done
		l.forget(st.PID)
	}
	l.log.Debug("server stopped", "pid", st.PID, "signalled", res.signalled, "note", res.note)
	return nil
}

// Poll implements Spawner.
func (l *Local) Poll(_ context.Context, _ string, st State) (Status, error) {
	if st.Kind != KindLocal {
		return Status{}, fmt.Errorf("server state of kind %q given to the local spawner", st.Kind)
	}
	if c := l.child(st); c != nil {
		select {
		case <-c.done:
		default:
			// A zombie our reaper has not reached yet has exited too.
			if ps, err := pollProc(st, os.Getuid()); err != nil || ps.Running {
				return Status{Running: true, ExitCode: -1}, nil
			}
			<-c.done
		}
		l.forget(st.PID)
		return c.exitStatus(""), nil
	}
	return pollProc(st, os.Getuid())
}

// child returns the reaped-by-us process for st, if it is one.
func (l *Local) child(st State) *localChild {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.children[st.PID]; c != nil && c.pidStart == st.PIDStart {
		return c
	}
	return nil
}

func (l *Local) forget(pid int) {
	l.mu.Lock()
	delete(l.children, pid)
	l.mu.Unlock()
}

// Reclaim implements Reclaimer: the hub's own processes whose environment
// names the server.
func (l *Local) Reclaim(ctx context.Context, o Orphan, timeout time.Duration) (int, error) {
	n, err := reclaim(ctx, os.Getuid(), o.Env, cmp.Or(timeout, defaultStopTimeout))
	if n > 0 {
		l.log.Info("stopped a server the hub had not recorded", "user", o.User, "server", o.Server, "count", n)
	}
	return n, err
}
