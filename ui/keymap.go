package ui

import (
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/viewport"
)

// KeyMap declares every key binding once. Views match keys against it
// and the help bar and the full help (?) are built from the same
// bindings, so what the help shows is what the keys do.
type KeyMap struct {
	// Everywhere.
	Quit     key.Binding
	Help     key.Binding
	NextPage key.Binding
	PrevPage key.Binding
	Pages    key.Binding // 1-7 jump to a page
	Refresh  key.Binding

	// Lists and scrolling.
	Up          key.Binding
	Down        key.Binding
	PageUp      key.Binding
	PageDown    key.Binding
	Top         key.Binding
	Bottom      key.Binding
	Filter      key.Binding
	KeepFilter  key.Binding // while typing a filter
	ClearFilter key.Binding // while typing a filter
	Back        key.Binding // leave the detail view, clear the filter

	// Sessions and the session detail.
	Mark    key.Binding
	MarkAll key.Binding
	Sort    key.Binding
	Reverse key.Binding
	Open    key.Binding
	Kill    key.Binding

	// Backups, upgrade, audit log.
	NewBackup key.Binding
	Verify    key.Binding
	Restore   key.Binding
	Upgrade   key.Binding
	Older     key.Binding

	// Tokens.
	NewToken key.Binding
	Revoke   key.Binding

	// The hub view.
	RestartHub key.Binding
	CheckEnv   key.Binding
	RepairEnv  key.Binding
	// Users.
	Admin      key.Binding
	Unlink     key.Binding
	DeleteUser key.Binding
	// Shares.
	NewShare     key.Binding
	AddMember    key.Binding
	RemoveMember key.Binding
	CheckShare   key.Binding
	RepairShare  key.Binding
	DeleteShare  key.Binding

	// Confirmations.
	Yes     key.Binding
	No      key.Binding
	Confirm key.Binding
	Cancel  key.Binding
}

// DefaultKeyMap is the console's key bindings.
func DefaultKeyMap() KeyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return KeyMap{
		Quit:     b("q", "quit", "q", "ctrl+c"),
		Help:     b("?", "all keys", "?"),
		NextPage: b("tab", "next view", "tab"),
		PrevPage: b("shift+tab", "previous view", "shift+tab"),
		Pages:    b("1-8", "go to view", "1", "2", "3", "4", "5", "6", "7", "8"),
		Refresh:  b("r", "refresh", "r"),

		Up:          b("↑/k", "up", "up", "k"),
		Down:        b("↓/j", "down", "down", "j"),
		PageUp:      b("pgup", "page up", "pgup"),
		PageDown:    b("pgdn", "page down", "pgdown"),
		Top:         b("g/home", "first", "home", "g"),
		Bottom:      b("G/end", "last", "end", "G"),
		Filter:      b("/", "filter", "/"),
		KeepFilter:  b("enter", "keep filter", "enter"),
		ClearFilter: b("esc", "clear filter", "esc"),
		Back:        b("esc", "back", "esc", "backspace"),

		Mark:    b("space", "mark", "space"),
		MarkAll: b("a", "mark all", "a"),
		Sort:    b("s", "sort", "s"),
		Reverse: b("S", "reverse", "S"),
		Open:    b("enter", "open", "enter"),
		Kill:    b("x", "stop server", "x", "ctrl+k"),

		NewBackup: b("n", "new backup", "n"),
		Verify:    b("v", "verify", "v"),
		Restore:   b("R", "restore", "R"),
		Upgrade:   b("U", "run upgrade", "U"),
		Older:     b("o", "older events", "o"),

		NewToken:   b("n", "new token", "n"),
		Revoke:     b("x", "revoke", "x", "delete"),
		RestartHub: b("R", "restart hub", "R"),
		CheckEnv:   b("c", "check env", "c"),
		RepairEnv:  b("f", "repair env", "f"),

		Admin:      b("a", "make/unmake admin", "a"),
		Unlink:     b("u", "unlink", "u"),
		DeleteUser: b("D", "delete user", "D", "delete"),

		NewShare:     b("n", "new share", "n"),
		AddMember:    b("a", "add members", "a"),
		RemoveMember: b("d", "remove members", "d"),
		CheckShare:   b("c", "check", "c"),
		RepairShare:  b("f", "repair", "f"),
		DeleteShare:  b("x", "delete", "x", "delete"),

		Yes:     b("y", "yes", "y"),
		No:      b("n/esc", "no", "n", "esc"),
		Confirm: b("enter", "confirm", "enter"),
		Cancel:  b("esc", "cancel", "esc"),
	}
}

// dangerous lists the bindings that change the hub. Read-only mode
// disables them: a disabled binding never matches a key and the help
// leaves it out, so the two cannot disagree.
func (k *KeyMap) dangerous() []*key.Binding {
	return []*key.Binding{&k.Kill, &k.NewBackup, &k.Restore, &k.Upgrade, &k.RepairEnv, &k.RestartHub, &k.Admin, &k.Unlink, &k.DeleteUser,
		&k.NewShare, &k.AddMember, &k.RemoveMember, &k.RepairShare, &k.DeleteShare}
}

// SetReadOnly enables or disables every binding that changes the hub.
func (k *KeyMap) SetReadOnly(ro bool) {
	for _, b := range k.dangerous() {
		b.SetEnabled(!ro)
	}
}

// table adapts the list movement keys for bubbles' table; the half-page
// bindings stay empty because their defaults (u, d) are taken.
func (k KeyMap) table() table.KeyMap {
	return table.KeyMap{
		LineUp: k.Up, LineDown: k.Down,
		PageUp: k.PageUp, PageDown: k.PageDown,
		GotoTop: k.Top, GotoBottom: k.Bottom,
	}
}

// viewport adapts the scroll keys for bubbles' viewport; the half-page
// and sideways bindings stay empty because their defaults (u, d, h, l)
// are not the console's. The viewport has no top and bottom keys: the
// detail view handles Top and Bottom itself.
func (k KeyMap) viewport() viewport.KeyMap {
	return viewport.KeyMap{Up: k.Up, Down: k.Down, PageUp: k.PageUp, PageDown: k.PageDown}
}

// helpKeys is what the help bar shows for the current view: the view's
// own bindings first, then the global ones.
type helpKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

func (h helpKeys) ShortHelp() []key.Binding  { return h.short }
func (h helpKeys) FullHelp() [][]key.Binding { return h.full }
