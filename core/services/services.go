// Package services runs the hub's side of JupyterHub services: programs
// declared in the configuration that use the hub's API with a token of
// their own. It records them (with their tokens and OAuth clients) in the
// database, publishes the routes of those with a URL under
// /services/<name>/, and starts the ones with a command, keeps them
// running (restarting a crashed one) and stops them with the hub.
package services

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/fsutil"
)

// Options build a Manager. Every dependency is explicit.
type Options struct {
	Config config.Config
	Store  *store.Store
	Routes *proxy.Table
	Logger *slog.Logger
	// RestartDelay is the first wait before restarting a service that
	// exited (doubling up to MaxRestartDelay); defaults 1 s and 30 s.
	RestartDelay, MaxRestartDelay time.Duration
}

// Manager keeps the configured services.
type Manager struct {
	o   Options
	log *slog.Logger

	mu     sync.Mutex
	tokens map[string]string // managed service → its token for this run
	pids   map[string]int
}

// New builds a Manager.
func New(o Options) *Manager {
	if o.RestartDelay <= 0 {
		o.RestartDelay = time.Second
	}
	if o.MaxRestartDelay <= 0 {
		o.MaxRestartDelay = 30 * time.Second
	}
	return &Manager{o: o, log: o.Logger.With("component", "services"), tokens: map[string]string{}, pids: map[string]int{}}
}

// Prefix is where a service with a URL is served: <base>services/<name>/.
func Prefix(base, name string) string { return base + "services/" + name + "/" }

// Sync records the configured services in the database (removing the
// ones no longer configured, with their tokens), sets each one's token
// and OAuth client, and publishes the routes of those with a URL.
func (m *Manager) Sync(ctx context.Context) error {
	var creds []store.ServiceCredentials
	for _, sv := range m.o.Config.Services {
		token, err := m.token(sv)
		if err != nil {
			return err
		}
		c := store.ServiceCredentials{Name: sv.Name, TokenScopes: `["inherit"]`}
		if token != "" {
			c.TokenHash, c.TokenPrefix = store.HashToken(token), token[:4]
			if sv.URL != "" {
				c.RedirectURI = Prefix(m.o.Config.Hub.BaseURL, sv.Name) + "oauth_callback"
			}
		}
		creds = append(creds, c)
	}
	if _, err := m.o.Store.SyncServices(ctx, creds); err != nil {
		return fmt.Errorf("record the configured services: %w", err)
	}
	for _, sv := range m.o.Config.Services {
		if sv.URL == "" {
			continue
		}
		if err := m.o.Routes.Set(proxy.Route{Prefix: Prefix(m.o.Config.Hub.BaseURL, sv.Name), Target: strings.TrimSuffix(sv.URL, "/"), Service: sv.Name}); err != nil {
			return fmt.Errorf("service %s: route to %s: %w", sv.Name, sv.URL, err)
		}
	}
	return nil
}

// token is a service's token: read from its api_token_file (made with a
// fresh token when missing), fresh for this run for a managed service
// without one, none otherwise (an admin issues tokens with `hubd token
// create --service`).
func (m *Manager) token(sv config.Service) (string, error) {
	if sv.APITokenFile != "" {
		return readTokenFile(sv.Name, sv.APITokenFile)
	}
	if len(sv.Command) == 0 {
		return "", nil
	}
	tok := store.RandomID(16)
	m.mu.Lock()
	m.tokens[sv.Name] = tok
	m.mu.Unlock()
	return tok, nil
}

// readTokenFile reads a service's token file, creating it (mode 0600)
// with a fresh token when it does not exist. A file others may read is
// refused: whoever reads it acts as the service.
func readTokenFile(name, path string) (string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		tok := store.RandomID(16)
		if err := fsutil.WriteFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("service %s: create its token file: %w", name, err)
		}
		return tok, nil
	}
	if err != nil {
		return "", fmt.Errorf("service %s: token file: %w", name, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("service %s: token file %s has mode %04o: anyone who reads it acts as the service; run `chmod 600 %s`", name, path, fi.Mode().Perm(), path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("service %s: token file: %w", name, err)
	}
	tok := strings.TrimSpace(string(raw))
	if len(tok) < 16 || len(tok) > 256 || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("service %s: token file %s must hold one token of 16 to 256 characters without spaces (delete it and the hub writes a new one)", name, path)
	}
	return tok, nil
}

