// Command hubd is the hub daemon and its administration commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// command is one hubd subcommand. It parses its own flags from args.
type command struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

// commands lists every subcommand; each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"serve":          {"run the hub", cmdServe},
		"config":         {"show the effective configuration or check a file", cmdConfig},
		"upgrade-db":     {"upgrade the database schema (takes a backup first)", cmdUpgradeDB},
		"backup":         {"create, list, verify, restore and prune backups", cmdBackup},
		"env":            {"create and check the shared package environment", cmdEnv},
		"share":          {"create and change folders shared between members, and the public area", cmdShare},
		"spawn-helper":   {"start or stop a user's server (run by sudo as that user)", cmdSpawnHelper},
		"account-helper": {"create a single sign-on user's Linux account (run by sudo as root)", cmdAccountHelper},
		"restart":        {"restart the running hub in place (users' servers keep running)", cmdRestart},
		"token":          {"create, list and revoke API tokens of users and services", cmdToken},
		"user":           {"list users, make or unmake an admin, delete a user", cmdUser},
		"setup":          {"install or repair hubd on this server (idempotent; --dry-run shows the plan)", cmdSetup},
		"doctor":         {"check the installation and print the fix for each problem", cmdDoctor},
		"uninstall":      {"remove what setup installed (data kept unless --purge)", cmdUninstall},
		"version":        {"print the hubd version", cmdVersion},
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "hubd: unknown command %q; run `hubd --help` for the list\n", args[0])
		return 2
	}
	return cmd.run(ctx, e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "hubd — a JupyterHub-compatible hub for one shared Linux server")
	fmt.Fprintln(w, "\nUsage: hubd <command> [--config PATH] [flags]\n\nCommands:")
	cmds := commands()
	byName := make([]string, 0, len(cmds))
	for name := range cmds {
		byName = append(byName, name)
	}
	sort.Strings(byName)
	for _, name := range byName {
		fmt.Fprintf(w, "  %-13s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w, "\nEvery command reads /etc/hubd/hubd.toml unless --config or $HUBD_CONFIG names another file.")
	fmt.Fprintln(w, "Run `hubd <command> --help` for a command's flags.")
}

// words joins subcommand names for messages.
func words(list ...string) string { return strings.Join(list, ", ") }
