// Package hub runs user servers: it starts them through a spawner, waits
// until they answer HTTP, publishes their routes, stops them, re-attaches
// to them after a hub restart and notices when they die. The database is
// the source of truth; the route table is derived from it.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/metrics"
	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/sharedenv"
	"github.com/hubd/hubd/core/shares"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
)

// Errors the API maps to JupyterHub's answers.
var (
	ErrAlreadyRunning = errors.New("server is already running")
	ErrPendingStop    = errors.New("server is being stopped; try again in a moment")
	ErrNamedServers   = errors.New("named servers are not enabled")
)

// NamedLimitError means a user already has as many named servers as
// spawner.named_server_limit_per_user allows.
type NamedLimitError struct {
	User  string
	Limit int
}

func (e *NamedLimitError) Error() string {
	return fmt.Sprintf("User %s already has the maximum of %d named servers.  One must be deleted before a new server can be created", e.User, e.Limit)
}

// serverNameRE is what a named server may be called: it becomes a URL
// path segment, a unit and log file name part and an OAuth client id.
var serverNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckServerName says what is wrong with a named server's name, or nil.
func CheckServerName(name string) error {
	if !serverNameRE.MatchString(name) {
		return fmt.Errorf("invalid server name %q: use 1 to 63 letters, digits, '.', '_' and '-', starting with a letter or digit", truncateName(name))
	}
	return nil
}

func truncateName(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// TooManyError means the concurrent spawn limit is reached.
type TooManyError struct{ RetryAfter time.Duration }

func (e *TooManyError) Error() string {
	return fmt.Sprintf("too many servers are starting; try again in %d seconds", int(e.RetryAfter.Seconds()))
}

// Options build a Hub. Every dependency is explicit.
type Options struct {
	Config   config.Config
	Store    *store.Store
	Spawners map[string]spawner.Spawner // by kind; Config.Spawner.Kind starts new servers
	Routes   *proxy.Table
	// GPUPool is the GPUs profiles hand out (GPUPool finds them); empty
	// when no profile asks for GPUs.
	GPUPool []store.GPU
	Logger  *slog.Logger
	Now     func() time.Time
	// Metrics records spawn and stop durations; nil records nothing.
	Metrics *metrics.Metrics
}

// Hub manages user servers.
type Hub struct {
	cfg      config.Config
	store    *store.Store
	spawners map[string]spawner.Spawner
	routes   *proxy.Table
	log      *slog.Logger
	now      func() time.Time
	probe    *http.Client
	metrics  *metrics.Metrics
	shares   *shares.Manager

	gpuPool       []store.GPU
	sharedDevices []string // of gpu_shared_devices, those that exist
	linuxGroups   func(user string) ([]string, error)

	mu       sync.Mutex
	ops      map[string]*Op // "user/server" → in-flight start or stop
	starting int
	// placing holds the address reports of starts waiting for their
	// server to say where it listens (a Slurm job), by "user/server".
	placing map[string]*placement
	bg      sync.WaitGroup
}

// New builds a Hub.
func New(o Options) *Hub {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Hub{
		cfg: o.Config, store: o.Store, spawners: o.Spawners, routes: o.Routes,
		log: o.Logger.With("component", "hub"), now: o.Now, metrics: o.Metrics,
		// Readiness probes must not follow the server's redirects (a 302
		// to /tree already means "up") and never reuse connections to a
		// server that may be restarting.
		probe: &http.Client{
			Timeout:       5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{DisableKeepAlives: true},
		},
		gpuPool: o.GPUPool, sharedDevices: existing(o.Config.Spawner.GPUSharedDevices), linuxGroups: linuxGroupsOf,
		ops: map[string]*Op{}, placing: map[string]*placement{},
		shares: shares.New(shares.OptionsFromConfig(o.Config, o.Logger)),
	}
}

// Spawner is the spawner of a kind, nil when the hub runs none of it.
func (h *Hub) Spawner(kind string) spawner.Spawner { return h.spawners[kind] }

func opKey(user, server string) string { return user + "/" + server }

// Pending returns the in-flight start or stop of a server, if any.
func (h *Hub) Pending(user, server string) *Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ops[opKey(user, server)]
}

