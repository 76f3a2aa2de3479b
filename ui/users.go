package ui

import (
	"cmp"
	"context"
	"fmt"
	"strconv"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// usersPage lists the hub's users: how each logs in, whether they are an
// admin and why, what their servers run as, when they were last seen and
// their server's state. Admins make or unmake an admin (a) and delete a
// user (D, the name typed to confirm).
type usersPage struct {
	c    *Common
	list *listView[wire.User]
}

func newUsersPage(c *Common) *usersPage {
	now := c.now
	by := func(f func(wire.User) string) func(a, b wire.User) int {
		return func(a, b wire.User) int { return cmp.Compare(f(a), f(b)) }
	}
	cols := []column[wire.User]{
		{title: "USER", width: 14, cell: func(u wire.User) string { return clean(u.Name) }, cmp: by(func(u wire.User) string { return u.Name })},
		{title: "LOGIN", width: 6, cell: func(u wire.User) string { return orDash(clean(u.Method)) }, cmp: by(func(u wire.User) string { return u.Method })},
		{title: "ADMIN", width: 10, cell: adminText, cmp: by(adminText)},
		{title: "ACCOUNT", width: 7, cell: func(u wire.User) string { return clean(u.Account) }, cmp: by(func(u wire.User) string { return u.Account })},
		{title: "LAST SEEN", width: 9, cell: func(u wire.User) string { return ago(now(), u.LastSeen) },
			cmp: func(a, b wire.User) int { return b.LastSeen.Compare(a.LastSeen) }},
		{title: "SERVER", width: 12, cell: serverText, cmp: by(serverText)},
		{title: "CREATED", width: 16, wide: true, cell: func(u wire.User) string { return stamp(now(), u.Created) },
			cmp: func(a, b wire.User) int { return a.Created.Compare(b.Created) }},
		{title: "ADMIN BY RULE", flex: 1, wide: true, cell: func(u wire.User) string { return clean(u.AdminRule) }},
	}
	return &usersPage{c: c, list: newListView(c, cols, func(u wire.User) string { return u.Name },
		[2]string{"user", "users"}, "No users yet: a user exists once they have logged in.").sortOn(0)}
}

// adminText says whether the user is an admin and where it comes from:
// set by hand (kept across logins), by the login rules at the last login
// (decided again at each login), or both.
func adminText(u wire.User) string {
	switch {
	case u.AdminByHand && u.AdminRule != "":
		return "hand+rules"
	case u.AdminByHand:
		return "by hand"
	case u.AdminRule != "" || u.Admin:
		return "by rules"
	}
	return "-"
}

// serverText is the default server's state, what the hub is doing to it,
// and how many more servers (named ones) are active.
func serverText(u wire.User) string {
	s := u.Server
	switch u.Pending {
	case "start":
		s = "starting…"
	case "stop":
		s = "stopping…"
	}
	s = orDash(clean(s))
	more := u.ActiveServers
	if u.Server == "starting" || u.Server == "running" || u.Server == "stopping" {
		more--
	}
	if more > 0 {
		s += " +" + strconv.Itoa(more)
	}
	return s
}

// adminSource spells out where the selected user's admin flag comes from
// and what the next login will do to it.
func adminSource(u wire.User) string {
	name := clean(u.Name)
	rule := clean(u.AdminRule)
	switch {
	case u.AdminByHand && rule != "":
		return name + " is an admin by hand, and by " + rule + " at their last login: they stay one whatever the rules say."
	case u.AdminByHand:
		return name + " is an admin by hand: they stay one whatever the login rules say."
	case rule != "":
		return name + " is an admin by " + rule + " at their last login: the rules decide again at each login."
	}
	return name + " is not an admin."
}

func (p *usersPage) Refresh() tea.Cmd { return fetchUsers(p.c.ctx, p.c.client) }

func (p *usersPage) Typing() bool { return p.list.typing() }

func (p *usersPage) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.BackgroundColorMsg:
		p.list.setStyles()
	case tea.PasteMsg: // the root sends one only while the filter is typed
		p.list.update(msg)
	case usersMsg:
		p.list.setItems(msg.users, msg.err)
	case opDoneMsg:
		return p.Refresh()
	case tea.KeyPressMsg:
		k := p.c.keys
		u, ok := p.list.selected()
		switch {
		case p.list.typing():
			p.list.update(msg)
		case ok && key.Matches(msg, k.Admin):
			p.c.ask(adminPrompt(p.c, u))
		case ok && key.Matches(msg, k.Unlink):
			p.c.ask(unlinkPrompt(p.c, u))
		case ok && key.Matches(msg, k.DeleteUser):
			p.c.ask(deletePrompt(p.c, u))
		default:
			p.list.update(msg)
		}
	}
	return nil
}

