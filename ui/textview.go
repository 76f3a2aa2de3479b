package ui

import (
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
)

// textView is a fixed head over a scrolled body: the layout of the views
// that show one document (the upgrade plan, the hub). The view embedding
// it supplies head and body; loaded says whether there is a body yet.
type textView struct {
	text       viewport.Model
	width      int
	loaded     bool
	head, body func() string
}

func newTextView(c *Common, head, body func() string) textView {
	text := viewport.New()
	text.KeyMap = c.keys.viewport()
	return textView{text: text, head: head, body: body}
}

// show marks the body loaded and lays it out again.
func (v *textView) show() {
	v.loaded = true
	v.text.SetContent(v.body())
}

// scroll hands a key to the viewport.
func (v *textView) scroll(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	v.text, cmd = v.text.Update(msg)
	return cmd
}

func (v *textView) SetSize(w, h int) {
	v.width = w
	v.text.SetWidth(w)
	v.text.SetHeight(max(h-lineCount(v.head()), 1))
	if v.loaded {
		v.text.SetContent(v.body())
	}
}

func (v *textView) Render() string {
	if !v.loaded {
		return v.head()
	}
	return v.head() + "\n" + v.text.View()
}
