package main

import (
	"context"
	"fmt"

	"github.com/hubd/hubd/core/config"
)

func cmdConfig(_ context.Context, e *env, args []string) int {
	fs := e.flags("config show|check", "config show|check [--config PATH]", `
show   print the effective configuration as TOML: the defaults merged with the
       file. Redirect it to a file to start a new configuration.
check  validate the file and exit non-zero, printing file:line and a hint for
       every problem.`)
	if code, done := parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	switch fs.Arg(0) {
	case "show":
		cfg, err := e.loadConfig()
		if err != nil {
			return e.fail("%v", err)
		}
		if err := cfg.Write(e.stdout); err != nil {
			return e.fail("%v", err)
		}
		return 0
	case "check":
		path, _ := config.Resolve(e.configFlag, e.getenv)
		if _, err := config.Load(path, true); err != nil {
			fmt.Fprintln(e.stderr, err)
			return 1
		}
		fmt.Fprintf(e.stdout, "%s: ok\n", path)
		return 0
	default:
		return e.fail("unknown config action %q; use show or check", fs.Arg(0))
	}
}
