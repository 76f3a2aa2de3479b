package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// EnvRepairer repairs the shared environment at path for group on this
// machine, calling walked with the paths seen so far. hubtui passes one
// only when it runs as root: the repair changes the group and modes of
// every member's files, which the hub's own account may not do.
type EnvRepairer func(ctx context.Context, path, group string, walked func(paths int)) (wire.EnvReport, error)

// envRecheck is how old a shared-environment check may get before the
// periodic refresh walks the tree again (a walk reads every inode).
const envRecheck = time.Minute

// hubPage is the hub as a whole: restart it in place (R, confirmed), and
// the shared Python environment's health, checked by the hub (c checks
// again) and repaired with a progress bar (f, confirmed; root only).
type hubPage struct {
	textView
	c        *Common
	repair   EnvRepairer
	env      wire.SharedEnv
	fetching bool
	err      error
}

func newHubPage(c *Common, repair EnvRepairer) *hubPage {
	p := &hubPage{c: c, repair: repair}
	p.textView = newTextView(c, p.head, p.body)
	return p
}

// sharedEnvMsg carries the hub's check of the shared environment.
type sharedEnvMsg struct {
	env wire.SharedEnv
	err error
}

// envCheckTimeout bounds the hub's walk of the environment: a large tree
// on a slow disk takes longer than an ordinary read.
const envCheckTimeout = 2 * time.Minute

func fetchSharedEnv(ctx context.Context, c Client) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, envCheckTimeout)
		defer cancel()
		env, err := c.SharedEnv(ctx)
		return sharedEnvMsg{env, err}
	}
}

// Refresh checks the environment again when the last check is older than
// envRecheck; check forces it.
func (p *hubPage) Refresh() tea.Cmd {
	if p.loaded && p.c.now().Sub(p.env.Checked) < envRecheck {
		return nil
	}
	return p.check()
}

func (p *hubPage) check() tea.Cmd {
	if p.fetching {
		return nil
	}
	p.fetching = true
	return fetchSharedEnv(p.c.ctx, p.c.client)
}

func (p *hubPage) Typing() bool { return false }

func (p *hubPage) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case sharedEnvMsg:
		p.fetching = false
		if msg.err != nil {
			p.err = msg.err
			break
		}
		p.env, p.err = msg.env, nil
		p.show()
	case opDoneMsg:
		if msg.envRepaired {
			p.loaded = false
			return p.check()
		}
	case tea.KeyPressMsg:
		k := p.c.keys
		switch {
		case key.Matches(msg, k.RestartHub):
			p.askRestart()
		case key.Matches(msg, k.RepairEnv):
			p.askRepair()
		case key.Matches(msg, k.CheckEnv):
			if cmd := p.check(); cmd != nil {
				p.c.notify("Checking the shared environment…")
				return cmd
			}
		default:
			return p.scroll(msg)
		}
	}
	return nil
}

func (p *hubPage) askRestart() {
	p.c.ask(prompt{
		question: "Restart the hub in place?",
		note:     "The hub hands its listening sockets to a fresh copy of the installed hubd: no connection is refused and every user's server keeps running. Pages reload for a second or two.",
		label:    "Restarting the hub…",
		run:      restartCmd(p.c.ctx, p.c.client),
	})
}

func (p *hubPage) askRepair() {
	switch {
	case !p.loaded:
		return
	case !p.env.Enabled || !p.env.Exists:
		p.c.notify("There is no shared environment to repair.")
		return
	case p.repair == nil:
		p.c.notify("Repairing changes other members' files and needs root: run `sudo hubd env repair`, or start hubtui with sudo.")
		return
	case p.env.Health.Healthy():
		p.c.notify("Nothing to repair: everything is shared with group " + clean(p.env.Group) + ".")
		return
	}
	h := p.env.Health
	p.c.ask(prompt{
		question: fmt.Sprintf("Repair the shared environment %s (%d %s)?", clean(p.env.Path), h.Remaining(), plural(h.Remaining(), "problem", "problems")),
		note:     "Every file and directory is given group " + clean(p.env.Group) + ", group read and write, setgid on directories and the default ACL. Symlinks and files with several hard links are left alone.",
		label:    "Repairing the shared environment…",
		run:      repairCmd(p.c.ctx, p.repair, p.env.Path, p.env.Group, h.Entries()),
	})
}

// restartCmd asks the hub to restart in place. The hub answers before it
// goes; the views refetch from the new process once it is up.
func restartCmd(ctx context.Context, c Client) tea.Cmd {
	return func() tea.Msg {
		res, err := c.Restart(ctx, "from hubtui")
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("restart: %w", err)}
		}
		return opDoneMsg{text: clean(res.Message) + "."}
	}
}

