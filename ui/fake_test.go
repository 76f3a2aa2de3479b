package ui

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
)

// now is the tests' fixed clock: every age on screen is measured from it.
var now = time.Date(2026, 3, 15, 14, 30, 0, 0, time.UTC)

func clock() time.Time { return now }

// fake is a Client that answers from its fields and records every
// change asked of it. Safe for use from the program's goroutines.
type fake struct {
	mu sync.Mutex

	who      wire.WhoAmI
	whoErr   error
	status   wire.Status
	sessions wire.Sessions
	logs     map[string]wire.LogTail
	backups  wire.Backups
	plan     wire.UpgradePlan
	events   wire.Events
	// readErr, when set, fails every read but WhoAmI.
	readErr error
	stopErr error

	stops    [][]string
	tokens   []wire.Token
	users    []wire.User
	admins   []string // "alice=true" per SetAdmin call
	deleted  []string
	issued   []wire.TokenRequest
	revoked  []string
	restores []string
	upgrades int
	verifies []string

	// The hub view (hub_test.go).
	env         wire.SharedEnv
	checks      int
	restarts    int
	shares      wire.Shares
	shareChecks []string
}

func newFake() *fake {
	gib := int64(1 << 30)
	return &fake{
		who: wire.WhoAmI{UID: 0, User: "root", Role: wire.RoleAdmin, Why: "uid 0"},
		status: wire.Status{
			Version: "0.1.0-dev", SchemaVersion: 7, PID: 4242,
			Started: now.Add(-76 * time.Hour), UptimeSeconds: int64((76 * time.Hour).Seconds()),
			Listeners:   []wire.Listener{{Name: "public", Addr: "0.0.0.0:8000"}, {Name: "admin", Addr: wire.DefaultSocket}},
			SpawnerKind: "sudo", Users: 12,
			Servers:       map[string]int{"running": 3, "failed": 1},
			ActiveServers: 3,
		},
		sessions: wire.Sessions{Sessions: []wire.Session{
			{User: "alice", State: "running", Started: now.Add(-125 * time.Minute), LastActivity: now.Add(-time.Minute),
				ProxyActivity: now.Add(-30 * time.Second), URL: "/user/alice/", Spawner: "sudo", PID: 31337,
				Procs: 7, CPUPercent: 12.5, RSSBytes: gib + gib/5, Profile: "gpu", Address: "127.0.0.1:41873", GPUs: []int{0, 1}},
			{User: "bob", State: "running", Started: now.Add(-5 * time.Hour), LastActivity: now.Add(-190 * time.Minute),
				URL: "/user/bob/", Spawner: "slurm", Profile: "cluster", Address: "127.0.0.2:40213",
				JobID: "4711", Node: "node2", JobState: "RUNNING"},
			{User: "carol", State: "failed", Started: now.Add(-40 * time.Minute), URL: "/user/carol/", Spawner: "sudo"},
			{User: "dave", State: "running", Pending: "stop", Started: now.Add(-26 * time.Hour), LastActivity: now.Add(-2 * time.Hour),
				URL: "/user/dave/", Spawner: "sudo", PID: 29000, Procs: 2, CPUPercent: 0.3, RSSBytes: 98 << 20},
		}},
		logs: map[string]wire.LogTail{"alice": {
			User: "alice", Path: "/home/alice/.local/state/hubd/server.log", Truncated: true,
			Lines: []string{
				"[I 12:25:01.104 ServerApp] jupyter_lsp | extension was successfully loaded.",
				"[I 12:25:01.310 ServerApp] Serving notebooks from local directory: /home/alice",
				"[I 12:25:01.311 ServerApp] Jupyter Server 2.14.2 is running at:",
				"[I 12:25:01.311 ServerApp] http://127.0.0.1:41873/user/alice/lab",
				"[I 14:02:13.771 ServerApp] Kernel started: 5c1e0c3a-3f0b-4d8e-9c57-0b2ad1d07c43",
				"[W 14:20:45.002 ServerApp] \x1b[31mNotebook analysis.ipynb is not trusted\x1b[0m",
				"[I 14:29:30.512 ServerApp] Saving file at /analysis.ipynb",
			},
		}},
		backups: wire.Backups{Dir: "/var/lib/hubd/backups", Backups: []wire.Backup{
			{Name: "hubd-20260315T020000Z-nightly.tar.gz", Path: "/var/lib/hubd/backups/hubd-20260315T020000Z-nightly.tar.gz",
				Size: 18 << 20, Created: now.Add(-12*time.Hour - 30*time.Minute), SchemaVersion: 7, HubdVersion: "0.1.0", Label: "nightly", Host: "hub1"},
			{Name: "hubd-20260314T020000Z-nightly.tar.gz", Path: "/var/lib/hubd/backups/hubd-20260314T020000Z-nightly.tar.gz",
				Size: 17 << 20, Created: now.Add(-36*time.Hour - 30*time.Minute), SchemaVersion: 7, HubdVersion: "0.1.0", Label: "nightly", Host: "hub1"},
			{Name: "hubd-20260301T093000Z-manual.tar.gz", Path: "/var/lib/hubd/backups/hubd-20260301T093000Z-manual.tar.gz",
				Size: 4096, Error: "manifest.json: unexpected end of JSON input"},
		}},
		plan: wire.UpgradePlan{From: 7, To: 9, Pending: true,
			Steps:   []wire.UpgradeStep{{Version: 8, Name: "servers: add gpu_memory"}, {Version: 9, Name: "events: index by target"}},
			Message: "2 steps are pending. The hub backs the database up first, then applies them in one transaction.",
		},
		env: fakeEnv(),
		users: []wire.User{
			{Name: "alice", Method: "pam", Account: "linux", Created: now.Add(-60 * 24 * time.Hour), LastSeen: now.Add(-30 * time.Second),
				Server: "running", ActiveServers: 2},
			{Name: "bob", Method: "pam", Admin: true, AdminByHand: true, Account: "linux", Created: now.Add(-50 * 24 * time.Hour),
				LastSeen: now.Add(-190 * time.Minute), Server: "stopped"},
			{Name: "carol", Method: "oidc", Admin: true, AdminRule: "auth.oidc.admin_groups: lab-admins", Account: "dynamic",
				Created: now.Add(-3 * 24 * time.Hour), LastSeen: now.Add(-40 * time.Minute), Server: "failed"},
			{Name: "dave", Method: "oidc", Admin: true, AdminByHand: true, AdminRule: "auth.oidc.admin_users", Account: "linux",
				Created: now.Add(-26 * time.Hour), LastSeen: now.Add(-2 * time.Hour), Server: "running", Pending: "stop", ActiveServers: 1},
			{Name: "erin", Account: "linux", Created: now.Add(-10 * time.Minute)},
		},
		events: wire.Events{Events: []wire.Event{
			{ID: 104, Time: now.Add(-3 * time.Minute), Actor: "root", ActorUID: 0, Source: "admin", Action: "server.stop", Target: "erin", Detail: "stopped from hubtui"},
			{ID: 103, Time: now.Add(-47 * time.Minute), Actor: "alice", ActorUID: 1001, Source: "web", Action: "server.start", Target: "alice", Detail: "default server"},
			{ID: 102, Time: now.Add(-12*time.Hour - 30*time.Minute), Actor: "hubd", ActorUID: -1, Source: "backup", Action: "backup.create", Target: "hubd-20260315T020000Z-nightly.tar.gz", Detail: "18M in 2.1s"},
			{ID: 101, Time: now.Add(-26 * time.Hour), Actor: "bob", ActorUID: 1002, Source: "web", Action: "login", Target: "bob", Detail: "pam"},
		}},
	}
}

