package ui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// tokensPage lists API tokens of people, scripts and services: issue one
// (n, then "owner [scope ...] [expires=D] [note=TEXT]"), revoke one (x).
// A new token is shown once, in the view, until the next key.
type tokensPage struct {
	c        *Common
	list     *listView[wire.Token]
	entering bool
	input    textinput.Model
	issued   string // the token just issued, shown once
}

func newTokensPage(c *Common) *tokensPage {
	cols := []column[wire.Token]{
		{title: "ID", width: 6, cell: func(t wire.Token) string { return clean(t.ID) }},
		{title: "OWNER", width: 16, cell: tokenOwner},
		{title: "SCOPES", flex: 2, cell: func(t wire.Token) string { return orDash(clean(strings.Join(t.Scopes, " "))) }},
		{title: "EXPIRES", width: 16, cell: func(t wire.Token) string {
			if t.ExpiresAt.IsZero() {
				return "never"
			}
			return stamp(c.now(), t.ExpiresAt)
		}},
		{title: "LAST USED", width: 16, cell: func(t wire.Token) string { return stamp(c.now(), t.LastActivity) }},
		{title: "NOTE", flex: 1, cell: func(t wire.Token) string { return clean(t.Note) }},
	}
	return &tokensPage{c: c, list: newListView(c, cols, func(t wire.Token) string { return t.ID },
		[2]string{"token", "tokens"}, "No API tokens: press n to issue one.")}
}

func tokenOwner(t wire.Token) string {
	if t.Service != "" {
		return "service:" + clean(t.Service)
	}
	return clean(t.User)
}

// parseTokenRequest reads "owner [scope ...] [expires=D] [note=TEXT]";
// an owner "service:<name>" is a service. The note takes the rest of
// the line.
func parseTokenRequest(line string) (wire.TokenRequest, error) {
	var req wire.TokenRequest
	if before, note, ok := strings.Cut(line, "note="); ok {
		line, req.Note = before, strings.TrimSpace(note)
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return req, fmt.Errorf("name the owner first: a user, or service:<name>")
	}
	if svc, ok := strings.CutPrefix(fields[0], "service:"); ok {
		req.Service = svc
	} else {
		req.User = fields[0]
	}
	for _, f := range fields[1:] {
		if v, ok := strings.CutPrefix(f, "expires="); ok {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return req, fmt.Errorf("expires=%s: give a positive duration such as 720h (or leave it out: no expiry)", v)
			}
			req.ExpiresInSeconds = int64(d.Seconds())
			continue
		}
		req.Scopes = append(req.Scopes, f)
	}
	return req, nil
}

func (p *tokensPage) Refresh() tea.Cmd { return fetchTokens(p.c.ctx, p.c.client) }

func (p *tokensPage) Typing() bool { return p.entering || p.list.typing() }

func (p *tokensPage) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.BackgroundColorMsg:
		p.list.setStyles()
	case tokensMsg:
		p.list.setItems(msg.tokens.Tokens, msg.err)
	case tokenIssuedMsg:
		p.issued = msg.secret
		return p.Refresh()
	case opDoneMsg:
		return p.Refresh()
	case tea.PasteMsg:
		if p.entering {
			typeInto(&p.input, msg)
		}
	case tea.KeyPressMsg:
		return p.key(msg)
	}
	return nil
}

func (p *tokensPage) key(msg tea.KeyPressMsg) tea.Cmd {
	k := p.c.keys
	p.issued = ""
	switch {
	case p.entering:
		switch {
		case key.Matches(msg, k.Cancel):
			p.entering = false
		case key.Matches(msg, k.Confirm):
			req, err := parseTokenRequest(p.input.Value())
			if err != nil {
				p.c.notify(err.Error())
				return nil
			}
			p.entering = false
			p.c.start("Issuing a token…", issueCmd(p.c.ctx, p.c.client, req))
		default:
			typeInto(&p.input, msg)
		}
	case p.list.typing():
		p.list.update(msg)
	case key.Matches(msg, k.NewToken):
		p.entering, p.input = true, newInput(p.c.styles, "> ")
	case key.Matches(msg, k.Revoke):
		if t, ok := p.list.selected(); ok {
			p.c.ask(prompt{
				question: "Revoke token " + t.ID + " of " + tokenOwner(t) + "?",
				note:     "Whatever uses it stops working at once.",
				label:    "Revoking " + t.ID + "…",
				run:      revokeCmd(p.c.ctx, p.c.client, t.ID),
			})
		}
	default:
		p.list.update(msg)
	}
	return nil
}

// tokenIssuedMsg carries a new token to the view that shows it once.
type tokenIssuedMsg struct{ secret string }

func issueCmd(ctx context.Context, c Client, req wire.TokenRequest) tea.Cmd {
	return func() tea.Msg {
		t, err := c.CreateToken(ctx, req)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("issue a token: %w", err)}
		}
		return tea.Sequence(
			func() tea.Msg { return tokenIssuedMsg{t.Secret} },
			func() tea.Msg {
				return opDoneMsg{text: "Issued token " + t.ID + " for " + tokenOwner(t.Token) + "; it is shown above this once."}
			})()
	}
}

func revokeCmd(ctx context.Context, c Client, id string) tea.Cmd {
	return func() tea.Msg {
		t, err := c.RevokeToken(ctx, id)
		if err != nil {
			return opDoneMsg{err: fmt.Errorf("revoke %s: %w", id, err)}
		}
		return opDoneMsg{text: "Revoked token " + t.ID + " of " + tokenOwner(t) + "."}
	}
}

func (p *tokensPage) SetSize(w, h int) { p.list.setSize(w, h-3) }

func (p *tokensPage) Render() string {
	st := p.c.styles
	head := st.Title.Render("API tokens")
	switch {
	case p.entering:
		head += "\n" + "New token — owner [scope …] [expires=720h] [note=text]:\n" + p.input.View()
	case p.issued != "":
		head += "\n" + st.Warning.Render("New token (copy it now; it is not shown again):") + "\n" + p.issued
	default:
		head += "\n\n"
	}
	return head + "\n" + p.list.render()
}

func (p *tokensPage) Help() helpKeys {
	k := p.c.keys
	if p.entering {
		return helpKeys{short: []key.Binding{k.Confirm, k.Cancel}}
	}
	if p.list.typing() {
		return p.list.filterHelp()
	}
	return helpKeys{
		short: []key.Binding{k.NewToken, k.Revoke, k.Filter},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.NewToken, k.Revoke},
			{k.Filter, k.Back},
		},
	}
}
