package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/host"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/fsutil"
)

func cmdUninstall(ctx context.Context, e *env, args []string) int {
	fs := e.flags("uninstall", "uninstall [--purge] [--config PATH]", `
Remove what setup installed. First the hub is stopped (if it runs outside
systemd it gets SIGTERM) and every user server it started is stopped the
way the hub stops one (asked to exit, killed only after
spawner.stop_timeout), since nothing could reach or stop them afterwards.
Then the sudoers rule, the PAM service, the systemd unit (disabled), the
restart-hub alias, the spawn helper and the runtime directory go. The
configuration, database, logs, backups, shared environment, the hub user
and the groups are kept, so setup can bring the hub back as it was. On a
host set up by the Debian package, the files the package installs are left
to dpkg.

With --purge those go too, but only what setup created itself: an account,
group or directory that existed before setup is never removed. Run as root.`)
	names := nameFlags(fs)
	purge := fs.Bool("purge", false, "also remove the data, backups, logs, shared environment, configuration, accounts and groups setup created")
	packaged := fs.Bool("packaged", false, "the hubd Debian package runs uninstall: leave the files it installs to dpkg (as setup recorded)")
	plan := fs.String("purge-plan", "", "instead of purging, write what --purge would remove to `FILE` (for the Debian package's postrm, which purges after hubd itself is gone)")
	if code, done := parse(fs, args); done {
		return code
	}
	if *purge && *plan != "" {
		return e.fail("--purge removes now and --purge-plan writes down what to remove later: give one of them")
	}
	if os.Geteuid() != 0 {
		return e.fail("uninstall removes system files, so it must run as root: run `sudo hubd uninstall`")
	}
	o, err := e.hostOptions(names)
	if ce := (*config.Error)(nil); errors.As(err, &ce) {
		// A configuration edited into an invalid one must not keep the
		// package from being removed: what setup created is in its
		// record, and the rest falls back on the default settings.
		fmt.Fprintf(e.stderr, "hubd: warning: %v\nhubd: uninstalling with the default settings and what setup recorded; a hub or servers running elsewhere than the defaults say must be stopped by hand\n", err)
		o.Config, err = config.Default(), nil
		o.Config.Source = o.ConfigPath
	}
	if err != nil {
		return e.fail("%v", err)
	}
	o.Packaged = o.Packaged || *packaged
	o.StopServers = func(ctx context.Context) (string, error) { return stopHubAndServers(ctx, o.Config, o.Logger) }
	if err := host.Uninstall(ctx, o, host.UninstallMode{Purge: *purge, PurgePlan: *plan}, e.stdout); err != nil {
		return 1
	}
	return 0
}

// hubStopWait bounds how long uninstall waits for a running hub to exit
// after SIGTERM (it drains its connections first).
const hubStopWait = time.Minute

// stopHubAndServers stops a hub still running on the database (SIGTERM to
// the pid in its lock file), then every server the database says is
// active, through the spawner that started it.
func stopHubAndServers(ctx context.Context, cfg config.Config, log *slog.Logger) (string, error) {
	if _, err := os.Stat(cfg.Data.DB); errors.Is(err, fs.ErrNotExist) {
		return "none", nil
	}
	path := fsutil.LockPath(cfg.Data.DB)
	var what []string
	lock, pid, err := fsutil.TryLock(path)
	switch {
	case errors.Is(err, fsutil.ErrLocked) && pid > 0:
		if lock, err = fsutil.StopHolder(ctx, path, pid, hubStopWait); err != nil {
			return "", fmt.Errorf("stop the running hub: %w: stop it yourself (systemctl stop hubd)", err)
		}
		what = append(what, fmt.Sprintf("the hub (pid %d)", pid))
	case err != nil:
		return "", fmt.Errorf("a hub holds %s but recorded no pid (%w): stop it yourself (systemctl stop hubd)", path, err)
	}
	defer lock.Release()
	st, err := store.Open(ctx, cfg.Data.DB, store.Options{})
	if err != nil {
		return "", err
	}
	defer st.Close()
	spawners, err := server.NewSpawners(cfg, log)
	if err != nil {
		return "", err
	}
	h := hub.New(hub.Options{Config: cfg, Store: st, Spawners: spawners, Routes: proxy.NewTable(), Logger: log})
	users, err := h.StopAll(ctx, "hubd was uninstalled", "root")
	if err != nil {
		return "", fmt.Errorf("%w: fix that, or stop the server yourself, and run uninstall again", err)
	}
	if len(users) > 0 {
		what = append(what, "the servers of "+strings.Join(users, ", "))
	}
	if len(what) == 0 {
		return "none", nil
	}
	return "stopped " + strings.Join(what, " and "), nil
}
