// Package ui is hubtui, the terminal console for a running hubd: the hub
// status, the active servers (stop one or many), their logs, backups,
// the database upgrade, the audit log, API tokens, the hub itself
// (restart it, check and repair the shared environment) and the users
// (make or unmake an admin, delete one). It talks to the hub only
// through the admin API client, in tea.Cmds, so Update never blocks.
package ui

import (
	"context"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hubd/hubd/core/admin/wire"
)

// state is where the console stands with the hub.
type state int

const (
	stateConnecting  state = iota // nothing heard from the hub yet
	stateReady                    // the views are up
	stateUnreachable              // the hub cannot be reached: a screen says why and how to fix it
)

// Model is the console's root model: the header, the views under their
// tabs, the confirmation and the status line.
type Model struct {
	c      *Common
	cancel context.CancelFunc

	state  state
	err    error // why the hub is unreachable
	width  int
	height int

	status    wire.Status
	statusErr error

	active pageID
	pages  [numPages]page

	prompt   *prompt
	busy     string         // the running operation; "" when none
	progress *wire.Progress // its last step, when it reports steps
	flash    string
	flashErr bool

	spin spinner.Model
	help help.Model
}

// New builds the console.
func New(o Options) Model {
	ctx, cancel := context.WithCancel(context.Background())
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Socket == "" {
		o.Socket = wire.DefaultSocket
	}
	c := &Common{
		ctx: ctx, client: o.Client, now: o.Now, noColor: o.NoColor,
		styles: NewStyles(true, o.NoColor), keys: DefaultKeyMap(),
		flagRO: o.ReadOnly, readOnly: o.ReadOnly, refresh: o.Refresh, socket: o.Socket,
	}
	c.keys.SetReadOnly(o.ReadOnly)
	m := Model{
		c: c, cancel: cancel,
		spin: spinner.New(spinner.WithSpinner(spinner.Line)),
		help: help.New(),
	}
	m.pages = [numPages]page{newSessionsPage(c), newBackupsPage(c), newUpgradePage(c), newAuditPage(c), newTokensPage(c),
		newHubPage(c, o.Repair), newUsersPage(c), newSharesPage(c)}
	m.help.Styles = c.styles.Help
	return m
}

// Init asks the hub who we are and how it is, and starts the refresh.
func (m Model) Init() tea.Cmd {
	return tea.Batch(m.connect(), m.spin.Tick, m.tick(), tea.RequestBackgroundColor)
}

func (m Model) connect() tea.Cmd {
	return tea.Batch(fetchWhoAmI(m.c.ctx, m.c.client), fetchStatus(m.c.ctx, m.c.client))
}

func (m Model) tick() tea.Cmd {
	if m.c.refresh <= 0 {
		return nil
	}
	return tea.Tick(m.c.refresh, func(time.Time) tea.Msg { return tickMsg{} })
}

// refresh fetches the status and what the current view shows.
func (m Model) refresh() tea.Cmd {
	return tea.Batch(fetchStatus(m.c.ctx, m.c.client), m.page().Refresh())
}

func (m Model) page() page { return m.pages[m.active] }

