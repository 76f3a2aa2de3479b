package ui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
)

// drive feeds msgs to m one by one, each after the commands the last
// one caused have run and their messages were fed in turn: a user who
// waits for the screen before the next key. Everything runs on this
// goroutine. Spinner ticks are dropped (they reschedule themselves
// forever), and the tests build models without refresh, so no command
// here waits on a timer.
func drive(m Model, msgs ...tea.Msg) Model {
	for _, msg := range msgs {
		switch msg := msg.(type) {
		case nil, spinner.TickMsg:
			continue
		case tea.BatchMsg:
			for _, cmd := range msg {
				if cmd != nil {
					m = drive(m, cmd())
				}
			}
			continue
		}
		next, cmd := m.Update(msg)
		m = next.(Model)
		if cmd != nil {
			m = drive(m, cmd())
		}
	}
	return m
}

// start builds a console on f at the given size and lets it connect.
func start(f *fake, w, h int, readOnly bool) Model {
	m := New(Options{Client: f, ReadOnly: readOnly, Now: clock})
	return drive(m, tea.WindowSizeMsg{Width: w, Height: h}, m.Init()())
}

// press turns key names into key presses: "x", "enter", "space", "esc",
// "ctrl+k", or any text.
func press(keys ...string) []tea.Msg {
	var out []tea.Msg
	for _, k := range keys {
		switch k {
		case "enter":
			out = append(out, tea.KeyPressMsg{Code: tea.KeyEnter})
		case "esc":
			out = append(out, tea.KeyPressMsg{Code: tea.KeyEscape})
		case "space":
			out = append(out, tea.KeyPressMsg{Code: tea.KeySpace, Text: " "})
		case "down":
			out = append(out, tea.KeyPressMsg{Code: tea.KeyDown})
		case "tab":
			out = append(out, tea.KeyPressMsg{Code: tea.KeyTab})
		case "ctrl+k":
			out = append(out, tea.KeyPressMsg{Code: 'k', Mod: tea.ModCtrl})
		default:
			for _, r := range k {
				out = append(out, tea.KeyPressMsg{Code: r, Text: string(r)})
			}
		}
	}
	return out
}

var sizes = [][2]int{{80, 24}, {160, 48}}