func (f *fake) read(err error) error {
	if f.readErr != nil {
		return f.readErr
	}
	return err
}

func (f *fake) WhoAmI(context.Context) (wire.WhoAmI, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.who, f.whoErr
}

func (f *fake) Status(context.Context) (wire.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, f.read(nil)
}

func (f *fake) Sessions(context.Context, string) (wire.Sessions, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions
	s.Sessions = slices.Clone(s.Sessions)
	return s, f.read(nil)
}

func (f *fake) Tokens(context.Context, string, string) (wire.Tokens, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return wire.Tokens{Tokens: slices.Clone(f.tokens)}, f.read(nil)
}

// CreateToken issues a made-up token and lists it.
func (f *fake) CreateToken(_ context.Context, req wire.TokenRequest) (wire.NewToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issued = append(f.issued, req)
	t := wire.Token{ID: "a7", User: req.User, Service: req.Service, Kind: "api", Scopes: req.Scopes, Note: req.Note, Created: now}
	f.tokens = append(f.tokens, t)
	return wire.NewToken{Token: t, Secret: "0123456789abcdef0123456789abcdef"}, nil
}

// RevokeToken removes a listed token.
func (f *fake) RevokeToken(_ context.Context, id string) (wire.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, id)
	i := slices.IndexFunc(f.tokens, func(t wire.Token) bool { return t.ID == id })
	if i < 0 {
		return wire.Token{}, &client.APIError{Status: 404, Message: "no token " + id}
	}
	t := f.tokens[i]
	f.tokens = slices.Delete(f.tokens, i, i+1)
	return t, nil
}

