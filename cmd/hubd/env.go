package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
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

// parse parses flags and reports the exit code to use when parsing ended
// the command (help requested or bad flags).
func parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
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
	return config.Load(path, explicit)
}

// fail prints an error in the one-line form every subcommand uses.
func (e *env) fail(format string, args ...any) int {
	fmt.Fprintf(e.stderr, "hubd: "+format+"\n", args...)
	return 1
}

// logger builds the process logger: text on stderr at the configured level.
func (e *env) logger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: l}))
}
