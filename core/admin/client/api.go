package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hubd/hubd/core/admin/wire"
)

// WhoAmI reports how the hub sees the caller (role admin or member).
func (c *Client) WhoAmI(ctx context.Context) (wire.WhoAmI, error) {
	var out wire.WhoAmI
	return out, c.call(ctx, http.MethodGet, "/v1/whoami", nil, nil, &out)
}

// Status returns the hub's version, schema, uptime, listeners and counts.
func (c *Client) Status(ctx context.Context) (wire.Status, error) {
	var out wire.Status
	return out, c.call(ctx, http.MethodGet, "/v1/status", nil, nil, &out)
}

// Sessions lists the active servers with their processes' CPU, memory and
// GPU memory. A member gets only their own. user, when not empty, keeps
// only that user's.
func (c *Client) Sessions(ctx context.Context, user string) (wire.Sessions, error) {
	var q url.Values
	if user != "" {
		q = url.Values{"user": {user}}
	}
	var out wire.Sessions
	return out, c.call(ctx, http.MethodGet, "/v1/sessions", q, nil, &out)
}

// StopServer stops a user's server (admins only). Stopping a server that
// is not running is not an error: the user shows in NotRunning.
func (c *Client) StopServer(ctx context.Context, user, reason string) (wire.StopResult, error) {
	var out wire.StopResult
	return out, c.call(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(user)+"/stop", nil, wire.StopOneRequest{Reason: reason}, &out)
}

// StopServers stops the servers of a list of users, or every server idle
// for longer than req.IdleFor (admins only).
func (c *Client) StopServers(ctx context.Context, req wire.StopRequest) (wire.StopResult, error) {
	var out wire.StopResult
	return out, c.call(ctx, http.MethodPost, "/v1/sessions/stop", nil, req, &out)
}

// ServerLog returns the last lines of a user's server log (0: the hub's
// default). Admins may read any, members their own.
func (c *Client) ServerLog(ctx context.Context, user, server string, lines int) (wire.LogTail, error) {
	q := url.Values{}
	if lines > 0 {
		q.Set("lines", strconv.Itoa(lines))
	}
	if server != "" {
		q.Set("server", server)
	}
	var out wire.LogTail
	return out, c.call(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(user)+"/log", q, nil, &out)
}

// Backups lists the backups, newest first (admins only).
func (c *Client) Backups(ctx context.Context) (wire.Backups, error) {
	var out wire.Backups
	return out, c.call(ctx, http.MethodGet, "/v1/backups", nil, nil, &out)
}

// CreateBackup makes a backup while the hub runs (admins only). progress,
// when not nil, is called for each progress line, on this goroutine.
// Cancelling ctx cancels the backup; nothing is left behind.
func (c *Client) CreateBackup(ctx context.Context, label string, progress func(wire.Progress)) (wire.Backup, error) {
	var out wire.Backup
	return out, c.stream(ctx, "/v1/backups", wire.BackupRequest{Label: label}, progress, &out)
}

// PruneBackups removes old backups (admins only), after any backup under
// way; see wire.PruneRequest for the limits.
func (c *Client) PruneBackups(ctx context.Context, req wire.PruneRequest) (wire.PruneResult, error) {
	var out wire.PruneResult
	return out, c.call(ctx, http.MethodPost, "/v1/backups/prune", nil, req, &out)
}

// VerifyBackup checks an archive of the backup directory, by file name
// (admins only).
func (c *Client) VerifyBackup(ctx context.Context, name string) (wire.Backup, error) {
	var out wire.Backup
	return out, c.call(ctx, http.MethodPost, "/v1/backups/"+url.PathEscape(name)+"/verify", nil, nil, &out)
}

// RestoreBackup asks the hub to restore a backup. The running hub refuses
// (an *APIError with status 409) and names the command that does it with
// the hub stopped.
func (c *Client) RestoreBackup(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodPost, "/v1/backups/"+url.PathEscape(name)+"/restore", nil, nil, nil)
}

// UpgradePlan shows the schema steps the running hub would apply (admins
// only). For a running hub it is always empty; see the server's docs.
func (c *Client) UpgradePlan(ctx context.Context) (wire.UpgradePlan, error) {
	var out wire.UpgradePlan
	return out, c.call(ctx, http.MethodGet, "/v1/upgrade/plan", nil, nil, &out)
}

// RunUpgrade applies the pending schema steps (admins only): nothing is
// pending on a running hub, and the answer says so.
func (c *Client) RunUpgrade(ctx context.Context) (wire.UpgradePlan, error) {
	var out wire.UpgradePlan
	return out, c.call(ctx, http.MethodPost, "/v1/upgrade/run", nil, nil, &out)
}

// Restart asks the hub to restart gracefully (admins and members). Too
// soon after the last one it fails with an *APIError of status 429 and
// RetryAfter set.
func (c *Client) Restart(ctx context.Context, reason string) (wire.RestartResult, error) {
	var out wire.RestartResult
	return out, c.call(ctx, http.MethodPost, "/v1/restart", nil, wire.RestartRequest{Reason: reason}, &out)
}

// EventsQuery selects a page of the audit log.
type EventsQuery struct {
	Limit  int   // default 100, at most 1000
	Before int64 // the NextBefore of the previous page; 0 for the newest
	Action string
	Target string
}

