package ui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// detailPage shows one session's facts and the tail of its server log.
// It lives inside the sessions view, which opens and closes it.
type detailPage struct {
	c      *Common
	s      wire.Session
	gone   bool // the session left the list: its server stopped
	tail   wire.LogTail
	loaded bool
	err    error // the last log fetch failed
	log    viewport.Model
	width  int
	height int
}

func newDetailPage(c *Common, s wire.Session) *detailPage {
	log := viewport.New()
	log.KeyMap = c.keys.viewport()
	return &detailPage{c: c, s: s, log: log}
}

func (d *detailPage) Refresh() tea.Cmd { return fetchLog(d.c.ctx, d.c.client, d.s.User, d.s.Server) }

// setSession follows a refresh of the sessions list.
func (d *detailPage) setSession(all []wire.Session) {
	for _, s := range all {
		if sessionKey(s) == sessionKey(d.s) {
			d.s, d.gone = s, false
			return
		}
	}
	d.gone = true
}

func (d *detailPage) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case logMsg:
		if msg.user != d.s.User {
			return nil
		}
		if msg.err != nil {
			d.err = msg.err
			return nil
		}
		// Follow the log like tail -f unless the user scrolled up.
		follow := !d.loaded || d.log.AtBottom()
		d.tail, d.err, d.loaded = msg.tail, nil, true
		lines := make([]string, len(msg.tail.Lines))
		for i, l := range msg.tail.Lines {
			lines[i] = clean(l)
		}
		d.log.SetContentLines(lines)
		if follow {
			d.log.GotoBottom()
		}
	case tea.KeyPressMsg:
		k := d.c.keys
		switch {
		case key.Matches(msg, k.Kill):
			if !d.gone {
				d.c.ask(stopPrompt(d.c, stopQuestion([]wire.Session{d.s}), []wire.Session{d.s}))
			}
		case key.Matches(msg, k.Top):
			d.log.GotoTop()
		case key.Matches(msg, k.Bottom):
			d.log.GotoBottom()
		default:
			var cmd tea.Cmd
			d.log, cmd = d.log.Update(msg)
			return cmd
		}
	}
	return nil
}

func (d *detailPage) Help() helpKeys {
	k := d.c.keys
	return helpKeys{
		short: []key.Binding{k.Back, k.Kill, k.Up, k.Down},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.Back, k.Kill},
		},
	}
}

// facts are the session's name/value pairs, most telling first.
func (d *detailPage) facts() [][2]string {
	s, now := d.s, d.c.now()
	state := stateText(s)
	if d.gone {
		state = "not running any more"
	}
	f := [][2]string{
		{"User", s.User},
		{"State", state},
		{"Started", stamp(now, s.Started) + " (" + ago(now, s.Started) + " ago)"},
		{"Idle", ago(now, lastActive(s))},
		{"Activity", stamp(now, s.LastActivity)},
		{"Proxy seen", stamp(now, s.ProxyActivity)},
		{"CPU", ifProcs(func(s wire.Session) string { return fmt.Sprintf("%.1f%%", s.CPUPercent) })(s)},
		{"Memory", ifProcs(func(s wire.Session) string { return bytesIEC(s.RSSBytes) })(s)},
		{"Processes", ifProcs(func(s wire.Session) string { return strconv.Itoa(s.Procs) })(s)},
		{"PID", ifProcs(func(s wire.Session) string { return strconv.Itoa(s.PID) })(s)},
		{"Spawner", orDash(clean(s.Spawner))},
		{"URL", clean(s.URL)},
	}
	if s.Server != "" {
		f = append(f[:1], append([][2]string{{"Server", s.Server}}, f[1:]...)...)
	}
	if s.Profile != "" {
		f = append(f, [2]string{"Profile", clean(s.Profile)})
	}
	if s.Address != "" {
		f = append(f, [2]string{"Address", clean(s.Address)})
	}
	if s.Unit != "" {
		f = append(f, [2]string{"Unit", clean(s.Unit)})
	}
	if s.Container != "" {
		// The cgroup's figures: PID is the hub's, not the container's.
		f = slices.DeleteFunc(f, func(kv [2]string) bool { return kv[0] == "PID" })
		id := s.ContainerID
		if len(id) > 12 {
			id = id[:12]
		}
		f = append(f, [2]string{"Container", clean(s.Container) + " " + orDash(clean(id))})
	}
	if s.JobID != "" {
		f = append(f, [2]string{"Slurm job", clean(s.JobID)}, [2]string{"Node", orDash(clean(s.Node))}, [2]string{"Job state", orDash(clean(s.JobState))})
	}
	if len(s.GPUs) > 0 {
		ids := make([]string, len(s.GPUs))
		for i, g := range s.GPUs {
			ids[i] = strconv.Itoa(g)
		}
		f = append(f, [2]string{"GPUs", strings.Join(ids, ", ")})
	}
	if s.GPUMemoryBytes != nil {
		f = append(f, [2]string{"GPU memory", gpuText(s)})
	}
	return f
}

// factWidth is the width of one column of facts: a 10-cell label and a
// value long enough for a date with its age.
const factWidth = 40

// renderFacts lays the facts out in as many columns as fit, so a wide
// terminal leaves more rows to the log.
func (d *detailPage) renderFacts() string {
	st := d.c.styles
	f := d.facts()
	cols := max(d.width/factWidth, 1)
	rows := (len(f) + cols - 1) / cols
	var out []string
	for r := range rows {
		var line strings.Builder
		for c := range cols {
			i := c*rows + r
			if i >= len(f) {
				break
			}
			cell := st.Label.Render(fmt.Sprintf("%-11s", f[i][0])) + f[i][1]
			if c < cols-1 {
				cell = padRight(cell, factWidth)
			}
			line.WriteString(cell)
		}
		out = append(out, line.String())
	}
	return strings.Join(out, "\n")
}

func (d *detailPage) logTitle() string {
	st := d.c.styles
	switch {
	case d.err != nil:
		return st.Error.Render(wrap("error: could not read the log: "+clean(d.err.Error()), d.width))
	case !d.loaded:
		return st.Muted.Render("Log: loading…")
	}
	n := len(d.tail.Lines)
	which := "all"
	if d.tail.Truncated {
		which = "last"
	}
	return st.Title.Render(fmt.Sprintf("Log: %s %d %s of %s", which, n, plural(n, "line", "lines"), clean(d.tail.Path)))
}

func (d *detailPage) head() string {
	title := d.c.styles.Title.Render("Sessions › " + sessionName(d.s))
	return title + "\n" + d.renderFacts() + "\n\n" + d.logTitle()
}

func (d *detailPage) SetSize(w, h int) {
	d.width, d.height = w, h
	d.log.SetWidth(w)
	d.log.SetHeight(max(h-lineCount(d.head()), 1))
}

func (d *detailPage) Render() string {
	body := d.log.View()
	if d.loaded && len(d.tail.Lines) == 0 {
		body = d.c.styles.Muted.Render("The log is empty.")
	}
	return d.head() + "\n" + body
}
