package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// sessionsPage lists the active servers, refreshed live, and opens a
// session's detail on enter.
type sessionsPage struct {
	c        *Common
	list     *listView[wire.Session]
	gpu      bool
	warnings []string
	detail   *detailPage // open detail, or nil
	width    int
	height   int
}

func newSessionsPage(c *Common) *sessionsPage {
	p := &sessionsPage{c: c}
	p.list = newListView(c, p.columns(), sessionKey, [2]string{"active server", "active servers"},
		"No active servers.").withMarks().sortOn(0)
	return p
}

// sessionKey tells sessions apart: a user may run named servers.
func sessionKey(s wire.Session) string { return s.User + "/" + s.Server }

// sessionName is how a session is named on screen and in confirmations.
func sessionName(s wire.Session) string {
	if s.Server == "" {
		return s.User
	}
	return s.User + "/" + s.Server
}

// lastActive is when the session last showed a sign of use, as the
// culler sees it: the later of the server's own report and the proxy's
// traffic, else its start.
func lastActive(s wire.Session) time.Time {
	t := s.LastActivity
	if s.ProxyActivity.After(t) {
		t = s.ProxyActivity
	}
	if t.IsZero() {
		return s.Started
	}
	return t
}

// stateText spells out a state, with what the hub is doing to it.
func stateText(s wire.Session) string {
	switch s.Pending {
	case "start":
		return "starting…"
	case "stop":
		return "stopping…"
	}
	return s.State
}

func (p *sessionsPage) columns() []column[wire.Session] {
	now := p.c.now
	cols := []column[wire.Session]{
		{title: "USER", width: 12, cell: sessionName, cmp: func(a, b wire.Session) int { return cmp.Compare(sessionName(a), sessionName(b)) }},
		{title: "STATE", width: 9, cell: stateText, cmp: func(a, b wire.Session) int { return cmp.Compare(stateText(a), stateText(b)) }},
		{title: "IDLE", width: 6, cell: func(s wire.Session) string { return ago(now(), lastActive(s)) },
			cmp: func(a, b wire.Session) int { return lastActive(b).Compare(lastActive(a)) }},
		{title: "UP", width: 6, cell: func(s wire.Session) string { return ago(now(), s.Started) },
			cmp: func(a, b wire.Session) int { return b.Started.Compare(a.Started) }},
		{title: "CPU", width: 6, cell: ifProcs(func(s wire.Session) string { return fmt.Sprintf("%.1f%%", s.CPUPercent) }),
			cmp: func(a, b wire.Session) int { return cmp.Compare(a.CPUPercent, b.CPUPercent) }},
		{title: "MEM", width: 6, cell: ifProcs(func(s wire.Session) string { return bytesIEC(s.RSSBytes) }),
			cmp: func(a, b wire.Session) int { return cmp.Compare(a.RSSBytes, b.RSSBytes) }},
		{title: "PROCS", width: 5, cell: ifProcs(func(s wire.Session) string { return strconv.Itoa(s.Procs) }),
			cmp: func(a, b wire.Session) int { return cmp.Compare(a.Procs, b.Procs) }},
	}
	cols = append(cols,
		column[wire.Session]{title: "PROFILE", width: 10, wide: true, cell: func(s wire.Session) string { return orDash(clean(s.Profile)) },
			cmp: func(a, b wire.Session) int { return cmp.Compare(a.Profile, b.Profile) }},
		column[wire.Session]{title: "NODE", width: 8, wide: true, cell: func(s wire.Session) string { return orDash(clean(s.Node)) },
			cmp: func(a, b wire.Session) int { return cmp.Compare(a.Node, b.Node) }},
		column[wire.Session]{title: "PID", width: 7, wide: true, cell: ifProcs(func(s wire.Session) string { return strconv.Itoa(s.PID) })},
		column[wire.Session]{title: "STARTED", width: 16, wide: true, cell: func(s wire.Session) string { return stamp(now(), s.Started) },
			cmp: func(a, b wire.Session) int { return a.Started.Compare(b.Started) }},
	)
	if p.gpu {
		cols = append(cols, column[wire.Session]{title: "GPU MEM", width: 7, cell: gpuText,
			cmp: func(a, b wire.Session) int { return cmp.Compare(gpuBytes(a), gpuBytes(b)) }})
	}
	return append(cols, column[wire.Session]{title: "URL", flex: 1, cell: func(s wire.Session) string { return clean(s.URL) }})
}

// ifProcs shows a process statistic only for a session with processes:
// a failed server, or one under a spawner the hub cannot see into, has
// none, and "0B" would read as a measurement.
func ifProcs(cell func(wire.Session) string) func(wire.Session) string {
	return func(s wire.Session) string {
		if s.Procs == 0 {
			return "-"
		}
		return cell(s)
	}
}

func gpuBytes(s wire.Session) int64 {
	if s.GPUMemoryBytes == nil {
		return -1
	}
	return *s.GPUMemoryBytes
}

func gpuText(s wire.Session) string {
	if s.GPUMemoryBytes == nil {
		return "-"
	}
	return bytesIEC(*s.GPUMemoryBytes)
}

