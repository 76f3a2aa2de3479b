package ui

import (
	"strconv"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// auditPage shows the audit log, newest first; o fetches older pages.
type auditPage struct {
	c      *Common
	list   *listView[wire.Event]
	events []wire.Event
	before int64 // NextBefore of the last page fetched; 0 when none
}

func newAuditPage(c *Common) *auditPage {
	now := c.now
	cols := []column[wire.Event]{
		{title: "TIME", width: 16, cell: func(e wire.Event) string { return stamp(now(), e.Time) }},
		{title: "ACTOR", width: 8, cell: func(e wire.Event) string { return orDash(clean(e.Actor)) }},
		{title: "ACTION", width: 13, cell: func(e wire.Event) string { return clean(e.Action) }},
		{title: "TARGET", width: 12, cell: func(e wire.Event) string { return orDash(clean(e.Target)) }},
		{title: "SOURCE", width: 8, wide: true, cell: func(e wire.Event) string { return clean(e.Source) }},
		{title: "DETAIL", flex: 1, cell: func(e wire.Event) string { return clean(e.Detail) }},
	}
	return &auditPage{c: c, list: newListView(c, cols, func(e wire.Event) string { return strconv.FormatInt(e.ID, 10) },
		[2]string{"event", "events"}, "The audit log is empty.")}
}

// Refresh fetches the newest page again; older pages already fetched
// are kept below it.
func (p *auditPage) Refresh() tea.Cmd { return fetchEvents(p.c.ctx, p.c.client, 0) }

func (p *auditPage) Typing() bool { return p.list.typing() }

func (p *auditPage) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.BackgroundColorMsg:
		p.list.setStyles()
	case tea.PasteMsg: // the root sends one only while the filter is typed
		p.list.update(msg)
	case eventsMsg:
		if msg.err != nil {
			p.list.setItems(nil, msg.err)
			break
		}
		if msg.older {
			p.events = append(p.events, msg.events.Events...)
			p.before = msg.events.NextBefore
		} else {
			p.setNewest(msg.events)
		}
		p.list.setItems(p.events, nil)
	case opDoneMsg:
		return p.Refresh()
	case tea.KeyPressMsg:
		switch {
		case p.list.typing():
			p.list.update(msg)
		case key.Matches(msg, p.c.keys.Older):
			if p.before > 0 {
				return fetchEvents(p.c.ctx, p.c.client, p.before)
			}
			p.c.notify("No older events.")
		default:
			p.list.update(msg)
		}
	}
	return nil
}

// setNewest puts a fresh first page on top of the events shown,
// dropping the overlap (events never change once written). Without an
// overlap there would be a gap, so the older pages go.
func (p *auditPage) setNewest(page wire.Events) {
	fresh := page.Events
	if len(fresh) == 0 || len(p.events) == 0 || fresh[len(fresh)-1].ID > p.events[0].ID {
		p.events, p.before = fresh, page.NextBefore
		return
	}
	oldest := fresh[len(fresh)-1].ID
	merged := append([]wire.Event{}, fresh...)
	for _, e := range p.events {
		if e.ID < oldest {
			merged = append(merged, e)
		}
	}
	p.events = merged
}

func (p *auditPage) SetSize(w, h int) { p.list.setSize(w, h) }

func (p *auditPage) Render() string { return p.list.render() }

func (p *auditPage) Help() helpKeys {
	k := p.c.keys
	if p.list.typing() {
		return p.list.filterHelp()
	}
	return helpKeys{
		short: []key.Binding{k.Filter, k.Older, k.Up, k.Down},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.Filter, k.Back, k.Older},
		},
	}
}
