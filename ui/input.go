package ui

import (
	"strings"
	"unicode"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
)

// newInput is a focused one-line field for the filter and the typed
// confirmations. Its cursor does not blink, so it needs no ticks, and
// its clipboard key is off: the terminal's own paste arrives as a
// bracketed paste, while ctrl+v would read the clipboard of the hub's
// host, not the admin's.
func newInput(st Styles, prompt string) textinput.Model {
	in := textinput.New()
	in.Prompt = prompt
	in.KeyMap.Paste.SetEnabled(false)
	in.SetStyles(st.Input)
	in.Focus()
	return in
}

// typeInto hands a key or a paste to a field. A paste loses its control
// characters first: textinput would turn a line end into a space, and a
// name pasted with its line end must still match. (With no blinking and
// no clipboard, the field has no command to return.)
func typeInto(in *textinput.Model, msg tea.Msg) {
	if p, ok := msg.(tea.PasteMsg); ok {
		p.Content = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, p.Content)
		msg = p
	}
	*in, _ = in.Update(msg)
}
