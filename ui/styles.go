package ui

import (
	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// Styles are every style the console uses, built once per background
// (light or dark) so that no view picks colours of its own.
type Styles struct {
	Header      lipgloss.Style // the hub status bar
	Tab         lipgloss.Style
	ActiveTab   lipgloss.Style
	Badge       lipgloss.Style // READ-ONLY
	Title       lipgloss.Style
	Label       lipgloss.Style // fact names in the detail view
	Muted       lipgloss.Style
	Error       lipgloss.Style
	Success     lipgloss.Style
	Warning     lipgloss.Style
	Prompt      lipgloss.Style // the confirmation box
	ScreenBox   lipgloss.Style // the "hub not running" box
	TableHeader lipgloss.Style
	TableCell   lipgloss.Style
	Selected    lipgloss.Style
	Bar         lipgloss.Style // its colour fills a progress bar; Muted's the rest
	Help        help.Styles
	Input       textinput.Styles
}

// NewStyles builds the styles for a dark or light background. With
// noColor (NO_COLOR set) no style carries a colour: selection and
// emphasis use reverse video and bold, and every state is also spelt out
// in words, so nothing depends on colour.
func NewStyles(isDark, noColor bool) Styles {
	base := lipgloss.NewStyle()
	if noColor {
		return Styles{
			Header:      base.Reverse(true),
			Tab:         base,
			ActiveTab:   base.Reverse(true),
			Badge:       base.Bold(true),
			Title:       base.Bold(true),
			Label:       base,
			Muted:       base,
			Error:       base.Bold(true),
			Success:     base,
			Warning:     base.Bold(true),
			Prompt:      base.Border(lipgloss.NormalBorder()).Padding(0, 1),
			ScreenBox:   base.Border(lipgloss.NormalBorder()).Padding(1, 2),
			TableHeader: base.Bold(true).Padding(0, 1),
			TableCell:   base.Padding(0, 1),
			Selected:    base.Reverse(true),
			Bar:         base,
			Help:        help.Styles{},
			Input:       inputStyles(base, base),
		}
	}
	c := lipgloss.LightDark(isDark)
	accent := c(lipgloss.Color("#5A56E0"), lipgloss.Color("#7D79F6"))
	muted := c(lipgloss.Color("#8A8A8A"), lipgloss.Color("#767676"))
	red := c(lipgloss.Color("#C62828"), lipgloss.Color("#FF6B6B"))
	green := c(lipgloss.Color("#2E7D32"), lipgloss.Color("#5FD75F"))
	yellow := c(lipgloss.Color("#A66F00"), lipgloss.Color("#FFD75F"))
	barBG := c(lipgloss.Color("#E4E4F7"), lipgloss.Color("#2B2A4C"))
	barFG := c(lipgloss.Color("#1C1C3A"), lipgloss.Color("#E4E4F7"))
	return Styles{
		Header:      base.Background(barBG).Foreground(barFG),
		Tab:         base.Foreground(muted),
		ActiveTab:   base.Bold(true).Foreground(accent),
		Badge:       base.Bold(true).Foreground(yellow),
		Title:       base.Bold(true).Foreground(accent),
		Label:       base.Foreground(muted),
		Muted:       base.Foreground(muted),
		Error:       base.Foreground(red),
		Success:     base.Foreground(green),
		Warning:     base.Foreground(yellow),
		Prompt:      base.Border(lipgloss.RoundedBorder()).BorderForeground(yellow).Padding(0, 1),
		ScreenBox:   base.Border(lipgloss.RoundedBorder()).BorderForeground(red).Padding(1, 2),
		TableHeader: base.Bold(true).Foreground(accent).Padding(0, 1),
		TableCell:   base.Padding(0, 1),
		Selected:    base.Bold(true).Background(barBG).Foreground(barFG),
		Bar:         base.Foreground(accent),
		Help:        help.DefaultStyles(isDark),
		Input:       inputStyles(base.Foreground(accent), base.Foreground(muted)),
	}
}

// inputStyles styles a text field: its prompt and cursor take the
// prompt's colour, any placeholder the muted one.
func inputStyles(prompt, muted lipgloss.Style) textinput.Styles {
	state := textinput.StyleState{Text: lipgloss.NewStyle(), Placeholder: muted, Suggestion: muted, Prompt: prompt}
	return textinput.Styles{
		Focused: state,
		Blurred: state,
		Cursor:  textinput.CursorStyle{Color: prompt.GetForeground(), Shape: tea.CursorBlock},
	}
}

func (s Styles) table() table.Styles {
	return table.Styles{Header: s.TableHeader, Cell: s.TableCell, Selected: s.Selected}
}

// progress is a bar of width cells, percentage included, drawn with
// ViewAs: a step-wise operation has nothing to animate.
func (s Styles) progress(width int) progress.Model {
	p := progress.New(progress.WithWidth(width), progress.WithFillCharacters('█', '░'),
		progress.WithColors(s.Bar.GetForeground()))
	p.EmptyColor = s.Muted.GetForeground()
	return p
}