// Update handles one message; see the type switch for who handles what.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.layout()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return nil
	case tea.BackgroundColorMsg:
		m.c.styles = NewStyles(msg.IsDark(), m.c.noColor)
		m.help.Styles = m.c.styles.Help
		if m.prompt != nil {
			m.prompt.input.SetStyles(m.c.styles.Input)
		}
		return m.toPages(msg)
	case tea.KeyPressMsg:
		return m.key(msg)
	case tea.PasteMsg:
		if m.prompt != nil {
			m.prompt.update(msg, m.c.keys)
			return nil
		}
		if m.state == stateReady && m.page().Typing() {
			return m.page().Update(msg)
		}
		return nil
	case spinner.TickMsg:
		if m.busy == "" && m.state != stateConnecting {
			return nil // let the spinner stop
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return cmd
	case tickMsg:
		if m.state == stateReady {
			return tea.Batch(m.tick(), m.refresh())
		}
		return tea.Batch(m.tick(), m.connect())
	case whoamiMsg:
		if msg.err != nil {
			m.state, m.err = stateUnreachable, msg.err
			return nil
		}
		m.c.setRole(msg.who)
		if m.state != stateReady {
			m.state, m.err = stateReady, nil
			return m.page().Refresh()
		}
		return nil
	case statusMsg:
		if m.unreachable(msg.err) {
			return nil
		}
		if msg.err == nil {
			m.status = msg.status
		}
		m.statusErr = msg.err
		return nil
	case progressMsg:
		m.progress = &msg.progress
		return msg.next
	case opDoneMsg:
		m.busy, m.progress = "", nil
		m.flash, m.flashErr = msg.text, msg.err != nil
		if msg.err != nil {
			m.flash = "error: " + clean(msg.err.Error())
		}
		return tea.Batch(fetchStatus(m.c.ctx, m.c.client), m.toPages(msg))
	case sessionsMsg:
		return m.data(msg.err, pageSessions, msg)
	case logMsg:
		return m.data(msg.err, pageSessions, msg)
	case backupsMsg:
		return m.data(msg.err, pageBackups, msg)
	case planMsg:
		return m.data(msg.err, pageUpgrade, msg)
	case eventsMsg:
		return m.data(msg.err, pageAudit, msg)
	case usersMsg:
		return m.data(msg.err, pageUsers, msg)
	case tokensMsg, tokenIssuedMsg:
		var err error
		if tm, ok := msg.(tokensMsg); ok {
			err = tm.err
		}
		return m.data(err, pageTokens, msg)
	case sharedEnvMsg:
		// The view hears even of an unreachable hub: it tracks its check.
		cmd := m.pages[pageHub].Update(msg)
		m.unreachable(msg.err)
		return cmd
	case sharesMsg:
		return m.data(msg.err, pageShares, msg)
	}
	return nil
}

// data hands a fetched answer to its view, unless the hub has become
// unreachable: then the problem screen takes over.
func (m *Model) data(err error, to pageID, msg tea.Msg) tea.Cmd {
	if m.unreachable(err) {
		return nil
	}
	return m.pages[to].Update(msg)
}

func (m *Model) unreachable(err error) bool {
	if err == nil || !unreachable(err) {
		return false
	}
	m.state, m.err = stateUnreachable, err
	return true
}

// toPages hands a message every view may care about to all of them.
func (m *Model) toPages(msg tea.Msg) tea.Cmd {
	var cmds []tea.Cmd
	for _, p := range m.pages {
		cmds = append(cmds, p.Update(msg))
	}
	return tea.Batch(cmds...)
}

func (m *Model) quit() tea.Cmd {
	m.cancel()
	return tea.Quit
}

func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	k := m.c.keys
	if msg.String() == "ctrl+c" {
		return m.quit()
	}
	if m.prompt != nil {
		over, yes := m.prompt.update(msg, k)
		if !over {
			return nil
		}
		p := m.prompt
		m.prompt = nil
		if yes {
			return m.startOp(p.label, p.run)
		}
		return nil
	}
	if m.state != stateReady {
		switch {
		case key.Matches(msg, k.Quit):
			return m.quit()
		case key.Matches(msg, k.Refresh):
			return m.connect()
		}
		return nil
	}
	if m.page().Typing() {
		// A view's text field may end in an operation (a token request).
		return tea.Batch(m.page().Update(msg), m.takeRequests())
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		m.help.ShowAll = !m.help.ShowAll
		return nil
	case key.Matches(msg, k.NextPage):
		return m.switchTo((m.active + 1) % numPages)
	case key.Matches(msg, k.PrevPage):
		return m.switchTo((m.active + numPages - 1) % numPages)
	case key.Matches(msg, k.Pages):
		return m.switchTo(pageID(msg.Code - '1'))
	case key.Matches(msg, k.Refresh):
		return m.refresh()
	}
	cmd := m.page().Update(msg)
	return tea.Batch(cmd, m.takeRequests())
}