func (p *sessionsPage) Refresh() tea.Cmd {
	cmd := fetchSessions(p.c.ctx, p.c.client)
	if p.detail != nil {
		return tea.Batch(cmd, p.detail.Refresh())
	}
	return cmd
}

func (p *sessionsPage) Typing() bool { return p.detail == nil && p.list.typing() }

func (p *sessionsPage) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.BackgroundColorMsg:
		p.list.setStyles()
	case tea.PasteMsg: // the root sends one only while the filter is typed
		p.list.update(msg)
	case sessionsMsg:
		if msg.err == nil && msg.sessions.GPU != p.gpu {
			p.gpu = msg.sessions.GPU
			p.list.cols = p.columns()
			if p.list.sortBy >= len(p.list.cols) || p.list.cols[p.list.sortBy].cmp == nil {
				p.list.sortBy = 0
			}
		}
		if msg.err == nil {
			p.warnings = msg.sessions.Warnings
		}
		p.list.setItems(msg.sessions.Sessions, msg.err)
		if p.detail != nil && msg.err == nil {
			p.detail.setSession(msg.sessions.Sessions)
		}
		p.SetSize(p.width, p.height)
	case opDoneMsg:
		for _, l := range msg.stopped {
			user, server, _ := strings.Cut(l, "/")
			delete(p.list.marks, user+"/"+server)
		}
		p.list.refreshRows()
		return p.Refresh()
	case tea.KeyPressMsg:
		if p.detail != nil {
			if key.Matches(msg, p.c.keys.Back) {
				p.detail = nil
				return nil
			}
			return p.detail.Update(msg)
		}
		return p.key(msg)
	case logMsg:
		if p.detail != nil {
			return p.detail.Update(msg)
		}
	}
	return nil
}

func (p *sessionsPage) key(msg tea.KeyPressMsg) tea.Cmd {
	k := p.c.keys
	switch {
	case p.list.typing():
		p.list.update(msg)
	case key.Matches(msg, k.Open):
		if s, ok := p.list.selected(); ok {
			p.detail = newDetailPage(p.c, s)
			p.detail.SetSize(p.width, p.height)
			return p.detail.Refresh()
		}
	case key.Matches(msg, k.Kill):
		p.askStop()
	default:
		p.list.update(msg)
	}
	return nil
}

// askStop asks to stop the marked servers, or the one under the cursor
// when none is marked, naming every one and saying how many of them the
// filter hides.
func (p *sessionsPage) askStop() {
	targets, hidden := p.list.marked()
	if len(targets) == 0 {
		s, ok := p.list.selected()
		if !ok {
			return
		}
		targets = []wire.Session{s}
	}
	q := stopQuestion(targets)
	if hidden > 0 {
		q += fmt.Sprintf(" (%d marked %s hidden by the filter)", hidden, plural(hidden, "server", "servers"))
	}
	p.c.ask(stopPrompt(p.c, q, targets))
}

// stopQuestion names the servers a stop will end: "user" for a default
// server, "user/server" for a named one.
func stopQuestion(targets []wire.Session) string {
	return "Stop the " + plural(len(targets), "server", "servers") + " of " + nameList(stopNames(targets)) + "?"
}

// stopNames name the servers a stop ends, sorted so the confirmation
// reads the same whatever the order of marking.
func stopNames(targets []wire.Session) []string {
	var out []string
	for _, s := range targets {
		out = append(out, sessionName(s))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func stopPrompt(c *Common, question string, targets []wire.Session) prompt {
	servers := stopNames(targets)
	return prompt{
		question: question,
		label:    "Stopping the " + plural(len(targets), "server", "servers") + " of " + nameList(servers) + "…",
		run:      stopCmd(c.ctx, c.client, servers),
	}
}

func (p *sessionsPage) SetSize(w, h int) {
	p.width, p.height = w, h
	p.list.setSize(w, h-lineCount(p.warningLines()))
	if p.detail != nil {
		p.detail.SetSize(w, h)
	}
}

func (p *sessionsPage) warningLines() string {
	if len(p.warnings) == 0 {
		return ""
	}
	var out []string
	for _, w := range p.warnings {
		out = append(out, p.c.styles.Warning.Render(wrap("warning: "+clean(w), p.width)))
	}
	return strings.Join(out, "\n")
}

func (p *sessionsPage) Render() string {
	if p.detail != nil {
		return p.detail.Render()
	}
	if w := p.warningLines(); w != "" {
		return w + "\n" + p.list.render()
	}
	return p.list.render()
}

func (p *sessionsPage) Help() helpKeys {
	if p.detail != nil {
		return p.detail.Help()
	}
	k := p.c.keys
	if p.list.typing() {
		return p.list.filterHelp()
	}
	return helpKeys{
		short: []key.Binding{k.Open, k.Mark, k.Kill, k.Filter},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.Open, k.Mark, k.MarkAll, k.Kill},
			{k.Filter, k.Back, k.Sort, k.Reverse},
		},
	}
}