// PID is the process id of a running managed service, 0 otherwise.
func (m *Manager) PID(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pids[name]
}

// Run starts every service with a command and keeps it running until ctx
// ends; then it stops them all and returns.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sv := range m.o.Config.Services {
		if len(sv.Command) == 0 {
			continue
		}
		wg.Go(func() { m.supervise(ctx, sv) })
	}
	wg.Wait()
}

// supervise runs one service, restarting it when it exits, with a
// growing delay while it keeps failing fast.
func (m *Manager) supervise(ctx context.Context, sv config.Service) {
	log := m.log.With("service", sv.Name)
	delay := m.o.RestartDelay
	for ctx.Err() == nil {
		started := time.Now()
		err := m.runOnce(ctx, sv, log)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			delay = m.o.RestartDelay
		}
		log.Warn("service exited; restarting it", "err", err, "in", delay, "log", m.logPath(sv.Name))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, m.o.MaxRestartDelay)
	}
}

func (m *Manager) logPath(name string) string {
	return filepath.Join(m.o.Config.Data.LogDir, "service-"+name+".log")
}

// runOnce starts the service's process and waits for it to exit, or
// stops it when ctx ends.
func (m *Manager) runOnce(ctx context.Context, sv config.Service, log *slog.Logger) error {
	logf, err := os.OpenFile(m.logPath(sv.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open its log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(sv.Command[0], sv.Command[1:]...)
	cmd.Env = m.env(sv)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = sv.WorkingDir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	// Its own session: signals to the hub's process group do not reach
	// it, and stopping it reaches everything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", sv.Command[0], err)
	}
	pid := cmd.Process.Pid
	m.setPID(sv.Name, pid)
	defer m.setPID(sv.Name, 0)
	log.Info("service started", "pid", pid, "command", strings.Join(sv.Command, " "))
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return fmt.Errorf("exited: %w", err)
	case <-ctx.Done():
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-exited:
		log.Info("service stopped", "pid", pid)
	case <-time.After(m.o.Config.Spawner.StopTimeout.D()):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
		log.Warn("service did not stop in time; killed", "pid", pid, "after", m.o.Config.Spawner.StopTimeout.D())
	}
	return nil
}

func (m *Manager) setPID(name string, pid int) {
	m.mu.Lock()
	m.pids[name] = pid
	m.mu.Unlock()
}

// env is what JupyterHub gives a managed service: its token, the hub's
// API, its OAuth client and, with a URL, where it serves; then the
// service's own environment.
func (m *Manager) env(sv config.Service) []string {
	cfg := m.o.Config
	m.mu.Lock()
	token := m.tokens[sv.Name]
	m.mu.Unlock()
	if sv.APITokenFile != "" {
		token, _ = readTokenFile(sv.Name, sv.APITokenFile)
	}
	access, _ := json.Marshal([]string{"access:services!service=" + sv.Name, "access:services"})
	prefix := Prefix(cfg.Hub.BaseURL, sv.Name)
	env := map[string]string{
		"PATH": cfg.Spawner.Path, "LANG": "C.UTF-8",
		"JUPYTERHUB_API_TOKEN": token, "JPY_API_TOKEN": token,
		"JUPYTERHUB_API_URL":                     hub.InternalAPIURL(cfg),
		"JUPYTERHUB_BASE_URL":                    cfg.Hub.BaseURL,
		"JUPYTERHUB_HOST":                        "",
		"JUPYTERHUB_CLIENT_ID":                   store.ServiceClientID(sv.Name),
		"JUPYTERHUB_SERVICE_NAME":                sv.Name,
		"JUPYTERHUB_OAUTH_CALLBACK_URL":          prefix + "oauth_callback",
		"JUPYTERHUB_OAUTH_ACCESS_SCOPES":         string(access),
		"JUPYTERHUB_OAUTH_SCOPES":                string(access),
		"JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
	}
	if sv.URL != "" {
		env["JUPYTERHUB_SERVICE_URL"] = sv.URL
		env["JUPYTERHUB_SERVICE_PREFIX"] = prefix
	}
	if home := os.Getenv("HOME"); home != "" {
		env["HOME"] = home
	}
	for k, v := range sv.Environment {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