// Start begins starting a user's server with no options.
func (h *Hub) Start(ctx context.Context, u store.User, server string) (*Op, error) {
	return h.StartWith(ctx, u, server, "")
}

// StartWith begins starting a user's server ("" = the default one) with
// the options a form or the API gave (a JSON object; "" for none, see
// ParseOptions) and returns the op to follow. It returns the pending op
// when a start is already under way. The profile it starts with (the one
// named, or the user's default) is kept as the server's user_options.
func (h *Hub) StartWith(ctx context.Context, u store.User, server, options string) (*Op, error) {
	if server != "" {
		if err := h.checkNamed(ctx, u, server); err != nil {
			return nil, err
		}
	}
	name, err := ParseOptions(options)
	if err != nil {
		return nil, err
	}
	profile, err := h.resolveProfile(ctx, u, name)
	if err != nil {
		return nil, err
	}
	options = "{}"
	if profile.Name != "" {
		b, _ := json.Marshal(map[string]string{"profile": profile.Name})
		options = string(b)
	}
	kind := h.kindOf(profile)
	if h.spawners[kind] == nil {
		return nil, fmt.Errorf("profile %s uses the %q spawner, which this hub does not run", profile.Name, kind)
	}
	key := opKey(u.Name, server)
	h.mu.Lock()
	if op := h.ops[key]; op != nil {
		h.mu.Unlock()
		if op.Kind == "stop" {
			return nil, ErrPendingStop
		}
		h.metrics.Spawn(metrics.SpawnPending, 0)
		return op, nil
	}
	if limit := h.cfg.Spawner.ConcurrentSpawnLimit; limit > 0 && h.starting >= limit {
		h.mu.Unlock()
		h.metrics.Spawn(metrics.SpawnThrottled, 0)
		// Spread retries over a window about a spawn long, as JupyterHub does.
		return nil, &TooManyError{RetryAfter: time.Duration(5+rand.IntN(10)) * time.Second}
	}
	// Reserve the slot before leaving the lock so two requests cannot both
	// pass the limit check.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	op := newOp("start", cancel)
	h.ops[key] = op
	h.starting++
	h.mu.Unlock()

	release := func() {
		h.mu.Lock()
		delete(h.ops, key)
		h.starting--
		h.mu.Unlock()
	}
	srv, token, err := h.beginStart(ctx, u, server, options, kind)
	if err != nil {
		release()
		cancel()
		return nil, err
	}
	op.add(Event{Progress: 0, Message: "Server requested"})
	requested := h.now()
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		defer cancel()
		err := h.runStart(runCtx, op, u, srv, token, profile)
		release()
		status := metrics.SpawnSuccess
		if err != nil {
			status = metrics.SpawnFailure
		}
		h.metrics.Spawn(status, h.now().Sub(requested))
		op.finish(err)
	}()
	return op, nil
}

// checkNamed refuses a named server when they are off, when its name is
// invalid, or when it would be one more than the user may have.
func (h *Hub) checkNamed(ctx context.Context, u store.User, server string) error {
	if !h.cfg.Spawner.NamedServers {
		return ErrNamedServers
	}
	if err := CheckServerName(server); err != nil {
		return err
	}
	limit := h.cfg.Spawner.NamedServerLimitPerUser
	if limit <= 0 {
		return nil
	}
	have, err := h.store.NamedServers(ctx, u.ID)
	if err != nil {
		return err
	}
	if !slices.Contains(have, server) && len(have) >= limit {
		return &NamedLimitError{User: u.Name, Limit: limit}
	}
	return nil
}