func (f *fake) AllUsers(context.Context, string) ([]wire.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.users), f.read(nil)
}

// SetAdmin grants or revokes admin by hand, answering with the hub's
// note when a login rule made the user an admin.
func (f *fake) SetAdmin(_ context.Context, user string, admin bool) (wire.AdminResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.admins = append(f.admins, fmt.Sprintf("%s=%v", user, admin))
	i := slices.IndexFunc(f.users, func(u wire.User) bool { return u.Name == user })
	if i < 0 {
		return wire.AdminResult{}, &client.APIError{Status: 404, Message: "no user " + user + " in the hub"}
	}
	u := &f.users[i]
	var res wire.AdminResult
	if !admin && u.AdminRule != "" {
		res.Note = u.AdminRule + " made " + user + " an admin at their last login and will again at their next login: change that rule to make this stick"
		u.AdminRule = ""
	}
	u.Admin, u.AdminByHand = admin, admin
	res.User = *u
	return res, nil
}

// Unlink frees a listed user's name from their login.
func (f *fake) Unlink(_ context.Context, user string) (wire.AdminResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.users, func(u wire.User) bool { return u.Name == user })
	if i < 0 {
		return wire.AdminResult{}, &client.APIError{Status: 404, Message: "no user " + user + " in the hub"}
	}
	u := &f.users[i]
	if u.Method == "" {
		return wire.AdminResult{}, &client.APIError{Status: 409, Message: user + " is not linked to a login: their next login links it"}
	}
	res := wire.AdminResult{Note: "the next login as " + user + ", through any login method the hub offers (" + u.Method + " included), links the name again"}
	u.Method = ""
	res.User = *u
	return res, nil
}

// DeleteUser removes a listed user, naming the servers it stopped.
func (f *fake) DeleteUser(_ context.Context, user string) (wire.DeletedUser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, user)
	i := slices.IndexFunc(f.users, func(u wire.User) bool { return u.Name == user })
	if i < 0 {
		return wire.DeletedUser{}, &client.APIError{Status: 404, Message: "no user " + user + " in the hub"}
	}
	res := wire.DeletedUser{User: f.users[i], Stopped: []string{}}
	if res.User.ActiveServers > 0 {
		res.Stopped = append(res.Stopped, user)
	}
	f.users = slices.Delete(f.users, i, i+1)
	return res, nil
}

// StopServers stops the servers asked for ("user" or "user/server"):
// they leave the sessions list.
func (f *fake) StopServers(_ context.Context, req wire.StopRequest) (wire.StopResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops = append(f.stops, req.Servers)
	if f.stopErr != nil {
		return wire.StopResult{}, f.stopErr
	}
	var res wire.StopResult
	for _, u := range req.Servers {
		before := len(f.sessions.Sessions)
		f.sessions.Sessions = slices.DeleteFunc(f.sessions.Sessions, func(s wire.Session) bool { return sessionName(s) == u })
		if len(f.sessions.Sessions) < before {
			res.Stopped = append(res.Stopped, u)
		} else {
			res.NotRunning = append(res.NotRunning, u)
		}
	}
	return res, nil
}

