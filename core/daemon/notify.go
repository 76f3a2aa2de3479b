package daemon

import (
	"context"
	"io"
	"log/slog"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"

	"github.com/hubd/hubd/internal/tick"
)

// Notifier speaks sd_notify. Without systemd (no NOTIFY_SOCKET) every call
// is a cheap no-op, so hubd runs the same with or without it.
type Notifier struct {
	log *slog.Logger
}

// NewNotifier returns a notifier that logs delivery failures to log.
func NewNotifier(log *slog.Logger) *Notifier { return &Notifier{log: log} }

func (n *Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Debug("sd_notify", "state", state, "err", err)
	}
}

// Ready says listeners and the store are up and routes are restored.
func (n *Notifier) Ready(status string) { n.send(daemon.SdNotifyReady + "\nSTATUS=" + status) }

// Status updates the one-line status `systemctl status` shows.
func (n *Notifier) Status(status string) { n.send("STATUS=" + status) }

// Reloading announces a restart in place (the PID stays the same).
func (n *Notifier) Reloading() {
	n.send(daemon.SdNotifyReloading + "\nMONOTONIC_USEC=" + monotonicUsec())
}

// Stopping announces a shutdown.
func (n *Notifier) Stopping() { n.send(daemon.SdNotifyStopping) }

// Watchdog pings systemd at half the WatchdogSec interval until ctx ends;
// healthy is asked first, so a wedged hub stops pinging and gets restarted.
func (n *Notifier) Watchdog(ctx context.Context, healthy func(context.Context) error) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	tick.Every(ctx, interval/2, func() {
		cctx, cancel := context.WithTimeout(ctx, interval/4)
		err := healthy(cctx)
		cancel()
		if err != nil {
			n.log.Warn("watchdog: not pinging systemd", "err", err)
			return
		}
		n.send(daemon.SdNotifyWatchdog)
	})
}

// LogHandler is the process's slog handler: text on w, without the time
// when w is the journal (journald stamps every line itself).
func LogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if ok, _ := journal.StderrIsJournalStream(); ok {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.NewTextHandler(w, opts)
}
