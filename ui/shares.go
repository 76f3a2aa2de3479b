package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// sharesPage lists the folders shared between members: create one (n,
// "name user ..." or "public"), add (a) or remove (d) members, check (c)
// or repair (f) one, delete an empty one (x). A hub that does not run as
// root lists and checks only, and says so.
type sharesPage struct {
	c        *Common
	list     *listView[wire.Share]
	shares   wire.Shares
	entering shareInput
	input    textinput.Model
	target   string // the share an input or a check is about
	report   string // the last check or repair, shown until the next key
	width    int
	height   int
}

// shareInput is what the text field is for.
type shareInput int

const (
	inputNone shareInput = iota
	inputCreate
	inputAdd
	inputRemove
)

func newSharesPage(c *Common) *sharesPage {
	cols := []column[wire.Share]{
		{title: "SHARE", width: 16, cell: func(s wire.Share) string { return clean(s.Name) }},
		{title: "GROUP", width: 20, cell: func(s wire.Share) string { return clean(s.Group) }},
		{title: "MEMBERS", flex: 2, cell: func(s wire.Share) string { return orDash(clean(strings.Join(s.Members, " "))) }},
		{title: "PATH", flex: 1, cell: func(s wire.Share) string { return clean(s.Path) }},
	}
	return &sharesPage{c: c, list: newListView(c, cols, func(s wire.Share) string { return s.Name },
		[2]string{"share", "shares"}, "No shares: press n to create one.")}
}

func (p *sharesPage) Refresh() tea.Cmd { return fetchShares(p.c.ctx, p.c.client) }

func (p *sharesPage) Typing() bool { return p.entering != inputNone || p.list.typing() }

func (p *sharesPage) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.BackgroundColorMsg:
		p.list.setStyles()
	case sharesMsg:
		p.shares = msg.shares
		p.list.setItems(msg.shares.Shares, msg.err)
	case opDoneMsg:
		if msg.report != "" {
			p.report = msg.report
		}
		return p.Refresh()
	case tea.PasteMsg:
		if p.entering != inputNone {
			typeInto(&p.input, msg)
		}
	case tea.KeyPressMsg:
		return p.key(msg)
	}
	return nil
}

func (p *sharesPage) key(msg tea.KeyPressMsg) tea.Cmd {
	k := p.c.keys
	p.report = ""
	switch {
	case p.entering != inputNone:
		switch {
		case key.Matches(msg, k.Cancel):
			p.entering = inputNone
		case key.Matches(msg, k.Confirm):
			return p.submit()
		default:
			typeInto(&p.input, msg)
		}
	case p.list.typing():
		p.list.update(msg)
	case key.Matches(msg, k.NewShare):
		p.entering, p.input = inputCreate, newInput(p.c.styles, "> ")
	case key.Matches(msg, k.AddMember), key.Matches(msg, k.RemoveMember):
		if s, ok := p.list.selected(); ok {
			p.target = s.Name
			p.entering = inputAdd
			if key.Matches(msg, k.RemoveMember) {
				p.entering = inputRemove
			}
			p.input = newInput(p.c.styles, "> ")
		}
	case key.Matches(msg, k.CheckShare), key.Matches(msg, k.RepairShare):
		name, ok := p.checkTarget()
		if !ok {
			return nil
		}
		repair := key.Matches(msg, k.RepairShare)
		label := "Checking " + name + "…"
		if repair {
			label = "Repairing " + name + "…"
		}
		p.c.start(label, checkShareCmd(p.c.ctx, p.c.client, name, repair))
	case key.Matches(msg, k.DeleteShare):
		if s, ok := p.list.selected(); ok {
			p.c.ask(prompt{
				question: "Delete share " + s.Name + " and its group " + s.Group + "?",
				note:     "Only an empty share is deleted; one that holds files is refused (`hubd share delete --purge` removes them too).",
				label:    "Deleting " + s.Name + "…",
				run:      deleteShareCmd(p.c.ctx, p.c.client, s.Name),
			})
		}
	default:
		p.list.update(msg)
	}
	return nil
}

// checkTarget is the selected share, or the public area when there are
// no shares but there is one.
func (p *sharesPage) checkTarget() (string, bool) {
	if s, ok := p.list.selected(); ok {
		return s.Name, true
	}
	if p.shares.Public != "" {
		return "public", true
	}
	return "", false
}

func (p *sharesPage) submit() tea.Cmd {
	fields := strings.Fields(p.input.Value())
	what := p.entering
	if len(fields) == 0 {
		p.c.notify("type a share name, then its members")
		return nil
	}
	p.entering = inputNone
	switch what {
	case inputCreate:
		req := wire.ShareRequest{Name: fields[0], Members: fields[1:]}
		if fields[0] == "public" && len(fields) == 1 {
			req = wire.ShareRequest{Public: true}
		}
		p.c.start("Creating "+fields[0]+"…", createShareCmd(p.c.ctx, p.c.client, req))
	case inputAdd:
		p.c.start("Adding members to "+p.target+"…", shareMembersCmd(p.c.ctx, p.c.client, p.target, wire.ShareMembers{Add: fields}))
	case inputRemove:
		p.c.start("Removing members from "+p.target+"…", shareMembersCmd(p.c.ctx, p.c.client, p.target, wire.ShareMembers{Remove: fields}))
	}
	return nil
}

