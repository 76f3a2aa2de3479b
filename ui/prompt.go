package ui

import (
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// prompt is a confirmation. It names exactly what will happen; for what
// cannot be undone it wants a word typed (the archive's name, "upgrade"),
// so that no stray key press can set it off.
type prompt struct {
	question string          // names the targets
	note     string          // what the question might hide, e.g. marks hidden by the filter
	typed    string          // the word to type; "" asks y/n
	input    textinput.Model // set up by Common.ask
	wrong    bool            // enter was pressed with something else typed
	label    string          // the status line while the operation runs
	run      tea.Cmd
}

// update handles one key. It reports whether the prompt is over and, if
// so, whether the answer was yes.
func (p *prompt) update(msg tea.Msg, k KeyMap) (over, yes bool) {
	if p.typed == "" {
		km, ok := msg.(tea.KeyPressMsg)
		switch {
		case !ok:
		case key.Matches(km, k.Yes):
			return true, true
		case key.Matches(km, k.No):
			return true, false
		}
		return false, false
	}
	if km, ok := msg.(tea.KeyPressMsg); ok {
		switch {
		case key.Matches(km, k.Cancel):
			return true, false
		case key.Matches(km, k.Confirm):
			if p.input.Value() == p.typed {
				return true, true
			}
			p.wrong = true
			return false, false
		}
	}
	before := p.input.Value()
	typeInto(&p.input, msg)
	if p.input.Value() != before {
		p.wrong = false
	}
	return false, false
}

func (p *prompt) bindings(k KeyMap) []key.Binding {
	if p.typed == "" {
		return []key.Binding{k.Yes, k.No}
	}
	return []key.Binding{k.Confirm, k.Cancel}
}

// render draws the prompt as a box at most width cells wide.
func (p *prompt) render(st Styles, h help.Model, k KeyMap, width int) string {
	inner := max(width-st.Prompt.GetHorizontalFrameSize(), 10)
	lines := []string{st.Title.Render(wrap(p.question, inner))}
	if p.note != "" {
		lines = append(lines, st.Warning.Render(wrap(p.note, inner)))
	}
	if p.typed != "" {
		lines = append(lines, "Type "+st.Title.Render(p.typed)+" to confirm:", p.input.View())
		if p.wrong {
			lines = append(lines, st.Error.Render(wrap("that is not "+p.typed+"; type it exactly, or esc to cancel", inner)))
		}
	}
	lines = append(lines, h.ShortHelpView(p.bindings(k)))
	return st.Prompt.Width(min(width, maxWidth(lines)+st.Prompt.GetHorizontalFrameSize())).
		Render(strings.Join(lines, "\n"))
}

func maxWidth(lines []string) int {
	w := 0
	for _, l := range lines {
		for _, s := range strings.Split(l, "\n") {
			w = max(w, lipgloss.Width(s))
		}
	}
	return w
}