// Events returns one page of the audit log, newest first (admins only).
func (c *Client) Events(ctx context.Context, q EventsQuery) (wire.Events, error) {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	if q.Action != "" {
		v.Set("action", q.Action)
	}
	if q.Target != "" {
		v.Set("target", q.Target)
	}
	var out wire.Events
	return out, c.call(ctx, http.MethodGet, "/v1/events", v, nil, &out)
}

// Tokens lists API tokens (admins: everyone's, narrowed by user or
// service when not empty; members: their own).
func (c *Client) Tokens(ctx context.Context, user, service string) (wire.Tokens, error) {
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	if service != "" {
		q.Set("service", service)
	}
	var out wire.Tokens
	return out, c.call(ctx, http.MethodGet, "/v1/tokens", q, nil, &out)
}

// CreateToken issues a token for a user or a service; the answer holds
// the token itself, shown once.
func (c *Client) CreateToken(ctx context.Context, req wire.TokenRequest) (wire.NewToken, error) {
	var out wire.NewToken
	return out, c.call(ctx, http.MethodPost, "/v1/tokens", nil, req, &out)
}

// RevokeToken deletes a token by id ("a12").
func (c *Client) RevokeToken(ctx context.Context, id string) (wire.Token, error) {
	var out wire.Token
	return out, c.call(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, nil, &out)
}

// SharedEnv checks the shared Python environment (GET /v1/sharedenv).
func (c *Client) SharedEnv(ctx context.Context) (wire.SharedEnv, error) {
	var out wire.SharedEnv
	return out, c.call(ctx, http.MethodGet, "/v1/sharedenv", nil, nil, &out)
}

// UsersQuery selects a page of users.
type UsersQuery struct {
	Offset int    // the NextOffset of the previous page; 0 for the first
	Limit  int    // default 200, at most 1000
	Name   string // only names containing this (case-insensitive)
}

// Users returns one page of the hub's users, in the order they were
// created (admins only).
func (c *Client) Users(ctx context.Context, q UsersQuery) (wire.Users, error) {
	v := url.Values{}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Name != "" {
		v.Set("name", q.Name)
	}
	var out wire.Users
	return out, c.call(ctx, http.MethodGet, "/v1/users", v, nil, &out)
}

// AllUsers fetches every page of users (admins only).
func (c *Client) AllUsers(ctx context.Context, name string) ([]wire.User, error) {
	q := UsersQuery{Limit: 1000, Name: name}
	var out []wire.User
	for {
		page, err := c.Users(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Users...)
		if page.NextOffset <= q.Offset {
			// The last page (0), or a hub that would send us round in circles.
			return out, nil
		}
		q.Offset = page.NextOffset
	}
}

// SetAdmin grants (admin) or revokes admin by hand (admins only). The
// answer's Note says what the login rules will do at the user's next
// login.
func (c *Client) SetAdmin(ctx context.Context, user string, admin bool) (wire.AdminResult, error) {
	var out wire.AdminResult
	return out, c.call(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(user)+"/admin", nil, wire.AdminRequest{Admin: admin}, &out)
}

// Unlink unbinds a user from their login so the next login of that name,
// through any method, binds it (admins only).
func (c *Client) Unlink(ctx context.Context, user string) (wire.AdminResult, error) {
	var out wire.AdminResult
	return out, c.call(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(user)+"/unlink", nil, nil, &out)
}

// DeleteUser stops the user's servers and deletes the user with their
// tokens and sessions (admins only); files and Linux accounts stay.
func (c *Client) DeleteUser(ctx context.Context, user string) (wire.DeletedUser, error) {
	var out wire.DeletedUser
	return out, c.call(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(user), nil, nil, &out)
}

// Shares lists the shares and says whether the hub can change them.
func (c *Client) Shares(ctx context.Context) (wire.Shares, error) {
	var out wire.Shares
	return out, c.call(ctx, http.MethodGet, "/v1/shares", nil, nil, &out)
}

// CreateShare creates a share with its first members, or the public area.
func (c *Client) CreateShare(ctx context.Context, req wire.ShareRequest) (wire.Share, error) {
	var out wire.Share
	return out, c.call(ctx, http.MethodPost, "/v1/shares", nil, req, &out)
}

// ChangeShareMembers adds and removes members of a share.
func (c *Client) ChangeShareMembers(ctx context.Context, name string, req wire.ShareMembers) (wire.Share, error) {
	var out wire.Share
	return out, c.call(ctx, http.MethodPost, "/v1/shares/"+url.PathEscape(name)+"/members", nil, req, &out)
}

// DeleteShare removes a share; one that holds files only with purge.
func (c *Client) DeleteShare(ctx context.Context, name string, purge bool) error {
	q := url.Values{}
	if purge {
		q.Set("purge", "true")
	}
	return c.call(ctx, http.MethodDelete, "/v1/shares/"+url.PathEscape(name), q, nil, nil)
}

// CheckShare checks a share (or "public"), or with repair fixes it.
func (c *Client) CheckShare(ctx context.Context, name string, repair bool) (wire.ShareCheck, error) {
	action := "/check"
	if repair {
		action = "/repair"
	}
	var out wire.ShareCheck
	return out, c.call(ctx, http.MethodPost, "/v1/shares/"+url.PathEscape(name)+action, nil, nil, &out)
}