func (f *fake) ServerLog(_ context.Context, user, _ string, _ int) (wire.LogTail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logs[user], f.read(nil)
}

func (f *fake) Backups(context.Context) (wire.Backups, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.backups, f.read(nil)
}

func (f *fake) CreateBackup(_ context.Context, label string, progress func(wire.Progress)) (wire.Backup, error) {
	progress(wire.Progress{Stage: "copy database", Done: 1, Total: 2})
	progress(wire.Progress{Stage: "verify", Done: 2, Total: 2})
	return wire.Backup{Name: "hubd-20260315T143000Z-" + label + ".tar.gz", Size: 18 << 20}, nil
}

func (f *fake) VerifyBackup(_ context.Context, name string) (wire.Backup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verifies = append(f.verifies, name)
	return wire.Backup{Name: name, SchemaVersion: 7, HubdVersion: "0.1.0"}, nil
}

// RestoreBackup answers as a running hub does: it refuses.
func (f *fake) RestoreBackup(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restores = append(f.restores, name)
	return &client.APIError{Status: 409, Message: "the hub is running: stop it (systemctl stop hubd), then run hubd backup restore " + name}
}

func (f *fake) UpgradePlan(context.Context) (wire.UpgradePlan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.plan, f.read(nil)
}

func (f *fake) RunUpgrade(context.Context) (wire.UpgradePlan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.upgrades++
	return wire.UpgradePlan{From: 9, To: 9, Message: "applied 2 steps; the database is at schema 9"}, nil
}

func (f *fake) Events(_ context.Context, q client.EventsQuery) (wire.Events, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q.Before > 0 {
		return wire.Events{}, f.read(nil)
	}
	return f.events, f.read(nil)
}

// notRunning is the error the client gives when nobody listens.
var notRunning = &client.NotRunningError{Socket: wire.DefaultSocket, Err: syscall.ECONNREFUSED}

func (f *fake) Shares(context.Context) (wire.Shares, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.shares
	out.Shares = slices.Clone(out.Shares)
	return out, f.read(nil)
}

// CreateShare lists a new share with its members.
func (f *fake) CreateShare(_ context.Context, req wire.ShareRequest) (wire.Share, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.Public {
		f.shares.Public = "/srv/hubd/shares/public"
		return wire.Share{Name: "public", Path: f.shares.Public}, nil
	}
	s := wire.Share{Name: req.Name, Path: "/srv/hubd/shares/" + req.Name, Group: "share-" + req.Name, Members: req.Members}
	f.shares.Shares = append(f.shares.Shares, s)
	return s, nil
}

func (f *fake) ChangeShareMembers(_ context.Context, name string, req wire.ShareMembers) (wire.Share, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.shares.Shares, func(s wire.Share) bool { return s.Name == name })
	if i < 0 {
		return wire.Share{}, &client.APIError{Status: 404, Message: "there is no share " + name}
	}
	s := &f.shares.Shares[i]
	s.Members = append(s.Members, req.Add...)
	s.Members = slices.DeleteFunc(s.Members, func(m string) bool { return slices.Contains(req.Remove, m) })
	return *s, nil
}

func (f *fake) DeleteShare(_ context.Context, name string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shares.Shares = slices.DeleteFunc(f.shares.Shares, func(s wire.Share) bool { return s.Name == name })
	return nil
}

// CheckShare finds one moved file, which a repair fixes.
func (f *fake) CheckShare(_ context.Context, name string, repair bool) (wire.ShareCheck, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shareChecks = append(f.shareChecks, fmt.Sprint(name, " ", repair))
	r := wire.ShareReport{Path: "/srv/hubd/shares/" + name, Files: 3, Dirs: 1,
		Problems: map[string]int{"file-mode": 1}, Examples: map[string][]string{"file-mode": {"/srv/hubd/shares/" + name + "/draft.txt"}}}
	if repair {
		r.Fixed = map[string]int{"file-mode": 1}
	}
	return wire.ShareCheck{Reports: []wire.ShareReport{r}}, nil
}
