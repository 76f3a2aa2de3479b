package ui

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// Options configure the console.
type Options struct {
	// Client talks to the hub.
	Client Client
	// Socket is the admin socket's path, shown while connecting.
	Socket string
	// ReadOnly hides every action that changes the hub, whatever the
	// hub would allow.
	ReadOnly bool
	// Refresh is how often the views on screen are fetched again; 0
	// fetches only on start and when asked (r).
	Refresh time.Duration
	// Now is the clock for ages and idle times; time.Now when nil.
	Now func() time.Time
	// NoColor renders without colours (NO_COLOR).
	NoColor bool
	// Repair repairs the shared environment on this machine; nil when
	// hubtui cannot (it is not root), and the hub view says so.
	Repair EnvRepairer
}

// Common is what every view shares: the client, the clock, the styles
// and key bindings, and how the hub sees us. Views hold a pointer to the
// root's one Common.
type Common struct {
	ctx     context.Context
	client  Client
	now     func() time.Time
	noColor bool
	styles  Styles
	keys    KeyMap

	who       wire.WhoAmI
	flagRO    bool // --readonly
	readOnly  bool // --readonly, or the hub grants only reads
	refresh   time.Duration
	socket    string
	pendingQ  *prompt // a confirmation a view asked for, taken by the root
	pendingOp tea.Cmd // an operation a view started without confirmation
	busyLabel string  // what pendingOp is doing, for the status line
	notice    string  // a message for the status line
}

// ask requests a confirmation; the root shows it after the view's Update.
func (c *Common) ask(p prompt) {
	if p.typed != "" {
		p.input = newInput(c.styles, "> ")
	}
	c.pendingQ = &p
}

// start requests an operation that needs no confirmation.
func (c *Common) start(label string, op tea.Cmd) { c.pendingOp, c.busyLabel = op, label }

// notify shows text in the status line.
func (c *Common) notify(text string) { c.notice = text }

// setRole applies how the hub sees us: only admins may change things.
func (c *Common) setRole(who wire.WhoAmI) {
	c.who = who
	c.readOnly = c.flagRO || who.Role != wire.RoleAdmin
	c.keys.SetReadOnly(c.readOnly)
	// Members may restart the hub too (the restart-hub alias).
	c.keys.RestartHub.SetEnabled(!c.flagRO)
}
