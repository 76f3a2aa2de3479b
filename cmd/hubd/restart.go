package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hubd/hubd/core/admin/client"
)

func cmdRestart(ctx context.Context, e *env, args []string) int {
	fs := e.flags("restart", "restart [--reason TEXT] [--no-wait] [--config PATH]", `
Ask the running hub to restart itself in place: it hands its listening
sockets to a fresh copy of the installed hubd binary, so no connection is
refused and every user's server keeps running. Members of the hub's group
may run it (the restart-hub alias calls it); it is rate limited and written
to the audit log with your uid.`)
	reason := fs.String("reason", "", "why, for the audit log")
	noWait := fs.Bool("no-wait", false, "return once the hub has accepted the request")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the hub to be back")
	if code, done := parse(fs, args); done {
		return code
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return e.fail("%v", err)
	}
	c := &client.Client{Socket: cfg.Admin.Socket}
	before, err := c.Status(ctx)
	if err != nil {
		return e.fail("%v", err)
	}
	res, err := c.Restart(ctx, *reason)
	var api *client.APIError
	if errors.As(err, &api) && api.RetryAfter > 0 {
		return e.fail("%v (try again in %s)", err, api.RetryAfter)
	}
	if err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintln(e.stdout, res.Message)
	if *noWait {
		return 0
	}
	// The hub is back when a new process (a later start time) answers.
	deadline := time.Now().Add(*timeout)
	fresh := &client.Client{Socket: cfg.Admin.Socket}
	for time.Now().Before(deadline) {
		st, err := fresh.Status(ctx)
		if err == nil && st.Started.After(before.Started) {
			fmt.Fprintf(e.stdout, "hub restarted: version %s, %d servers running\n", st.Version, st.Servers["running"])
			return 0
		}
		select {
		case <-ctx.Done():
			return e.fail("interrupted while waiting for the hub")
		case <-time.After(200 * time.Millisecond):
		}
	}
	return e.fail("the hub did not come back within %s: see `journalctl -u hubd`", *timeout)
}
