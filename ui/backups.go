package ui

import (
	"strconv"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// backupsPage lists the archives in the backup directory: make one (n),
// verify one (v), restore one (R, typed confirmation).
type backupsPage struct {
	c    *Common
	list *listView[wire.Backup]
	dir  string
}

func newBackupsPage(c *Common) *backupsPage {
	cols := []column[wire.Backup]{
		{title: "NAME", flex: 3, cell: func(b wire.Backup) string { return clean(b.Name) }},
		{title: "SIZE", width: 7, cell: func(b wire.Backup) string { return bytesIEC(b.Size) }},
		{title: "SCHEMA", width: 6, cell: func(b wire.Backup) string { return optInt(b.SchemaVersion) }},
		{title: "HUBD", width: 10, cell: func(b wire.Backup) string { return orDash(clean(b.HubdVersion)) }},
		{title: "NOTE", flex: 1, cell: backupNote},
	}
	return &backupsPage{c: c, list: newListView(c, cols, func(b wire.Backup) string { return b.Name },
		[2]string{"archive", "archives"}, "No backups yet: press n to make one.")}
}

// backupNote says what is wrong with an archive, else where it was made.
func backupNote(b wire.Backup) string {
	if b.Error != "" {
		return "unreadable: " + clean(b.Error)
	}
	if b.Host != "" {
		return "from " + clean(b.Host)
	}
	return ""
}

func optInt(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (p *backupsPage) Refresh() tea.Cmd { return fetchBackups(p.c.ctx, p.c.client) }

func (p *backupsPage) Typing() bool { return p.list.typing() }

func (p *backupsPage) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.BackgroundColorMsg:
		p.list.setStyles()
	case tea.PasteMsg: // the root sends one only while the filter is typed
		p.list.update(msg)
	case backupsMsg:
		if msg.err == nil {
			p.dir = msg.backups.Dir
		}
		p.list.setItems(msg.backups.Backups, msg.err)
	case opDoneMsg:
		return p.Refresh()
	case tea.KeyPressMsg:
		k := p.c.keys
		b, ok := p.list.selected()
		switch {
		case p.list.typing():
			p.list.update(msg)
		case key.Matches(msg, k.NewBackup):
			p.c.start("Backing up the hub…", backupCmd(p.c.ctx, p.c.client, "hubtui"))
		case ok && key.Matches(msg, k.Verify):
			p.c.start("Verifying "+b.Name+"…", verifyCmd(p.c.ctx, p.c.client, b.Name))
		case ok && key.Matches(msg, k.Restore):
			p.c.ask(prompt{
				question: "Restore the hub from " + b.Name + "?",
				note:     "This replaces the hub's database and configuration with the archive's. A running hub refuses and names the command that restores with the hub stopped.",
				typed:    b.Name,
				label:    "Restoring " + b.Name + "…",
				run:      restoreCmd(p.c.ctx, p.c.client, b.Name),
			})
		default:
			p.list.update(msg)
		}
	}
	return nil
}

func (p *backupsPage) SetSize(w, h int) { p.list.setSize(w, h-1) }

func (p *backupsPage) Render() string {
	dir := "Backups"
	if p.dir != "" {
		dir += " in " + clean(p.dir)
	}
	return p.c.styles.Title.Render(dir) + "\n" + p.list.render()
}

func (p *backupsPage) Help() helpKeys {
	k := p.c.keys
	if p.list.typing() {
		return p.list.filterHelp()
	}
	return helpKeys{
		short: []key.Binding{k.NewBackup, k.Verify, k.Restore, k.Filter},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.NewBackup, k.Verify, k.Restore},
			{k.Filter, k.Back},
		},
	}
}
