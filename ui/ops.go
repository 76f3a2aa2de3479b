package ui

import (
	"context"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// opDoneMsg ends an operation that changes the hub: the root shows text
// (or err) in the status line, then hands the message to the views so
// they refetch what changed.
type opDoneMsg struct {
	text string
	err  error
	// stopped are the servers stopped ("user" or "user/server"), so the
	// sessions view can drop their marks.
	stopped []string
	// envRepaired says the shared environment was repaired, so the hub
	// view checks it again.
	envRepaired bool
	// report is a share check's summary, for the shares view to show.
	report string
}

// progressMsg is one step of a streamed operation; next waits for the
// step after it.
type progressMsg struct {
	progress wire.Progress
	next     tea.Cmd
}

// opReason is recorded in the audit log with each stop.
const opReason = "stopped from hubtui"

// stopCmd stops servers named "user" or "user/server".
func stopCmd(ctx context.Context, c Client, servers []string) tea.Cmd {
	return func() tea.Msg {
		res, err := c.StopServers(ctx, wire.StopRequest{Servers: servers, Reason: opReason})
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("stop %s: %w", nameList(servers), err)}
		}
		return stopOutcome(res)
	}
}

// stopOutcome says what a stop did to each server, failures first.
func stopOutcome(res wire.StopResult) opDoneMsg {
	var parts, fails []string
	for _, f := range res.Failed {
		fails = append(fails, f.User+": "+clean(f.Error))
	}
	if len(res.Stopped) > 0 {
		parts = append(parts, "Stopped the "+plural(len(res.Stopped), "server", "servers")+" of "+nameList(res.Stopped)+".")
	}
	if len(res.NotRunning) > 0 {
		parts = append(parts, nameList(res.NotRunning)+" had no server running.")
	}
	done := opDoneMsg{text: strings.Join(parts, " "), stopped: res.Stopped}
	if len(fails) > 0 {
		done.err = fmt.Errorf("could not stop %s", strings.Join(fails, "; "))
	}
	return done
}

func verifyCmd(ctx context.Context, c Client, name string) tea.Cmd {
	return func() tea.Msg {
		b, err := c.VerifyBackup(ctx, name)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("verify %s: %w", name, err)}
		}
		if b.Error != "" {
			return opDoneMsg{err: fmt.Errorf("verify %s: %s", name, clean(b.Error))}
		}
		return opDoneMsg{text: fmt.Sprintf("%s is intact (schema %d, hubd %s).", name, b.SchemaVersion, clean(b.HubdVersion))}
	}
}

func restoreCmd(ctx context.Context, c Client, name string) tea.Cmd {
	return func() tea.Msg {
		if err := c.RestoreBackup(ctx, name); err != nil {
			return opDoneMsg{err: fmt.Errorf("restore %s: %w", name, err)}
		}
		return opDoneMsg{text: "Restored " + name + "."}
	}
}

func upgradeCmd(ctx context.Context, c Client) tea.Cmd {
	return func() tea.Msg {
		plan, err := c.RunUpgrade(ctx)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("upgrade: %w", err)}
		}
		return opDoneMsg{text: clean(plan.Message)}
	}
}

// backupCmd makes a backup, reporting each step as a progressMsg.
func backupCmd(ctx context.Context, c Client, label string) tea.Cmd {
	return streamCmd(ctx, func(progress func(wire.Progress)) tea.Msg {
		b, err := c.CreateBackup(ctx, label, progress)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("backup: %w", err)}
		}
		return opDoneMsg{text: fmt.Sprintf("Backed up to %s (%s).", b.Name, bytesIEC(b.Size))}
	})
}

// streamCmd runs an operation that reports progress: run gets a callback
// to report each step as a progressMsg and returns the final message. The
// steps come from run's own goroutine and travel over a channel that each
// message's next command reads, so Update never blocks.
func streamCmd(ctx context.Context, run func(progress func(wire.Progress)) tea.Msg) tea.Cmd {
	ch := make(chan tea.Msg, 1)
	next := func() tea.Msg {
		select {
		case m := <-ch:
			return m
		case <-ctx.Done():
			return nil
		}
	}
	send := func(m tea.Msg) {
		select {
		case ch <- m:
		case <-ctx.Done():
		}
	}
	return func() tea.Msg {
		go func() {
			send(run(func(p wire.Progress) { send(progressMsg{p, next}) }))
		}()
		return next()
	}
}