func (h *Hub) beginStart(ctx context.Context, u store.User, server, options, kind string) (store.Server, string, error) {
	// A server placed by its spawner picks its own address where it
	// lands; the others listen where the hub says, on this machine.
	host, port := "", 0
	if _, placed := h.spawners[kind].(spawner.Placer); !placed {
		var err error
		if port, err = spawner.FreePort(); err != nil {
			return store.Server{}, "", fmt.Errorf("find a free port: %w", err)
		}
		host = spawner.DefaultHost
	}
	token := store.RandomID(16)
	scopes, _ := json.Marshal(ServerTokenScopes(u.Name))
	srv, err := h.store.BeginStart(ctx, store.ServerStart{
		UserID: u.ID, UserName: u.Name, Name: server, Spawner: kind, Host: host, Port: port,
		TokenHash: store.HashToken(token), TokenPrefix: token[:4], TokenScopes: string(scopes),
		ClientID:    store.OAuthClientID(u.Name, server),
		RedirectURI: ServerPrefix(h.cfg.Hub.BaseURL, u.Name, server) + "oauth_callback",
		Note:        "Server at " + ServerPrefix(h.cfg.Hub.BaseURL, u.Name, server),
		UserOptions: options,
	})
	if errors.Is(err, store.ErrConflict) {
		return store.Server{}, "", ErrAlreadyRunning
	}
	return srv, token, err
}

// StateOf reads a server's spawner state; states recorded before they
// carried an address get the row's.
func StateOf(srv store.Server) spawner.State {
	var st spawner.State
	_ = json.Unmarshal([]byte(srv.SpawnerState), &st)
	if st.Port == 0 {
		st.Host, st.Port = srv.IP, srv.Port
	}
	return st
}

// ServerTokenScopes are the scopes of a server's own API token (the
// JupyterHub "server" role).
func ServerTokenScopes(user string) []string {
	return []string{"users:activity!user=" + user, "access:servers!user=" + user}
}

// serverPath is the servers' PATH: the shared environment's bin first, so
// members' notebooks and terminals find its python, pip and jupyter.
func (h *Hub) serverPath() string {
	if !h.cfg.SharedEnv.Enabled {
		return h.cfg.Spawner.Path
	}
	return sharedenv.New(sharedenv.OptionsFromConfig(h.cfg, h.log)).PathPrefix() + ":" + h.cfg.Spawner.Path
}

func (h *Hub) logPath(user, server string) string { return LogPath(h.cfg.Data.LogDir, user, server) }

// LogPath is the log file of a user's server in logDir: <user>.log, or
// <user>-<server>.log for a named one.
func LogPath(logDir, user, server string) string {
	name := user
	if server != "" {
		name += "-" + server
	}
	return filepath.Join(logDir, name+".log")
}