// adminPrompt makes the selected user an admin, or unmakes them, saying
// what the login rules will do about it.
func adminPrompt(c *Common, u wire.User) prompt {
	name := clean(u.Name)
	if !u.Admin {
		return prompt{
			question: "Make " + name + " an admin?",
			note:     name + " may then do everything on the hub, through the web and the API. An admin made by hand stays one whatever the login rules say at later logins.",
			label:    "Making " + name + " an admin…",
			run:      adminCmd(c.ctx, c.client, u.Name, true),
		}
	}
	note := name + " keeps their servers and files."
	if u.AdminRule != "" {
		note = clean(u.AdminRule) + " made " + name + " an admin at their last login and will again at their next login, unless you change that rule."
	}
	return prompt{
		question: "Unmake " + name + " as an admin?",
		note:     note,
		label:    "Unmaking " + name + " as an admin…",
		run:      adminCmd(c.ctx, c.client, u.Name, false),
	}
}

// unlinkPrompt frees the selected user's name from the login it is bound
// to, so another login method may take it.
func unlinkPrompt(c *Common, u wire.User) prompt {
	name := clean(u.Name)
	method := "their login"
	if u.Method != "" {
		method = "their " + clean(u.Method) + " login"
	}
	return prompt{
		question: "Unlink " + name + " from " + method + "?",
		note:     "The next login as " + name + ", through any login method the hub offers, takes the name. " + name + " keeps their servers, tokens, groups and admin grant.",
		label:    "Unlinking " + name + "…",
		run:      unlinkCmd(c.ctx, c.client, u.Name),
	}
}

func unlinkCmd(ctx context.Context, c Client, user string) tea.Cmd {
	return func() tea.Msg {
		res, err := c.Unlink(ctx, user)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("unlink %s: %w", user, err)}
		}
		return opDoneMsg{text: clean(user) + " is no longer linked to a login; " + clean(res.Note) + "."}
	}
}

// deletePrompt deletes the selected user once their name is typed.
func deletePrompt(c *Common, u wire.User) prompt {
	name := clean(u.Name)
	note := ""
	if n := u.ActiveServers; n > 0 {
		note = fmt.Sprintf("Their %d %s stop first. ", n, plural(n, "server", "servers"))
	}
	note += "Their API tokens and sessions end; their files and Linux account stay. They may log in again later as a new user if the login rules allow."
	return prompt{
		question: "Delete the user " + name + "?",
		note:     note,
		typed:    u.Name,
		label:    "Deleting " + name + "…",
		run:      deleteUserCmd(c.ctx, c.client, u.Name),
	}
}

func adminCmd(ctx context.Context, c Client, user string, admin bool) tea.Cmd {
	return func() tea.Msg {
		res, err := c.SetAdmin(ctx, user, admin)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("change the admin flag of %s: %w", user, err)}
		}
		text := clean(user) + " is now an admin."
		if !res.User.Admin {
			text = clean(user) + " is no longer an admin."
		}
		if res.Note != "" {
			text += " Note: " + clean(res.Note) + "."
		}
		return opDoneMsg{text: text}
	}
}

func deleteUserCmd(ctx context.Context, c Client, user string) tea.Cmd {
	return func() tea.Msg {
		res, err := c.DeleteUser(ctx, user)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("delete %s: %w", user, err)}
		}
		text := "Deleted the user " + clean(user) + "."
		if len(res.Stopped) > 0 {
			text = "Stopped the " + plural(len(res.Stopped), "server", "servers") + " of " + nameList(res.Stopped) + ", then deleted the user " + clean(user) + "."
		}
		return opDoneMsg{text: text, stopped: res.Stopped}
	}
}

func (p *usersPage) SetSize(w, h int) { p.list.setSize(w, h-lineCount(p.head(w))) }

// head is the line about the selected user: where their admin flag comes
// from, in full even where the table has no room for the rule.
func (p *usersPage) head(width int) string {
	u, ok := p.list.selected()
	if !ok {
		return p.c.styles.Title.Render("Users")
	}
	return p.c.styles.Title.Render(wrap(adminSource(u), width))
}

func (p *usersPage) Render() string { return p.head(p.list.width) + "\n" + p.list.render() }

func (p *usersPage) Help() helpKeys {
	k := p.c.keys
	if p.list.typing() {
		return p.list.filterHelp()
	}
	return helpKeys{
		short: []key.Binding{k.Admin, k.Unlink, k.DeleteUser, k.Filter},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.Admin, k.Unlink, k.DeleteUser},
			{k.Filter, k.Back, k.Sort, k.Reverse},
		},
	}
}
