package ui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// upgradePage shows the database schema steps the hub would apply and
// runs them after a typed confirmation.
type upgradePage struct {
	textView
	c    *Common
	plan wire.UpgradePlan
	err  error
}

func newUpgradePage(c *Common) *upgradePage {
	p := &upgradePage{c: c}
	p.textView = newTextView(c, p.head, p.body)
	return p
}

func (p *upgradePage) Refresh() tea.Cmd { return fetchPlan(p.c.ctx, p.c.client) }

func (p *upgradePage) Typing() bool { return false }

func (p *upgradePage) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case planMsg:
		if msg.err != nil {
			p.err = msg.err
			break
		}
		p.plan, p.err = msg.plan, nil
		p.show()
	case opDoneMsg:
		return p.Refresh()
	case tea.KeyPressMsg:
		if key.Matches(msg, p.c.keys.Upgrade) {
			p.askUpgrade()
			return nil
		}
		return p.scroll(msg)
	}
	return nil
}

func (p *upgradePage) askUpgrade() {
	if !p.loaded {
		return
	}
	if !p.plan.Pending {
		p.c.notify(fmt.Sprintf("Nothing to upgrade: the database is at schema %d.", p.plan.From))
		return
	}
	n := len(p.plan.Steps)
	p.c.ask(prompt{
		question: fmt.Sprintf("Apply %d schema %s to the hub's database (schema %d → %d)?", n, plural(n, "step", "steps"), p.plan.From, p.plan.To),
		note:     "hubd backs the database up before the first step; a failed step rolls back. This cannot be undone but by restoring that backup.",
		typed:    "upgrade",
		label:    "Upgrading the database…",
		run:      upgradeCmd(p.c.ctx, p.c.client),
	})
}

// body is the plan as text, for the viewport.
func (p *upgradePage) body() string {
	st := p.c.styles
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d\n", st.Label.Render("Database schema  "), p.plan.From)
	fmt.Fprintf(&b, "%s %d\n\n", st.Label.Render("This hubd needs  "), p.plan.To)
	if len(p.plan.Steps) == 0 {
		b.WriteString("No pending steps.\n")
	} else {
		b.WriteString(st.Title.Render("Pending steps") + "\n")
		for _, s := range p.plan.Steps {
			fmt.Fprintf(&b, "  %4d  %s\n", s.Version, clean(s.Name))
		}
	}
	if p.plan.Message != "" {
		b.WriteString("\n" + wrap(clean(p.plan.Message), p.width) + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (p *upgradePage) head() string {
	st := p.c.styles
	h := st.Title.Render("Upgrade plan")
	switch {
	case p.err != nil:
		h += "\n" + st.Error.Render(wrap("error: "+clean(p.err.Error()), p.width))
	case !p.loaded:
		h += "\n" + st.Muted.Render("loading…")
	}
	return h
}

func (p *upgradePage) Help() helpKeys {
	k := p.c.keys
	return helpKeys{
		short: []key.Binding{k.Upgrade, k.Up, k.Down},
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Upgrade}},
	}
}
