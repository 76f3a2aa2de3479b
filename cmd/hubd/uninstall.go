package main

import (
	"context"
	"os"

	"github.com/hubd/hubd/core/host"
)

func cmdUninstall(ctx context.Context, e *env, args []string) int {
	fs := e.flags("uninstall", "uninstall [--purge] [--config PATH]", `
Remove what setup installed: the sudoers rule first, then the PAM service,
the systemd unit (stopped and disabled), the restart-hub alias, the spawn
helper and the runtime directory. The configuration, database, logs,
backups, shared environment, the hub user and the groups are kept, so
setup can bring the hub back as it was.

With --purge those go too, but only what setup created itself: an account,
group or directory that existed before setup is never removed. Run as root.`)
	names := nameFlags(fs)
	purge := fs.Bool("purge", false, "also remove the data, backups, logs, shared environment, configuration, accounts and groups setup created")
	if code, done := parse(fs, args); done {
		return code
	}
	if os.Geteuid() != 0 {
		return e.fail("uninstall removes system files, so it must run as root: run `sudo hubd uninstall`")
	}
	o, err := e.hostOptions(names)
	if err != nil {
		return e.fail("%v", err)
	}
	if err := host.Uninstall(ctx, o, *purge, e.stdout); err != nil {
		return 1
	}
	return 0
}