// TestGolden renders every view at 80×24 and 160×48, without colours,
// against testdata/TestGolden/<view>/<size>.golden (go test -update
// rewrites them).
func TestGolden(t *testing.T) {
	cases := []struct {
		name     string
		fake     func(*fake)
		readOnly bool
		keys     []string
		// fail, when set, makes every read fail after the keys, and
		// then r asks for a refresh.
		fail error
		// step, when set, shows a backup in progress at this step.
		step *wire.Progress
	}{
		{name: "sessions"},
		{name: "sessions_readonly", readOnly: true},
		{name: "sessions_filtered_marked", keys: []string{"space", "space", "/", "al", "enter"}},
		{name: "filter_typing", keys: []string{"/", "al"}},
		{name: "full_help", keys: []string{"?"}},
		{name: "detail", keys: []string{"enter"}},
		{name: "detail_slurm", keys: []string{"down", "enter"}},
		{name: "kill_confirm", keys: []string{"space", "space", "/", "bob", "enter", "x"}},
		{name: "kill_done", keys: []string{"space", "space", "x", "y"}},
		{name: "backups", keys: []string{"2"}},
		{name: "backup_progress", keys: []string{"2"}, step: &wire.Progress{Stage: "copy database", Done: 2, Total: 5}},
		{name: "restore_confirm", keys: []string{"2", "R", "hubd-2026"}},
		{name: "restore_refused", keys: []string{"2", "R", "hubd-20260315T020000Z-nightly.tar.gz", "enter"}},
		{name: "upgrade", keys: []string{"3"}},
		{name: "upgrade_confirm", keys: []string{"3", "U", "upgrade"}},
		{name: "audit", keys: []string{"4"}},
		{name: "tokens", keys: []string{"5"}, fake: func(f *fake) {
			f.tokens = []wire.Token{
				{ID: "a3", Service: "culler", Kind: "service", Scopes: []string{"inherit"}, Note: "from the configuration", Created: now},
				{ID: "a9", User: "alice", Kind: "api", Scopes: []string{"read:users!user", "servers!user"}, Note: "laptop",
					Created: now.Add(-48 * time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour), LastActivity: now.Add(-time.Hour)},
			}
		}},
		{name: "tokens_new", keys: []string{"5", "n", "bob servers!user"}},
		{name: "hub", keys: []string{"6"}},
		{name: "hub_restart_confirm", keys: []string{"6", "R"}},
		{name: "hub_repair_needs_root", keys: []string{"6", "f"}},
		{name: "users", keys: []string{"7"}},
		{name: "users_readonly", keys: []string{"7", "down", "down", "a", "D"}, readOnly: true},
		{name: "users_filtered_sorted", keys: []string{"7", "/", "oidc", "enter", "S"}},
		{name: "users_unmake_admin", keys: []string{"7", "down", "down", "a"}},
		{name: "users_make_admin", keys: []string{"7", "a"}},
		{name: "users_delete_confirm", keys: []string{"7", "D", "ali"}},
		{name: "users_deleted", keys: []string{"7", "D", "alice", "enter"}},
		{name: "shares", keys: []string{"8"}, fake: func(f *fake) {
			f.shares = wire.Shares{Public: "/srv/hubd/shares/public", Shares: []wire.Share{
				{Name: "genomics", Path: "/srv/hubd/shares/genomics", Group: "share-genomics", Members: []string{"alice", "bob"}},
				{Name: "thesis", Path: "/srv/hubd/shares/thesis", Group: "share-thesis", Members: []string{}},
			}}
		}},
		{name: "shares_check", keys: []string{"8", "n", "proj alice bob", "enter", "c"}},
		{name: "shares_readonly_hub", keys: []string{"8"}, fake: func(f *fake) {
			f.shares = wire.Shares{Shares: []wire.Share{}, ReadOnly: "the hub runs as hub, not root, so it cannot create groups or change ownership: change shares with `sudo hubd share ...` on the server"}
		}},
		{name: "not_running", fake: func(f *fake) { f.whoErr = notRunning }},
		{name: "permission_denied", fake: func(f *fake) {
			f.whoErr = &client.SocketPermissionError{Socket: wire.DefaultSocket, Groups: []string{"hubadmin", "hubusers"}}
		}},
		{name: "refused", fake: func(f *fake) {
			f.whoErr = &client.AccessDeniedError{Message: "uid 1005 (mallory) is neither an admin nor a member of this hub: ask an admin to add you to auth.allowed_group"}
		}},
		{name: "fetch_error_in_place", keys: []string{"2"},
			fail: &client.APIError{Status: 503, Message: "database is locked: try again in a moment"}},
		{name: "hub_went_away", keys: []string{"2"}, fail: notRunning},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, sz := range sizes {
				t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
					f := newFake()
					if tc.fake != nil {
						tc.fake(f)
					}
					m := start(f, sz[0], sz[1], tc.readOnly)
					m = drive(m, press(tc.keys...)...)
					if tc.step != nil {
						m.startOp("Backing up the hub…", nil)
						m = drive(m, progressMsg{progress: *tc.step})
					}
					if tc.fail != nil {
						f.mu.Lock()
						f.readErr = tc.fail
						f.mu.Unlock()
						m = drive(m, press("r")...)
					}
					out := ansi.Strip(m.Render())
					if got := len(splitLines(out)); got != sz[1] {
						t.Errorf("rendered %d lines, want %d", got, sz[1])
					}
					for i, l := range splitLines(out) {
						if w := ansi.StringWidth(l); w > sz[0] {
							t.Errorf("line %d is %d cells wide, over %d: %q", i+1, w, sz[0], l)
						}
					}
					golden.RequireEqual(t, out)
				})
			}
		})
	}
}

func splitLines(s string) []string { return strings.Split(s, "\n") }
