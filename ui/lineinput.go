package ui

import (
	"strings"
	"unicode"

	tea "charm.land/bubbletea/v2"
)

// lineInput is a one-line text field for the filter and the typed
// confirmations. (bubbles' textinput would pull in a clipboard module
// this build does not carry; the console needs no more than this.)
type lineInput struct {
	value string
}

// update applies a key or a paste and reports whether it used it.
func (l *lineInput) update(msg tea.Msg) bool {
	switch msg := msg.(type) {
	case tea.PasteMsg:
		l.value += strings.Map(printable, msg.Content)
		return true
	case tea.KeyPressMsg:
		switch msg.String() {
		case "backspace":
			if r := []rune(l.value); len(r) > 0 {
				l.value = string(r[:len(r)-1])
			}
			return true
		case "ctrl+u":
			l.value = ""
			return true
		case "ctrl+w":
			l.value = strings.TrimRightFunc(l.value, unicode.IsSpace)
			l.value = l.value[:strings.LastIndexFunc(l.value, unicode.IsSpace)+1]
			return true
		}
		if msg.Text != "" && msg.Mod&^tea.ModShift == 0 {
			l.value += strings.Map(printable, msg.Text)
			return true
		}
	}
	return false
}

// printable drops what a one-line field cannot hold.
func printable(r rune) rune {
	if unicode.IsControl(r) {
		return -1
	}
	return r
}

// view renders the value with a block cursor at its end.
func (l lineInput) view() string { return l.value + "█" }
