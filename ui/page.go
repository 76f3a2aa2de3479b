package ui

import tea "charm.land/bubbletea/v2"

// pageID names the views reached from the tabs.
type pageID int

const (
	pageSessions pageID = iota
	pageBackups
	pageUpgrade
	pageAudit
	pageTokens
	pageHub
	pageUsers
	pageShares
	numPages
)

var pageTitles = [numPages]string{"Sessions", "Backups", "Upgrade", "Audit log", "Tokens", "Hub", "Users", "Shares"}

// page is one view under a tab. Views mutate themselves (they are held
// by pointer, as in soft-serve) and ask the root for confirmations and
// operations through Common.
type page interface {
	// Update handles a key the root did not take, or a message.
	Update(msg tea.Msg) tea.Cmd
	// Render draws the view in the size last set.
	Render() string
	SetSize(width, height int)
	// Refresh fetches what the view shows.
	Refresh() tea.Cmd
	// Help is the view's own key bindings.
	Help() helpKeys
	// Typing reports whether keys go to a text field (the filter), so
	// that the root's single-letter keys must not take them.
	Typing() bool
}