// sharesMsg carries the list.
type sharesMsg struct {
	shares wire.Shares
	err    error
}

func fetchShares(ctx context.Context, c Client) tea.Cmd {
	return read(ctx, c.Shares, func(v wire.Shares, err error) tea.Msg { return sharesMsg{v, err} })
}

func createShareCmd(ctx context.Context, c Client, req wire.ShareRequest) tea.Cmd {
	return func() tea.Msg {
		s, err := c.CreateShare(ctx, req)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("create the share: %w", err)}
		}
		return opDoneMsg{text: "Created " + s.Name + " at " + s.Path + "; members see it from their next server start."}
	}
}

func shareMembersCmd(ctx context.Context, c Client, name string, req wire.ShareMembers) tea.Cmd {
	return func() tea.Msg {
		s, err := c.ChangeShareMembers(ctx, name, req)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("change the members of %s: %w", name, err)}
		}
		return opDoneMsg{text: "Members of " + s.Name + ": " + orDash(strings.Join(s.Members, " ")) + " (from their next server start)."}
	}
}

func deleteShareCmd(ctx context.Context, c Client, name string) tea.Cmd {
	return func() tea.Msg {
		if err := c.DeleteShare(ctx, name, false); err != nil {
			return opDoneMsg{err: fmt.Errorf("delete %s: %w", name, err)}
		}
		return opDoneMsg{text: "Deleted share " + name + "."}
	}
}

func checkShareCmd(ctx context.Context, c Client, name string, repair bool) tea.Cmd {
	return func() tea.Msg {
		res, err := c.CheckShare(ctx, name, repair)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("check %s: %w", name, err)}
		}
		done := "Checked " + name + "."
		if repair {
			done = "Repaired " + name + "."
		}
		return opDoneMsg{text: done, report: shareReportText(res, repair)}
	}
}

// shareReportText sums a check up: what is wrong where, a few examples.
func shareReportText(res wire.ShareCheck, repaired bool) string {
	var b strings.Builder
	for _, r := range res.Reports {
		if r.Healthy && len(r.Fixed) == 0 {
			fmt.Fprintf(&b, "%s: fine (%d files, %d directories)\n", r.Path, r.Files, r.Dirs)
			continue
		}
		kinds := make([]string, 0, len(r.Problems))
		for k := range r.Problems {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			line := fmt.Sprintf("%s: %d %s", r.Path, r.Problems[k], k)
			if repaired {
				line += fmt.Sprintf(", %d fixed", r.Fixed[k])
			}
			if ex := r.Examples[k]; len(ex) > 0 {
				line += " (e.g. " + ex[0] + ")"
			}
			b.WriteString(clean(line) + "\n")
		}
		if r.Errors > 0 {
			fmt.Fprintf(&b, "%s: %d could not be checked\n", r.Path, r.Errors)
		}
	}
	if b.Len() == 0 {
		return "nothing to check"
	}
	return strings.TrimRight(b.String(), "\n")
}

// SetSize leaves the list what the head does not take: the title, and a
// report or the hub's read-only notice, wrapped.
func (p *sharesPage) SetSize(w, h int) {
	p.width, p.height = w, h
	p.list.setSize(w, h-3-p.extraLines())
}

func (p *sharesPage) extraLines() int {
	text := wrap(p.report, p.width)
	if text == "" && p.entering == inputNone {
		text = wrap(clean(p.shares.ReadOnly), p.width)
	}
	if text == "" {
		return 0
	}
	return strings.Count(text, "\n")
}

func (p *sharesPage) Render() string {
	st := p.c.styles
	head := st.Title.Render("Shares")
	if p.shares.Public != "" {
		head += st.Muted.Render("  public area: " + clean(p.shares.Public))
	}
	switch {
	case p.entering == inputCreate:
		head += "\nNew share — name user … (or \"public\" for the public area):\n" + p.input.View()
	case p.entering == inputAdd:
		head += "\nAdd to " + clean(p.target) + " — user …:\n" + p.input.View()
	case p.entering == inputRemove:
		head += "\nRemove from " + clean(p.target) + " — user …:\n" + p.input.View()
	case p.report != "":
		head += "\n" + wrap(p.report, p.width) + "\n"
	case p.shares.ReadOnly != "":
		head += "\n" + st.Warning.Render(wrap(clean(p.shares.ReadOnly), p.width)) + "\n"
	default:
		head += "\n\n"
	}
	return head + "\n" + p.list.render()
}

func (p *sharesPage) Help() helpKeys {
	k := p.c.keys
	if p.entering != inputNone {
		return helpKeys{short: []key.Binding{k.Confirm, k.Cancel}}
	}
	if p.list.typing() {
		return p.list.filterHelp()
	}
	return helpKeys{
		short: []key.Binding{k.NewShare, k.AddMember, k.RemoveMember, k.CheckShare, k.RepairShare, k.DeleteShare, k.Filter},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.NewShare, k.AddMember, k.RemoveMember, k.CheckShare, k.RepairShare, k.DeleteShare},
			{k.Filter, k.Back},
		},
	}
}
