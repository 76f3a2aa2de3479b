// Command hubtui is the terminal console for hubd: ssh to the server and
// type hubtui. It talks to the running hub over its unix admin socket;
// what it may do there is decided by the hub from the caller's uid.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/sharedenv"
	"github.com/hubd/hubd/internal/version"
	"github.com/hubd/hubd/ui"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv, runUI)
	stop()
	os.Exit(code)
}

// config is what the flags decide.
type config struct {
	socket   string
	readOnly bool
	refresh  time.Duration
	noColor  bool
}

// runUI runs the console on the terminal until the user quits.
func runUI(ctx context.Context, cfg config, stderr io.Writer) error {
	var mu sync.Mutex
	var mismatch string
	c := &client.Client{Socket: cfg.socket, OnVersionMismatch: func(mine, hub string) {
		mu.Lock()
		mismatch = fmt.Sprintf("note: hubtui %s talked to hubd %s; after an upgrade, restart the hub (hubd restart) so both match", mine, hub)
		mu.Unlock()
	}}
	m := ui.New(ui.Options{Client: c, Socket: cfg.socket, ReadOnly: cfg.readOnly, Refresh: cfg.refresh, NoColor: cfg.noColor,
		Repair: repairer(os.Geteuid())})
	_, err := tea.NewProgram(m, tea.WithContext(ctx)).Run()
	mu.Lock()
	if mismatch != "" {
		fmt.Fprintln(stderr, mismatch)
	}
	mu.Unlock()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // SIGTERM or SIGHUP (the ssh session went away)
	}
	return err
}

// repairer repairs the shared environment in this process, which only
// root may do: the repair changes the group and modes of every member's
// files, and the hub's own account may not.
func repairer(euid int) ui.EnvRepairer {
	if euid != 0 {
		return nil
	}
	return func(ctx context.Context, path, group string, walked func(int)) (wire.EnvReport, error) {
		rep, err := sharedenv.New(sharedenv.Options{Path: path, Group: group, Walked: walked}).Repair(ctx, 5)
		return rep.Wire(), err
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string,
	runUI func(context.Context, config, io.Writer) error) int {
	fs := flag.NewFlagSet("hubtui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.socket, "socket", wire.DefaultSocket, "the hub's admin socket (config admin.socket)")
	fs.BoolVar(&cfg.readOnly, "readonly", false, "hide every action that changes the hub")
	fs.DurationVar(&cfg.refresh, "refresh", 2*time.Second, "how often the views are fetched again; 0 only on start and on r")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hubtui [--socket PATH] [--readonly] [--refresh DURATION]\n\n"+
			"The terminal console of a running hubd. Keys: ? shows them all, q quits.\n"+
			"Colours follow the terminal's background; NO_COLOR turns them off.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hubtui: unexpected argument %q; run `hubtui --help` for the flags\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "hubtui %s (commit %s, %s)\n", version.Version, version.CommitOrUnknown(), version.Go())
		return 0
	}
	if cfg.refresh < 0 {
		fmt.Fprintf(stderr, "hubtui: --refresh %s: must not be negative (0 turns the refresh off)\n", cfg.refresh)
		return 2
	}
	cfg.noColor = getenv("NO_COLOR") != ""
	if err := runUI(ctx, cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "hubtui: %v\n", err)
		return 1
	}
	return 0
}