// runStart hands out the profile's GPUs, starts the server, learns where
// it listens (from a Placer), waits for HTTP readiness and publishes the
// route. Any failure stops what was started and records why.
func (h *Hub) runStart(ctx context.Context, op *Op, u store.User, srv store.Server, token string, profile config.Profile) error {
	log := h.log.With("user", u.Name, "server", srv.Name, "profile", profile.Name)
	started := h.now()
	sp := h.spawners[srv.Spawner]
	// Shares are looked up at each start: a member removed from one does
	// not get it again.
	var memberOf []spawner.Share
	if u.Account != store.AccountDynamic { // no account, no groups
		var err error
		if memberOf, err = h.shares.Of(u.Name); err != nil {
			log.Warn("cannot list the user's shares; starting without them", "err", err)
		}
	}
	// The start timeout covers everything up to a known address: waiting
	// for GPUs, the start itself, a batch job's time in the queue.
	startCtx, cancel := context.WithTimeout(ctx, h.cfg.Spawner.StartTimeout.D())
	defer cancel()
	gpus, err := h.takeGPUs(startCtx, op, srv, profile.GPUs)
	if err != nil {
		return h.failStart(op, srv, log, spawner.State{}, err)
	}
	if len(gpus) > 0 {
		op.add(Event{Progress: 10, Message: "GPU " + cudaDevices(gpus) + " assigned"})
	}
	req := spawner.Request{
		User: u.Name, Server: srv.Name,
		Command: h.cfg.Spawner.Command, Args: h.cfg.Spawner.Args,
		Env:        h.serverEnv(u.Name, srv, token, gpus),
		WorkingDir: h.cfg.Spawner.WorkingDir, Path: h.serverPath(),
		Host: srv.IP, Port: srv.Port, LogPath: h.logPath(u.Name, srv.Name), Shares: memberOf,
		Dynamic:   u.Account == store.AccountDynamic,
		Resources: h.resources(profile, gpus),
	}
	placer, placed := sp.(spawner.Placer)
	var place *placement
	if placed {
		// Open before the start: a fast job may report at once.
		place = h.expectReport(u.Name, srv.Name)
		defer func() {
			if place != nil {
				h.forgetReport(u.Name, srv.Name, place)
			}
		}()
	}
	state, err := sp.Start(startCtx, req)
	timedOut := startCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	if err != nil && timedOut {
		return h.failStart(op, srv, log, state, fmt.Errorf("the server did not start within spawner.start_timeout (%s)%s: %w",
			h.cfg.Spawner.StartTimeout.D(), h.logHint(u.Name, srv.Name), err))
	}
	if err != nil {
		return h.failStart(op, srv, log, state, fmt.Errorf("the server could not start: %w", err))
	}
	if state.Port == 0 && !placed {
		state.Port = srv.Port
	}
	for _, g := range gpus {
		state.GPUs = append(state.GPUs, g.Index)
	}
	if err := h.recordState(ctx, srv, state); err != nil {
		return h.failStart(op, srv, log, state, fmt.Errorf("record the server: %w", err))
	}
	if placed {
		op.add(Event{Progress: 20, Message: "Submitted"})
		progress := func(msg string) { op.add(Event{Progress: 30, Message: msg}) }
		placedState, err := placer.Place(startCtx, u.Name, state, place.reports, progress)
		h.forgetReport(u.Name, srv.Name, place)
		place = nil
		if err != nil {
			return h.failStart(op, srv, log, state, fmt.Errorf("the server could not start: %w", err))
		}
		state = placedState
		if err := h.recordState(ctx, srv, state); err != nil {
			return h.failStart(op, srv, log, state, fmt.Errorf("record the server: %w", err))
		}
	}
	cancel()
	op.add(Event{Progress: 50, Message: "Server process started, waiting for it to answer"})

	prefix := ServerPrefix(h.cfg.Hub.BaseURL, u.Name, srv.Name)
	version, err := h.waitReady(ctx, sp, u.Name, srv.Name, state, prefix)
	if err != nil {
		return h.failStart(op, srv, log, state, err)
	}
	if err := h.routes.Set(proxy.Route{Prefix: prefix, Target: "http://" + state.Addr(), User: u.Name, Server: srv.Name}); err != nil {
		return h.failStart(op, srv, log, state, fmt.Errorf("add route: %w", err))
	}
	if err := h.store.SetRunning(ctx, srv.ID, version); err != nil {
		h.routes.Delete(prefix)
		return h.failStart(op, srv, log, state, fmt.Errorf("record the server as running: %w", err))
	}
	took := h.now().Sub(started)
	log.Info("server ready", "url", prefix, "took", took.Round(time.Millisecond), "addr", state.Addr(), "pid", state.PID, "unit", state.Unit,
		"container", state.Container, "job", state.JobID)
	h.audit(context.WithoutCancel(ctx), u.Name, "server.start", auditTarget(u.Name, srv.Name), fmt.Sprintf("ready in %s", took.Round(time.Millisecond)))
	op.add(Event{Progress: 100, Ready: true, Message: "Server ready at " + prefix, URL: prefix})
	return nil
}