// repairCmd repairs the environment here, reporting progress against the
// size of the last check.
func repairCmd(ctx context.Context, repair EnvRepairer, path, group string, total int) tea.Cmd {
	return streamCmd(ctx, func(progress func(wire.Progress)) tea.Msg {
		rep, err := repair(ctx, path, group, func(n int) {
			progress(wire.Progress{Stage: "files and directories", Done: int64(n), Total: int64(max(total, n))})
		})
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("repair %s: %w", path, err), envRepaired: true}
		}
		fixed := 0
		for _, pr := range rep.Problems {
			fixed += pr.Fixed
		}
		text := fmt.Sprintf("Repaired %s: fixed %d %s in %d paths.", path, fixed, plural(fixed, "problem", "problems"), rep.Entries())
		done := opDoneMsg{text: text, envRepaired: true}
		if !rep.Healthy() {
			done.err = errors.New(text + fmt.Sprintf(" %d left that need a look by hand (hard links, unreadable paths): see `hubd env check`.", rep.Remaining()+rep.Errors))
		}
		return done
	})
}

// body is the environment's state as text, for the viewport.
func (p *hubPage) body() string {
	st := p.c.styles
	e := p.env
	var b strings.Builder
	// Values wrap under themselves, past the 14-cell label column.
	line := func(label, text string) {
		text = strings.ReplaceAll(wrap(text, max(p.width-14, 20)), "\n", "\n"+strings.Repeat(" ", 14))
		fmt.Fprintf(&b, "%s %s\n", st.Label.Render(fmt.Sprintf("  %-11s", label)), text)
	}
	if !e.Enabled {
		b.WriteString("  Turned off (shared_env.enabled = false).\n")
		return b.String()
	}
	fmt.Fprintf(&b, "%s %s (group %s)\n", st.Title.Render("Shared environment"), clean(e.Path), clean(e.Group))
	if !e.Exists {
		b.WriteString("  Not created yet: run `sudo hubd env init`.\n")
		return b.String()
	}
	h := e.Health
	py := clean(e.PythonVersion)
	if py == "" {
		py = st.Error.Render("python does not run")
	}
	if e.IPyKernel {
		py += ", ipykernel imports"
	} else {
		py += ", " + st.Error.Render("ipykernel missing: the kernel will not start")
	}
	line("Python", py)
	line("Contents", fmt.Sprintf("%d packages · %s in %d files and %d directories", e.Packages, bytesIEC(h.Bytes), h.Files, h.Dirs))
	if e.KernelRegistered {
		line("Kernel", "registered at "+clean(e.KernelSpec))
	} else {
		line("Kernel", st.Warning.Render("not registered ("+clean(e.KernelSpec)+"): run `sudo hubd env init`"))
	}
	line("POSIX ACLs", map[bool]string{true: "yes", false: "no: setgid and group modes only"}[h.ACLSupported])
	checked := " (checked " + ago(p.c.now(), e.Checked) + " ago)"
	if h.Healthy() {
		line("Health", st.Success.Render("ok: everything is shared with group "+clean(e.Group))+checked)
		return b.String()
	}
	fix := "f repairs it"
	if p.repair == nil {
		fix = "repair as root: sudo hubd env repair (or hubtui under sudo)"
	}
	line("Health", st.Error.Render(fmt.Sprintf("%d %s, %d %s", h.Remaining(), plural(h.Remaining(), "problem", "problems"),
		h.Errors, plural(h.Errors, "error", "errors")))+checked+"; "+fix)
	for _, pr := range h.Problems {
		fmt.Fprintf(&b, "    %s: %d\n", clean(pr.Description), pr.Count-pr.Fixed)
		for _, ex := range pr.Examples {
			fmt.Fprintf(&b, "      %s\n", st.Muted.Render(clean(ex)))
		}
	}
	for _, ex := range h.ErrorExamples {
		fmt.Fprintf(&b, "    %s\n", st.Muted.Render(clean(ex)))
	}
	return b.String()
}

func (p *hubPage) head() string {
	st := p.c.styles
	lines := []string{st.Title.Render("Hub"),
		wrap("R restarts the hub in place: its sockets are handed over, so no connection is refused and users' servers keep running.", p.width), ""}
	switch {
	case p.err != nil:
		lines = append(lines, st.Error.Render(wrap("shared environment: "+clean(p.err.Error()), p.width)))
	case !p.loaded:
		lines = append(lines, st.Muted.Render("checking the shared environment…"))
	}
	return strings.Join(lines, "\n")
}

func (p *hubPage) Help() helpKeys {
	k := p.c.keys
	return helpKeys{
		short: []key.Binding{k.RestartHub, k.CheckEnv, k.RepairEnv},
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.RestartHub, k.CheckEnv, k.RepairEnv}},
	}
}
