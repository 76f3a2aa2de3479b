package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/hubd/hubd/core/config"
)

// env carries what every subcommand gets from the process: standard
// streams, the environment and the configuration flag.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	configFlag     string
}

// flags starts a subcommand's flag set with the common --config flag.
func (e *env) flags(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("hubd "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&e.configFlag, "config", "", "configuration file (default $HUBD_CONFIG, else "+config.DefaultPath+")")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hubd %s\n\n%s\n\nFlags:\n", synopsis, strings.TrimSpace(about))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags (before or after positional arguments, so
// `hubd config check --config x` works) and reports the exit code to use
// when parsing ended the command (help requested or bad flags).
func parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(flagsFirst(fs, args)); err != nil {
		if err == flag.ErrHelp {
			return 0, true
		}
		return 2, true
	}
	return 0, false
}

// loadConfig reads the configuration named by --config or $HUBD_CONFIG, or
// the defaults merged with /etc/hubd/hubd.toml when that file exists.
func (e *env) loadConfig() (config.Config, error) {
	path, explicit := config.Resolve(e.configFlag, e.getenv)
	cfg, err := config.Load(path, explicit)
	var bad *config.Error
	if errors.As(err, &bad) {
		return cfg, fmt.Errorf("invalid configuration (`hubd config check` explains each line):\n%w", err)
	}
	return cfg, err
}

// fail prints an error in the one-line form every subcommand uses.
func (e *env) fail(format string, args ...any) int {
	fmt.Fprintf(e.stderr, "hubd: "+format+"\n", args...)
	return 1
}

// flagsFirst moves flags (and their values) ahead of positional arguments;
// "--" ends flag parsing as usual.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return append(flags, rest...)
}

// action is one verb of a command that has several (hubd backup create).
type action struct {
	name string
	run  func(ctx context.Context, e *env, args []string) int
}

// dispatch runs the action args[0] names. With no action it prints usage
// and fails (2); asked for help it prints usage and succeeds.
func (e *env) dispatch(ctx context.Context, cmd, usage string, actions []action, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	names := make([]string, 0, len(actions))
	for _, a := range actions {
		if a.name == args[0] {
			return a.run(ctx, e, args[1:])
		}
		names = append(names, a.name)
	}
	return e.fail("unknown %s action %q; use %s", cmd, args[0], words(names...))
}