// recordState stores a server's spawner state and address.
func (h *Hub) recordState(ctx context.Context, srv store.Server, state spawner.State) error {
	stateJSON, _ := json.Marshal(state)
	return h.store.SetSpawned(ctx, srv.ID, string(stateJSON), state.Host, state.Port)
}

// failStart stops whatever was started, marks the server failed with the
// reason and tells the progress stream at once.
func (h *Hub) failStart(op *Op, srv store.Server, log *slog.Logger, state spawner.State, cause error) error {
	ctx := context.Background()
	if state.Started() {
		if err := h.spawners[state.Kind].Stop(ctx, srv.User, state, h.cfg.Spawner.StopTimeout.D()); err != nil {
			log.Warn("stop after failed start", "err", err)
		}
	}
	final, reason := store.StateFailed, cause.Error()
	if errors.Is(cause, context.Canceled) {
		// Only Stop cancels a start: the server was asked to stop, it did
		// not fail.
		final, reason = store.StateStopped, "stopped while starting"
	}
	if err := h.store.SetStopped(ctx, srv.ID, final, reason, "hub"); err != nil {
		log.Error("record failed start", "err", err)
	}
	log.Warn("server failed to start", "err", cause)
	h.audit(ctx, srv.User, "server.start-failed", srv.User, reason)
	op.add(Event{Progress: 100, Failed: true, Message: "Spawn failed: " + reason})
	return cause
}

// waitReady polls the server's prefix until it answers below 500. A
// server that exits meanwhile ends the wait at once with its status: the
// moment it happens for a spawner that watches its servers, and otherwise
// at the next check between attempts.
func (h *Hub) waitReady(ctx context.Context, sp spawner.Spawner, user, server string, state spawner.State, prefix string) (string, error) {
	budget := h.cfg.Spawner.HTTPTimeout.D()
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var exited <-chan spawner.Status
	if w, ok := sp.(spawner.Watcher); ok {
		var stop func()
		exited, stop = w.Watch(state)
		defer stop()
	}
	gone := func(st spawner.Status) error {
		return fmt.Errorf("the server exited before it answered: %s%s", st.Error(), h.logHint(user, server))
	}
	version, err := h.probeUntil(ctx, state.Addr(), prefix, exited, func() error {
		if exited != nil {
			return nil // the watch reports an exit as it happens
		}
		st, err := sp.Poll(ctx, user, state)
		if err == nil && !st.Running {
			return gone(st)
		}
		return nil
	})
	if st, ok := errors.AsType[exitedError](err); ok {
		return "", gone(spawner.Status(st))
	}
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return "", fmt.Errorf("the server did not answer at %s within %s%s", prefix, budget, h.logHint(user, server))
	}
	return version, err
}

// exitedError is a watched server's exit that ended probeUntil.
type exitedError spawner.Status

func (e exitedError) Error() string { return spawner.Status(e).Error() }

