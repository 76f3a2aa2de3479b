package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/daemon"
	"github.com/hubd/hubd/core/shares"
)

func cmdShare(ctx context.Context, e *env, args []string) int {
	actions := []action{
		{"create", shareCreate},
		{"list", shareList},
		{"add", shareAdd},
		{"remove", shareRemove},
		{"delete", shareDelete},
		{"check", shareCheck},
		{"repair", shareRepair},
	}
	return e.dispatch(ctx, "share", `Usage: hubd share <action> [--config PATH] [flags] [arguments]

Actions:
  create NAME [USER...]   a share: its group, its directory <shares.root>/NAME (root)
  create --public         the public area, where every member publishes a folder (root)
  list                    the shares and their members
  add NAME USER...        make users members; they see it from their next server start (root)
  remove NAME USER...     take users out; their next server start no longer has it (root)
  delete NAME [--purge]   remove the share's group and (empty, or with --purge) its directory (root)
  check NAME|public       find files members cannot read or change (cp -p, mv); exit 1 when there are any
  repair NAME|public      fix what check finds (root)

Members see a share at ~/shares/NAME (sudo spawner) or at its own path
(docker). Run `+"`hubd share <action> --help`"+` for an action's flags.
`, actions, args)
}

// shareOpen parses an action's flags and loads the configuration; done
// reports that the action ends with code.
func shareOpen(e *env, fs *flag.FlagSet, name string, asRoot bool, args []string, minArgs int) (*shares.Manager, []string, int, bool) {
	if code, done := parse(fs, args); done {
		return nil, nil, code, true
	}
	if fs.NArg() < minArgs {
		fs.Usage()
		return nil, nil, 2, true
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, nil, e.fail("%v", err), true
	}
	if asRoot && geteuid() != 0 {
		return nil, nil, e.fail("hubd share %s creates groups and changes ownership, so it must run as root: run `sudo hubd share %s`", name, name), true
	}
	return shares.New(shareOptions(e, cfg)), fs.Args(), 0, false
}

func shareOptions(e *env, cfg config.Config) shares.Options {
	return shares.OptionsFromConfig(cfg, slog.New(daemon.LogHandler(e.stderr, logLevel(cfg.Hub.LogLevel))))
}

func printShare(e *env, s shares.Share) {
	members := strings.Join(s.Members, ", ")
	if members == "" {
		members = "(none)"
	}
	fmt.Fprintf(e.stdout, "%-20s %-28s group %-24s members: %s\n", s.Name, s.Path, s.Group, members)
}

func shareCreate(ctx context.Context, e *env, args []string) int {
	fs := e.flags("share create", "share create [--config PATH] NAME [USER...] | --public", `
Create a share: the group <shares.group_prefix>NAME with the users given,
and the directory <shares.root>/NAME (root's, mode 2770, setgid with a
default ACL), so that every member can read and change every file in it.
With --public, create the public area <shares.root>/public instead. Runs
as root.`)
	public := fs.Bool("public", false, "create the public area")
	m, rest, code, done := shareOpen(e, fs, "create", true, args, 0)
	if done {
		return code
	}
	if *public {
		if len(rest) > 0 {
			return e.fail("--public takes no share name or users")
		}
		if err := m.CreatePublic(); err != nil {
			return e.fail("%v", err)
		}
		fmt.Fprintf(e.stdout, "public area ready at %s: every member gets a folder there at their next server start\n", m.PublicPath())
		return 0
	}
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	s, err := m.Create(ctx, rest[0], rest[1:])
	if err != nil {
		return e.fail("%v", err)
	}
	printShare(e, s)
	return 0
}

func shareList(ctx context.Context, e *env, args []string) int {
	fs := e.flags("share list", "share list [--config PATH] [--json]", "List the shares with their paths, groups and members.")
	asJSON := fs.Bool("json", false, "print JSON")
	m, _, code, done := shareOpen(e, fs, "list", false, args, 0)
	if done {
		return code
	}
	list, err := m.List(ctx)
	if err != nil {
		return e.fail("%v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(list)
		return 0
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stdout, "no shares yet: `sudo hubd share create NAME USER...` makes one")
	}
	for _, s := range list {
		printShare(e, s)
	}
	return 0
}

func shareMembers(ctx context.Context, e *env, args []string, name, about string, change func(*shares.Manager, context.Context, string, []string) (shares.Share, error)) int {
	fs := e.flags("share "+name, "share "+name+" [--config PATH] NAME USER...", about)
	m, rest, code, done := shareOpen(e, fs, name, true, args, 2)
	if done {
		return code
	}
	s, err := change(m, ctx, rest[0], rest[1:])
	if err != nil {
		return e.fail("%v", err)
	}
	printShare(e, s)
	return 0
}

func shareAdd(ctx context.Context, e *env, args []string) int {
	return shareMembers(ctx, e, args, "add", "Make users members of a share; they see it from their next server start. Runs as root.", (*shares.Manager).Add)
}

func shareRemove(ctx context.Context, e *env, args []string) int {
	return shareMembers(ctx, e, args, "remove", "Take users out of a share; a server they run keeps access until it stops, the next start has none. Runs as root.", (*shares.Manager).Remove)
}

func shareDelete(ctx context.Context, e *env, args []string) int {
	fs := e.flags("share delete", "share delete [--config PATH] [--purge] NAME", "Remove a share's group and its directory, which must be empty unless --purge. Runs as root.")
	purge := fs.Bool("purge", false, "remove the files in the share too")
	m, rest, code, done := shareOpen(e, fs, "delete", true, args, 1)
	if done {
		return code
	}
	if err := m.Delete(ctx, rest[0], *purge); err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintf(e.stdout, "share %s deleted\n", rest[0])
	return 0
}

func shareWalk(ctx context.Context, e *env, args []string, name, about string, asRoot bool) int {
	fs := e.flags("share "+name, "share "+name+" [--config PATH] NAME|public", about)
	examples := fs.Int("examples", 5, "example paths to show per kind of problem")
	m, rest, code, done := shareOpen(e, fs, name, asRoot, args, 1)
	if done {
		return code
	}
	walk := m.Check
	if name == "repair" {
		walk = m.Repair
	}
	reps, err := walk(ctx, rest[0], *examples)
	for _, r := range reps {
		printReport(e.stdout, r, name == "repair")
	}
	if err != nil {
		return e.fail("%v", err)
	}
	for _, r := range reps {
		if !r.Healthy() {
			if name == "check" {
				fmt.Fprintf(e.stdout, "run `sudo hubd share repair %s` to fix it\n", rest[0])
			}
			return 1
		}
	}
	return 0
}

func shareCheck(ctx context.Context, e *env, args []string) int {
	return shareWalk(ctx, e, args, "check", `
Walk a share (or, for "public", every member's folder in the public area)
and report what the other members cannot read or change: files a `+"`cp -p`"+`
or `+"`mv`"+` brought in with their own group or mode, directories without
setgid or the default ACL. Changes nothing. Exits 1 when something needs
`+"`hubd share repair`.", false)
}

func shareRepair(ctx context.Context, e *env, args []string) int {
	return shareWalk(ctx, e, args, "repair", `
Fix what `+"`hubd share check`"+` reports: the share's group, group read
and write (read only in the public area), setgid and the default ACL on
directories. Symlinks are never followed; files with several hard links
are reported, not changed. Runs as root.`, true)
}
