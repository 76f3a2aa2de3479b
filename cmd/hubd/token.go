package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
)

func cmdToken(ctx context.Context, e *env, args []string) int {
	actions := map[string]func(context.Context, *env, []string) int{
		"create": tokenCreate,
		"list":   tokenList,
		"revoke": tokenRevoke,
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stdout, `Usage: hubd token <action> [--config PATH] [flags]

Actions:
  create   issue an API token for a user or a service (shown once)
  list     show API tokens (their ids, owners, scopes, expiry and notes)
  revoke   delete a token by id

Tokens are managed by the running hub through its admin socket. Admins may
manage anyone's tokens and services' tokens; members their own.
Run `+"`hubd token <action> --help`"+` for an action's flags.
`)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	act, ok := actions[args[0]]
	if !ok {
		return e.fail("unknown token action %q; use %s", args[0], words("create", "list", "revoke"))
	}
	return act(ctx, e, args[1:])
}

// socketClient parses the flags and returns a client of the running hub's
// admin socket.
func (e *env) socketClient(fs *flag.FlagSet, args []string, positional int) (*client.Client, int, bool) {
	if code, done := parse(fs, args); done {
		return nil, code, true
	}
	if fs.NArg() != positional {
		fs.Usage()
		return nil, 2, true
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, e.fail("%v", err), true
	}
	return &client.Client{Socket: cfg.Admin.Socket}, 0, false
}

func tokenCreate(ctx context.Context, e *env, args []string) int {
	fs := e.flags("token create", "token create (--user NAME | --service NAME) [--scopes S,...] [--expires-in D] [--note TEXT]", `
Issue an API token for a user or a configured service and print it: it is
shown this once and stored only hashed. The token never does more than
its owner may (its scopes are checked against the owner's roles when it
is issued and on every use). Without --scopes it carries all of the
owner's scopes. Without --expires-in it does not expire.`)
	user := fs.String("user", "", "the user who owns the token")
	service := fs.String("service", "", "the service (a [[services]] name) that owns the token")
	scopes := fs.String("scopes", "", "comma-separated JupyterHub scopes, e.g. read:users,servers!user=alice")
	expires := fs.Duration("expires-in", 0, "how long the token is valid, e.g. 720h (0: does not expire)")
	note := fs.String("note", "", "what the token is for")
	jsonOut := fs.Bool("json", false, "print the token's model as JSON")
	c, code, done := e.socketClient(fs, args, 0)
	if done {
		return code
	}
	req := wire.TokenRequest{User: *user, Service: *service, Note: *note, ExpiresInSeconds: int64(expires.Seconds())}
	if *expires < 0 {
		return e.fail("--expires-in %s is in the past: give a positive duration, or none for a token that does not expire", *expires)
	}
	if *expires > 0 && *expires < time.Second {
		return e.fail("--expires-in %s is shorter than a second", *expires)
	}
	for _, s := range strings.Split(*scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			req.Scopes = append(req.Scopes, s)
		}
	}
	t, err := c.CreateToken(ctx, req)
	if err != nil {
		return e.fail("%v", err)
	}
	if *jsonOut {
		return e.printJSON(t, 0)
	}
	fmt.Fprintln(e.stdout, t.Secret)
	fmt.Fprintf(e.stderr, "token %s for %s created; it is shown only this once\n", t.ID, owner(t.Token))
	return 0
}

func owner(t wire.Token) string {
	if t.Service != "" {
		return "service " + t.Service
	}
	return t.User
}

func tokenList(ctx context.Context, e *env, args []string) int {
	fs := e.flags("token list", "token list [--user NAME | --service NAME] [--json]", `
List API tokens of people, scripts and services (not servers' own tokens
or browsers' OAuth tokens). Admins see everyone's; members their own.`)
	user := fs.String("user", "", "only this user's tokens")
	service := fs.String("service", "", "only this service's tokens")
	jsonOut := fs.Bool("json", false, "print JSON")
	c, code, done := e.socketClient(fs, args, 0)
	if done {
		return code
	}
	list, err := c.Tokens(ctx, *user, *service)
	if err != nil {
		return e.fail("%v", err)
	}
	if *jsonOut {
		return e.printJSON(list, 0)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOWNER\tSCOPES\tEXPIRES\tLAST USED\tNOTE")
	for _, t := range list.Tokens {
		scopes := strings.Join(t.Scopes, ",")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, owner(t), scopes, when(t.ExpiresAt, "never"), when(t.LastActivity, "-"), t.Note)
	}
	_ = tw.Flush()
	return 0
}

func when(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func tokenRevoke(ctx context.Context, e *env, args []string) int {
	fs := e.flags("token revoke", "token revoke ID", `
Delete a token by its id (as listed by `+"`hubd token list`"+`, e.g. a12): it
stops working at once.`)
	c, code, done := e.socketClient(fs, args, 1)
	if done {
		return code
	}
	t, err := c.RevokeToken(ctx, fs.Arg(0))
	if err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintf(e.stdout, "revoked token %s of %s\n", t.ID, owner(t))
	return 0
}