// probeUntil asks the server at addr for its prefix until it answers below
// 500, ctx ends, or exited yields. Between attempts, alive (when set) may
// end the wait early.
func (h *Hub) probeUntil(ctx context.Context, addr, prefix string, exited <-chan spawner.Status, alive func() error) (string, error) {
	url := "http://" + addr + prefix
	wait := 10 * time.Millisecond
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := h.probe.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return resp.Header.Get("X-JupyterHub-Version"), nil
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		if alive != nil {
			if aerr := alive(); aerr != nil {
				return "", aerr
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		case st := <-exited:
			return "", exitedError(st)
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
	}
}

func (h *Hub) logHint(user, server string) string {
	return fmt.Sprintf(" (its log is %s)", h.logPath(user, server))
}

// Stop stops a user's server and records who stopped it and why. A server
// that is not running is not an error. A pending start is cancelled first.
func (h *Hub) Stop(ctx context.Context, u store.User, server, reason, by string) error {
	key := opKey(u.Name, server)
	for {
		h.mu.Lock()
		op := h.ops[key]
		if op == nil {
			op = newOp("stop", func() {})
			h.ops[key] = op
			h.mu.Unlock()
			err := h.stop(ctx, u, server, reason, by)
			h.mu.Lock()
			delete(h.ops, key)
			h.mu.Unlock()
			op.finish(err)
			return err
		}
		h.mu.Unlock()
		if op.Kind == "start" {
			op.cancel()
		}
		if err := op.Wait(ctx); ctx.Err() != nil {
			return err
		}
	}
}

// StopUser stops every active server of a user (before the user is
// deleted).
func (h *Hub) StopUser(ctx context.Context, u store.User, reason, by string) error {
	servers, err := h.store.ServersOf(ctx, []int64{u.ID})
	if err != nil {
		return err
	}
	var errs []error
	for _, srv := range servers[u.ID] {
		if srv.Active() {
			errs = append(errs, h.Stop(ctx, u, srv.Name, reason, by))
		}
	}
	return errors.Join(errs...)
}

func (h *Hub) stop(ctx context.Context, u store.User, server, reason, by string) error {
	srv, err := h.store.Server(ctx, u.ID, server)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !srv.Active() {
		return nil
	}
	if err := h.store.SetStopping(ctx, srv.ID); errors.Is(err, store.ErrNotFound) {
		return nil // it ended meanwhile, and the poller recorded why
	} else if err != nil {
		return err
	}
	h.routes.Delete(ServerPrefix(h.cfg.Hub.BaseURL, u.Name, server))
	state := StateOf(srv)
	if sp := h.spawners[state.Kind]; sp != nil && state.Started() {
		began := h.now()
		err := sp.Stop(ctx, u.Name, state, h.cfg.Spawner.StopTimeout.D())
		h.metrics.Stop(err == nil, h.now().Sub(began))
		if err != nil {
			return fmt.Errorf("stop %s's server: %w", u.Name, err)
		}
	}
	if err := h.store.SetStopped(context.WithoutCancel(ctx), srv.ID, store.StateStopped, reason, by); err != nil {
		return err
	}
	h.log.Info("server stopped", "user", u.Name, "server", server, "reason", reason, "by", by)
	h.audit(context.WithoutCancel(ctx), by, "server.stop", auditTarget(u.Name, server), reason)
	return nil
}

// stopAllParallel bounds StopAll: each stop may wait up to
// spawner.stop_timeout for a server to exit.
const stopAllParallel = 8

// StopAll stops every active server, as for good (uninstalling hubd): each
// is asked to exit and killed only after spawner.stop_timeout, and
// recorded as stopped with reason and by. It returns the users whose
// servers it stopped and every failure, after trying them all.
func (h *Hub) StopAll(ctx context.Context, reason, by string) ([]string, error) {
	servers, err := h.store.ActiveServers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the servers to stop: %w", err)
	}
	var (
		mu      sync.Mutex
		stopped []string
		errs    []error
		g       errgroup.Group
	)
	g.SetLimit(stopAllParallel)
	for _, srv := range servers {
		g.Go(func() error {
			err := h.Stop(ctx, store.User{ID: srv.UserID, Name: srv.User}, srv.Name, reason, by)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				stopped = append(stopped, srv.User)
			}
			return nil // every server is tried; the failures are joined below
		})
	}
	_ = g.Wait()
	slices.Sort(stopped)
	// A user with named servers is named once.
	return slices.Compact(stopped), errors.Join(errs...)
}

// auditTarget names a server in the audit log: the user, or user/server
// for a named one.
func auditTarget(user, server string) string {
	if server == "" {
		return user
	}
	return user + "/" + server
}

func (h *Hub) audit(ctx context.Context, actor, action, target, detail string) {
	if err := h.store.AddEvent(ctx, store.Event{Actor: actor, ActorUID: -1, Source: "hub", Action: action, Target: target, Detail: detail}); err != nil {
		h.log.Warn("audit log write failed", "action", action, "err", err)
	}
}

// Wait blocks until background starts have finished (for shutdown).
func (h *Hub) Wait() { h.bg.Wait() }
