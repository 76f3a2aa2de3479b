package ui

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
)

// Client is the part of the admin API the console uses. *client.Client
// satisfies it; tests use a fake.
type Client interface {
	WhoAmI(ctx context.Context) (wire.WhoAmI, error)
	Status(ctx context.Context) (wire.Status, error)
	Sessions(ctx context.Context, user string) (wire.Sessions, error)
	StopServers(ctx context.Context, req wire.StopRequest) (wire.StopResult, error)
	ServerLog(ctx context.Context, user, server string, lines int) (wire.LogTail, error)
	Backups(ctx context.Context) (wire.Backups, error)
	CreateBackup(ctx context.Context, label string, progress func(wire.Progress)) (wire.Backup, error)
	VerifyBackup(ctx context.Context, name string) (wire.Backup, error)
	RestoreBackup(ctx context.Context, name string) error
	UpgradePlan(ctx context.Context) (wire.UpgradePlan, error)
	RunUpgrade(ctx context.Context) (wire.UpgradePlan, error)
	Events(ctx context.Context, q client.EventsQuery) (wire.Events, error)
	Tokens(ctx context.Context, user, service string) (wire.Tokens, error)
	CreateToken(ctx context.Context, req wire.TokenRequest) (wire.NewToken, error)
	RevokeToken(ctx context.Context, id string) (wire.Token, error)
	Restart(ctx context.Context, reason string) (wire.RestartResult, error)
	SharedEnv(ctx context.Context) (wire.SharedEnv, error)
	AllUsers(ctx context.Context, name string) ([]wire.User, error)
	SetAdmin(ctx context.Context, user string, admin bool) (wire.AdminResult, error)
	Unlink(ctx context.Context, user string) (wire.AdminResult, error)
	DeleteUser(ctx context.Context, user string) (wire.DeletedUser, error)
	Shares(ctx context.Context) (wire.Shares, error)
	CreateShare(ctx context.Context, req wire.ShareRequest) (wire.Share, error)
	ChangeShareMembers(ctx context.Context, name string, req wire.ShareMembers) (wire.Share, error)
	DeleteShare(ctx context.Context, name string, purge bool) error
	CheckShare(ctx context.Context, name string, repair bool) (wire.ShareCheck, error)
}

var _ Client = (*client.Client)(nil)

// callTimeout bounds a read: the hub answers them from memory and its
// database, so a slow answer means trouble worth showing.
const callTimeout = 10 * time.Second

// Messages carrying the answers of reads. Each has its own type so that
// Update can route it; err is set instead of the value on failure.
type (
	whoamiMsg struct {
		who wire.WhoAmI
		err error
	}
	statusMsg struct {
		status wire.Status
		err    error
	}
	sessionsMsg struct {
		sessions wire.Sessions
		err      error
	}
	logMsg struct {
		user string
		tail wire.LogTail
		err  error
	}
	backupsMsg struct {
		backups wire.Backups
		err     error
	}
	planMsg struct {
		plan wire.UpgradePlan
		err  error
	}
	eventsMsg struct {
		events wire.Events
		older  bool // a further page, to append
		err    error
	}
	tokensMsg struct {
		tokens wire.Tokens
		err    error
	}
	usersMsg struct {
		users []wire.User
		err   error
	}
	// tickMsg asks for a refresh of what is on screen.
	tickMsg struct{}
)

// read runs one read of the admin API with callTimeout as a command.
func read[T any](ctx context.Context, call func(context.Context) (T, error), msg func(T, error) tea.Msg) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		v, err := call(ctx)
		return msg(v, err)
	}
}

func fetchWhoAmI(ctx context.Context, c Client) tea.Cmd {
	return read(ctx, c.WhoAmI, func(v wire.WhoAmI, err error) tea.Msg { return whoamiMsg{v, err} })
}

func fetchStatus(ctx context.Context, c Client) tea.Cmd {
	return read(ctx, c.Status, func(v wire.Status, err error) tea.Msg { return statusMsg{v, err} })
}

func fetchSessions(ctx context.Context, c Client) tea.Cmd {
	return read(ctx, func(ctx context.Context) (wire.Sessions, error) { return c.Sessions(ctx, "") },
		func(v wire.Sessions, err error) tea.Msg { return sessionsMsg{v, err} })
}

// logLines is how much of a server's log the detail view asks for.
const logLines = 200

func fetchLog(ctx context.Context, c Client, user, server string) tea.Cmd {
	return read(ctx, func(ctx context.Context) (wire.LogTail, error) { return c.ServerLog(ctx, user, server, logLines) },
		func(v wire.LogTail, err error) tea.Msg { return logMsg{user, v, err} })
}

func fetchBackups(ctx context.Context, c Client) tea.Cmd {
	return read(ctx, c.Backups, func(v wire.Backups, err error) tea.Msg { return backupsMsg{v, err} })
}

func fetchPlan(ctx context.Context, c Client) tea.Cmd {
	return read(ctx, c.UpgradePlan, func(v wire.UpgradePlan, err error) tea.Msg { return planMsg{v, err} })
}

func fetchTokens(ctx context.Context, c Client) tea.Cmd {
	return read(ctx, func(ctx context.Context) (wire.Tokens, error) { return c.Tokens(ctx, "", "") },
		func(v wire.Tokens, err error) tea.Msg { return tokensMsg{v, err} })
}

// fetchUsers brings every user, a page at a time: the view filters and
// sorts them itself.
func fetchUsers(ctx context.Context, c Client) tea.Cmd {
	return read(ctx, func(ctx context.Context) ([]wire.User, error) { return c.AllUsers(ctx, "") },
		func(v []wire.User, err error) tea.Msg { return usersMsg{v, err} })
}

// eventsPage is how many audit events one fetch brings.
const eventsPage = 200

func fetchEvents(ctx context.Context, c Client, before int64) tea.Cmd {
	return read(ctx, func(ctx context.Context) (wire.Events, error) {
		return c.Events(ctx, client.EventsQuery{Limit: eventsPage, Before: before})
	}, func(v wire.Events, err error) tea.Msg { return eventsMsg{v, before > 0, err} })
}

// unreachable reports whether err means the console cannot talk to the
// hub at all (rather than the hub refusing one request), which replaces
// every view with a screen that says how to fix it.
func unreachable(err error) bool {
	return isType[*client.NotRunningError](err) || isType[*client.SocketPermissionError](err)
}