// takeRequests acts on what the view asked for while handling a key.
func (m *Model) takeRequests() tea.Cmd {
	c := m.c
	q, op, label, notice := c.pendingQ, c.pendingOp, c.busyLabel, c.notice
	c.pendingQ, c.pendingOp, c.busyLabel, c.notice = nil, nil, "", ""
	if notice != "" {
		m.flash, m.flashErr = notice, false
	}
	if (q != nil || op != nil) && m.busy != "" {
		m.flash, m.flashErr = "Wait: "+m.busy, true
		return nil
	}
	if q != nil {
		m.prompt = q
		m.flash = ""
	}
	if op != nil {
		return m.startOp(label, op)
	}
	return nil
}

func (m *Model) startOp(label string, op tea.Cmd) tea.Cmd {
	m.busy, m.progress, m.flash = label, nil, ""
	return tea.Batch(op, m.spin.Tick)
}

func (m *Model) switchTo(p pageID) tea.Cmd {
	m.active = p
	return m.page().Refresh()
}

// layout gives the view the height the header and footer leave.
func (m *Model) layout() {
	if m.width == 0 || m.state != stateReady {
		return
	}
	m.help.SetWidth(m.width)
	h := m.height - 2 - lineCount(m.footer())
	m.page().SetSize(m.width, max(h, 3))
}

// footer is the confirmation, the status line and the help.
func (m Model) footer() string {
	var parts []string
	if m.prompt != nil {
		parts = append(parts, m.prompt.render(m.c.styles, m.help, m.c.keys, m.width))
	}
	parts = append(parts, m.statusLine())
	if m.prompt == nil {
		parts = append(parts, m.help.View(m.helpKeys()))
	}
	return strings.Join(parts, "\n")
}

// statusLine shows the running operation or how the last one ended.
func (m Model) statusLine() string {
	st := m.c.styles
	switch {
	case m.busy != "" && m.progress != nil && m.progress.Total > 0:
		frac := float64(m.progress.Done) / float64(m.progress.Total)
		return m.spin.View() + " " + m.busy + " " + clean(m.progress.Stage) + " " +
			st.progress(min(35, m.width/3)).ViewAs(frac)
	case m.busy != "":
		return m.spin.View() + " " + m.busy
	case m.flashErr:
		return st.Error.Render(wrap(m.flash, m.width))
	case m.flash != "":
		return st.Success.Render(wrap(m.flash, m.width))
	}
	return ""
}

func (m Model) helpKeys() helpKeys {
	k := m.c.keys
	h := m.page().Help()
	h.short = append(h.short, k.Help, k.Quit)
	h.full = append(h.full, []key.Binding{k.NextPage, k.PrevPage, k.Pages, k.Refresh, k.Help, k.Quit})
	return h
}

// Render draws the whole screen, exactly width × height.
func (m Model) Render() string {
	if m.width == 0 {
		return ""
	}
	var s string
	switch m.state {
	case stateConnecting:
		s = renderConnecting(m.c, m.spin.View(), m.width, m.height)
	case stateUnreachable:
		s = renderProblem(m.c, m.err, m.help.ShortHelpView([]key.Binding{m.c.keys.Refresh, m.c.keys.Quit}), m.width, m.height)
	default:
		s = renderHeader(m.c, m.status, m.statusErr, m.active, m.width) + "\n" +
			m.page().Render()
		// The footer sits at the bottom whatever the view's height.
		footer := m.footer()
		s = fill(s, m.width, m.height-lineCount(footer)) + "\n" + footer
	}
	return fill(s, m.width, m.height)
}

// fill cuts or pads s to exactly n lines of at most width cells.
func fill(s string, width, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:max(n, 0)]
	}
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, width, "")
	}
	for len(lines) < n {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// View implements tea.Model.
func (m Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.WindowTitle = "hubtui"
	return v
}
