package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/hubd/hubd/core/admin/wire"
)

func cmdUser(ctx context.Context, e *env, args []string) int {
	actions := map[string]func(context.Context, *env, []string) int{
		"list":   userList,
		"admin":  userAdmin,
		"unlink": userUnlink,
		"delete": userDelete,
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stdout, `Usage: hubd user <action> [--config PATH] [flags]

Actions:
  list     show the hub's users: login method, admin and why, account, last seen, server
  admin    make a user an admin by hand, or --revoke it
  unlink   free a user's name from the login it is bound to (to move them to SSO)
  delete   stop a user's servers and delete the user (with --yes)

Users are managed by the running hub through its admin socket; only admins
may. Every change is in the audit log with your uid.
Run `+"`hubd user <action> --help`"+` for an action's flags.
`)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	act, ok := actions[args[0]]
	if !ok {
		return e.fail("unknown user action %q; use %s", args[0], words("list", "admin", "unlink", "delete"))
	}
	return act(ctx, e, args[1:])
}

func userList(ctx context.Context, e *env, args []string) int {
	fs := e.flags("user list", "user list [--name TEXT] [--json]", `
List the hub's users in the order they were created: the login method of
each, whether they are an admin and why (by hand, or the login rule that
made them one at their last login), what their servers run as (a Linux
account, or a systemd dynamic user), when they were last seen and the
state of their default server (+N: further active named servers).`)
	name := fs.String("name", "", "only users whose name contains this")
	jsonOut := fs.Bool("json", false, "print JSON")
	c, code, done := e.socketClient(fs, args, 0)
	if done {
		return code
	}
	users, err := c.AllUsers(ctx, *name)
	if err != nil {
		return e.fail("%v", err)
	}
	if *jsonOut {
		return e.printJSON(users, 0)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLOGIN\tADMIN\tACCOUNT\tLAST SEEN\tSERVER")
	for _, u := range users {
		server := dash(u.Server)
		if u.Pending != "" {
			server = u.Pending + "ing"
		}
		if u.ActiveServers > 0 {
			server += fmt.Sprintf(" (%d active)", u.ActiveServers)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, dash(u.Method), adminSource(u), u.Account, when(u.LastSeen, "-"), server)
	}
	_ = tw.Flush()
	return 0
}

// adminSource says whether u is an admin and why.
func adminSource(u wire.User) string {
	var why []string
	if u.AdminByHand {
		why = append(why, "by hand")
	}
	if u.AdminRule != "" {
		why = append(why, "by "+u.AdminRule)
	}
	switch {
	case len(why) > 0:
		return "yes, " + strings.Join(why, " and ")
	case u.Admin:
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func userAdmin(ctx context.Context, e *env, args []string) int {
	fs := e.flags("user admin", "user admin [--revoke] NAME", `
Make a user an admin by hand: they stay one whatever the login rules
(admin_users, admin groups) say at their later logins. With --revoke,
take it back at once; a login rule that made them an admin decides again
at their next login, and the command says so.`)
	revoke := fs.Bool("revoke", false, "take admin away instead")
	c, code, done := e.socketClient(fs, args, 1)
	if done {
		return code
	}
	res, err := c.SetAdmin(ctx, fs.Arg(0), !*revoke)
	if err != nil {
		return e.fail("%v", err)
	}
	if res.User.Admin {
		fmt.Fprintf(e.stdout, "%s is an admin (%s)\n", res.User.Name, strings.TrimPrefix(adminSource(res.User), "yes, "))
	} else {
		fmt.Fprintf(e.stdout, "%s is no longer an admin\n", res.User.Name)
	}
	if res.Note != "" {
		fmt.Fprintf(e.stderr, "note: %s\n", res.Note)
	}
	return 0
}

func userUnlink(ctx context.Context, e *env, args []string) int {
	fs := e.flags("user unlink", "user unlink NAME", `
A user's name is bound to the first login that took it (PAM, an SSO
subject, an LDAP entry), so another login mapping to the same name is
refused. Unlink frees it: the next login as NAME, through any method the
hub offers, takes the name again, and the user keeps their servers,
tokens, groups and admin grant. This is how members move from Linux
passwords to single sign-on, or to a new account at the provider.`)
	c, code, done := e.socketClient(fs, args, 1)
	if done {
		return code
	}
	res, err := c.Unlink(ctx, fs.Arg(0))
	if err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintf(e.stdout, "%s is no longer linked to a login; %s\n", res.User.Name, res.Note)
	return 0
}

func userDelete(ctx context.Context, e *env, args []string) int {
	fs := e.flags("user delete", "user delete NAME --yes", `
Stop every server of a user, then delete the user with their API tokens
and sessions, as the REST API's delete does. Their files and Linux
account stay; they may log in again later as a new user if the login
rules allow. Without --yes, only say what would happen.`)
	yes := fs.Bool("yes", false, "really delete")
	c, code, done := e.socketClient(fs, args, 1)
	if done {
		return code
	}
	name := fs.Arg(0)
	if !*yes {
		users, err := c.AllUsers(ctx, name)
		if err != nil {
			return e.fail("%v", err)
		}
		for _, u := range users {
			if u.Name == name {
				fmt.Fprintf(e.stderr, "hubd user delete %s would stop %d active %s and delete the user; nothing was changed: add --yes to do it\n",
					name, u.ActiveServers, plural(u.ActiveServers, "server", "servers"))
				return 2
			}
		}
		return e.fail("no user %s in the hub: `hubd user list` shows who is", name)
	}
	res, err := c.DeleteUser(ctx, name)
	if err != nil {
		return e.fail("%v", err)
	}
	if len(res.Stopped) > 0 {
		fmt.Fprintf(e.stdout, "stopped %s\n", strings.Join(res.Stopped, ", "))
	}
	fmt.Fprintf(e.stdout, "deleted the user %s\n", res.User.Name)
	return 0
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
