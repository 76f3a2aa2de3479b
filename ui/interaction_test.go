package ui

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
)

// run starts the console on f in a real Bubble Tea program (80×24, no
// colour, no refresh timer) and waits until the sessions are on screen.
func run(t *testing.T, f *fake, readOnly bool) *teatest.TestModel {
	t.Helper()
	tm := teatest.NewTestModel(t, New(Options{Client: f, ReadOnly: readOnly, Now: clock}),
		teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	waitScreen(t, tm, "carol")
	return tm
}

// waitScreen waits until the program has drawn word. The renderer only
// rewrites the cells that changed, so only a word drawn where nothing
// like it was before is sure to show up whole in the output.
func waitScreen(t *testing.T, tm *teatest.TestModel, word string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return bytes.Contains([]byte(ansi.Strip(string(b))), []byte(word))
	}, teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(5*time.Millisecond))
}

func send(tm *teatest.TestModel, keys ...string) {
	for _, m := range press(keys...) {
		tm.Send(m)
	}
}

// quit ends the program with q (or ctrl+c when a prompt would take the
// q) and returns the final model.
func quit(t *testing.T, tm *teatest.TestModel, ctrlC bool) Model {
	t.Helper()
	if ctrlC {
		tm.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	} else {
		send(tm, "q")
	}
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
}

func (f *fake) stopCalls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.stops)
}

func sessionsOf(m Model) *listView[wire.Session] { return m.pages[pageSessions].(*sessionsPage).list }

func shownUsers(m Model) []string {
	var out []string
	for _, s := range sessionsOf(m).shown {
		out = append(out, s.User)
	}
	return out
}

func TestKillMarkedWithConfirmation(t *testing.T) {
	f := newFake()
	tm := run(t, f, false)
	send(tm, "space", "space", "x")
	waitScreen(t, tm, "marked") // "2 marked" in the list's line
	send(tm, "y")
	waitScreen(t, tm, "Stopped")
	m := quit(t, tm, false)

	if got, want := f.stopCalls(), [][]string{{"alice", "bob"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("stops = %q, want %q", got, want)
	}
	if m.flashErr || m.flash != "Stopped the servers of alice and bob." {
		t.Errorf("status line = %q (error %v), want the outcome", m.flash, m.flashErr)
	}
	if m.prompt != nil || m.busy != "" {
		t.Errorf("prompt %v, busy %q after the stop", m.prompt, m.busy)
	}
	if !strings.Contains(ansi.Strip(m.Render()), "Stopped the servers of alice and bob.") {
		t.Errorf("the outcome is not on screen:\n%s", ansi.Strip(m.Render()))
	}
}

func TestKillOneWithCtrlK(t *testing.T) {
	f := newFake()
	tm := run(t, f, false)
	send(tm, "down", "ctrl+k", "y") // bob, the idle one
	waitScreen(t, tm, "Stopped")
	m := quit(t, tm, false)
	if got := f.stopCalls(); len(got) != 1 || !slices.Equal(got[0], []string{"bob"}) {
		t.Errorf("stops = %q, want [[bob]]", got)
	}
	if m.flash != "Stopped the server of bob." {
		t.Errorf("status line = %q", m.flash)
	}
}

func TestKillCancelled(t *testing.T) {
	for _, no := range []string{"n", "esc"} {
		t.Run(no, func(t *testing.T) {
			f := newFake()
			tm := run(t, f, false)
			send(tm, "space", "space", "x", no)
			m := quit(t, tm, false)
			if got := f.stopCalls(); len(got) != 0 {
				t.Errorf("stops = %q after cancelling, want none", got)
			}
			if m.prompt != nil || m.busy != "" {
				t.Errorf("prompt %v, busy %q after cancelling", m.prompt, m.busy)
			}
			if n := len(sessionsOf(m).marks); n != 2 {
				t.Errorf("%d marks after cancelling, want the 2 kept", n)
			}
		})
	}
}

func TestFilterNarrowsAndKillNamesHidden(t *testing.T) {
	f := newFake()
	tm := run(t, f, false)
	// Mark alice and bob, then filter down to bob alone: alice is
	// marked but hidden, and the confirmation must say so.
	send(tm, "space", "space", "/", "bob", "enter", "x")
	m := quit(t, tm, true)

	if got := shownUsers(m); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("filter bob shows %q", got)
	}
	if m.prompt == nil {
		t.Fatal("no confirmation after x")
	}
	if want := "Stop the servers of alice and bob? (1 marked server hidden by the filter)"; m.prompt.question != want {
		t.Errorf("confirmation = %q, want %q", m.prompt.question, want)
	}
	if got := f.stopCalls(); len(got) != 0 {
		t.Errorf("stops = %q before any answer", got)
	}
}

func TestFilterClearedWithEsc(t *testing.T) {
	tm := run(t, newFake(), false)
	send(tm, "/", "a", "esc")
	m := quit(t, tm, false)
	if got := shownUsers(m); len(got) != 4 {
		t.Errorf("after esc the list shows %q, want all 4", got)
	}
	if l := sessionsOf(m); l.filtering || l.filter.Value() != "" {
		t.Errorf("filter still on: %q", l.filter.Value())
	}
}

// TestFilterTakesQ: while typing a filter, q is a letter, not quit.
func TestFilterTakesQ(t *testing.T) {
	tm := run(t, newFake(), false)
	send(tm, "/", "q")
	m := quit(t, tm, true)
	if got := sessionsOf(m).filter.Value(); got != "q" {
		t.Errorf("filter = %q, want q", got)
	}
}

func TestReadOnly(t *testing.T) {
	cases := map[string]struct {
		flag bool
		role wire.Role
	}{
		"flag":   {flag: true, role: wire.RoleAdmin},
		"member": {role: wire.RoleMember},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFake()
			f.who.Role = tc.role
			tm := run(t, f, tc.flag)
			send(tm, "space", "x", "ctrl+k", "y", "2")
			waitScreen(t, tm, "nightly")
			send(tm, "n", "R", "3")
			waitScreen(t, tm, "Pending")
			send(tm, "U", "7")
			waitScreen(t, tm, "carol")
			send(tm, "a", "D", "?")
			m := quit(t, tm, false)

			if got := f.stopCalls(); len(got) != 0 {
				t.Errorf("stops = %q in read-only mode", got)
			}
			if admins, deleted := f.userCalls(); len(admins)+len(deleted) != 0 {
				t.Errorf("admin changes %q, deletes %q in read-only mode", admins, deleted)
			}
			if m.prompt != nil || m.busy != "" {
				t.Errorf("prompt %v, busy %q in read-only mode", m.prompt, m.busy)
			}
			screen := ansi.Strip(m.Render())
			for _, gone := range []string{"stop server", "new backup", "restore", "run upgrade", "make/unmake admin", "delete user"} {
				for _, p := range m.pages {
					m.help.ShowAll = false
					short := m.help.View(helpKeysOf(m, p))
					m.help.ShowAll = true
					full := m.help.View(helpKeysOf(m, p))
					if strings.Contains(short+full, gone) {
						t.Errorf("help offers %q in read-only mode:\n%s\n%s", gone, short, full)
					}
				}
			}
			if !strings.Contains(screen, "READ-ONLY") {
				t.Errorf("no READ-ONLY badge:\n%s", screen)
			}
		})
	}
}

// helpKeysOf is the help the root shows with p as the current view.
func helpKeysOf(m Model, p page) helpKeys {
	for i, q := range m.pages {
		if q == p {
			m.active = pageID(i)
		}
	}
	return m.helpKeys()
}

func TestStopErrorShowsInPlace(t *testing.T) {
	f := newFake()
	f.stopErr = &client.APIError{Status: 500, Message: "spawner: kill 31337: operation not permitted"}
	tm := run(t, f, false)
	send(tm, "space", "x", "y")
	waitScreen(t, tm, "permitted")
	m := quit(t, tm, false)

	if !m.flashErr || m.flash != "error: stop alice: spawner: kill 31337: operation not permitted" {
		t.Errorf("status line = %q (error %v)", m.flash, m.flashErr)
	}
	if m.state != stateReady || m.active != pageSessions {
		t.Errorf("left the view: state %d, page %d", m.state, m.active)
	}
	if got := shownUsers(m); len(got) != 4 {
		t.Errorf("the list lost its rows: %q", got)
	}
	if n := len(sessionsOf(m).marks); n != 1 {
		t.Errorf("%d marks after a failed stop, want alice's kept", n)
	}
}

func TestRestoreNeedsTheNameTyped(t *testing.T) {
	f := newFake()
	tm := run(t, f, false)
	send(tm, "2")
	waitScreen(t, tm, "nightly")
	name := "hubd-20260315T020000Z-nightly.tar.gz"
	send(tm, "R", "hubd", "enter") // not the name: the prompt stays
	waitScreen(t, tm, "exactly")
	if got := f.restoreCalls(); len(got) != 0 {
		t.Fatalf("restore ran on a wrong name: %q", got)
	}
	send(tm, "-20260315T020000Z-nightly.tar.gz", "enter")
	waitScreen(t, tm, "systemctl")
	m := quit(t, tm, false)

	if got := f.restoreCalls(); !slices.Equal(got, []string{name}) {
		t.Errorf("restores = %q, want [%s]", got, name)
	}
	if !m.flashErr || !strings.Contains(m.flash, "hubd backup restore "+name) {
		t.Errorf("status line = %q, want the hub's refusal with the command", m.flash)
	}
}

func TestUpgradeTyped(t *testing.T) {
	f := newFake()
	tm := run(t, f, false)
	send(tm, "3")
	waitScreen(t, tm, "Pending")
	send(tm, "U", "upgrade", "enter")
	waitScreen(t, tm, "applied")
	m := quit(t, tm, false)
	f.mu.Lock()
	n := f.upgrades
	f.mu.Unlock()
	if n != 1 {
		t.Errorf("%d upgrades, want 1", n)
	}
	if m.flash != "applied 2 steps; the database is at schema 9" {
		t.Errorf("status line = %q", m.flash)
	}
}

func TestBackupShowsProgressThenResult(t *testing.T) {
	tm := run(t, newFake(), false)
	send(tm, "2", "n")
	waitScreen(t, tm, "Backed")
	m := quit(t, tm, false)
	if m.busy != "" || m.progress != nil {
		t.Errorf("still busy: %q %v", m.busy, m.progress)
	}
	if m.flash != "Backed up to hubd-20260315T143000Z-hubtui.tar.gz (18.0M)." {
		t.Errorf("status line = %q", m.flash)
	}
}

func TestNotRunningScreenQuits(t *testing.T) {
	f := newFake()
	f.whoErr = notRunning
	tm := teatest.NewTestModel(t, New(Options{Client: f, Now: clock}), teatest.WithInitialTermSize(80, 24))
	waitScreen(t, tm, "systemctl")
	m := quit(t, tm, false)
	if m.state != stateUnreachable {
		t.Errorf("state %d, want unreachable", m.state)
	}
}

func (f *fake) restoreCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.restores)
}

// TestPaste: a bracketed paste goes into the filter and into a typed
// confirmation, one line without its control characters, so a name
// copied with its line end still matches.
func TestPaste(t *testing.T) {
	f := newFake()
	m := start(f, 80, 24, false)
	m = drive(m, append(press("/"), tea.PasteMsg{Content: "bo\tb\n"})...)
	if got := sessionsOf(m).filter.Value(); got != "bob" {
		t.Errorf("filter after a paste = %q, want bob", got)
	}
	if got := shownUsers(m); !slices.Equal(got, []string{"bob"}) {
		t.Errorf("pasted filter bob shows %q", got)
	}
	name := "hubd-20260315T020000Z-nightly.tar.gz"
	msgs := append(press("esc", "2", "R"), tea.PasteMsg{Content: name + "\r\n"})
	drive(m, append(msgs, press("enter")...)...)
	if got := f.restoreCalls(); !slices.Equal(got, []string{name}) {
		t.Errorf("restores after pasting the name = %q, want [%s]", got, name)
	}
}

// TestDetailScrolls: the log scrolls with the console's keys, and the
// viewport's own defaults that the console does not use (space, d, u,
// l) leave it alone.
func TestDetailScrolls(t *testing.T) {
	f := newFake()
	tail := f.logs["alice"]
	for i := range 100 {
		tail.Lines = append(tail.Lines, fmt.Sprintf("line %d", i))
	}
	f.logs["alice"] = tail
	m := start(f, 80, 24, false)
	m = drive(m, press("enter")...)
	log := func() *viewport.Model { return &m.pages[pageSessions].(*sessionsPage).detail.log }
	bottom := log().YOffset()
	if !log().AtBottom() || bottom == 0 {
		t.Fatalf("the log does not start at its end: offset %d", bottom)
	}
	steps := []struct {
		keys []string
		want int
	}{
		{[]string{"k"}, bottom - 1},
		{[]string{"space", "d", "u", "l"}, bottom - 1},
		{[]string{"j"}, bottom},
		{[]string{"g"}, 0},
		{[]string{"down", "down"}, 2},
		{[]string{"G"}, bottom},
	}
	for _, s := range steps {
		m = drive(m, press(s.keys...)...)
		if got := log().YOffset(); got != s.want {
			t.Errorf("after %q the log is at line %d, want %d", s.keys, got, s.want)
		}
	}
	m = drive(m, tea.KeyPressMsg{Code: tea.KeyPgUp})
	if got, want := log().YOffset(), bottom-log().Height(); got != want {
		t.Errorf("after pgup the log is at line %d, want %d", got, want)
	}
}

// TestTokensIssueShownOnceAndRevoke: n takes "owner scopes expires= note=",
// the token is shown once, x revokes after a y.
func TestTokensIssueShownOnceAndRevoke(t *testing.T) {
	f := newFake()
	f.tokens = []wire.Token{{ID: "a3", Service: "culler", Kind: "service", Scopes: []string{"inherit"}, Note: "from the configuration", Created: now}}
	tm := run(t, f, false)
	send(tm, "5")
	waitScreen(t, tm, "service:culler")
	send(tm, "n")
	waitScreen(t, tm, "[expires=720h]")
	tm.Send(tea.PasteMsg{Content: "alice read:users!user expires=720h note=ci runner"})
	send(tm, "enter")
	waitScreen(t, tm, "0123456789abcdef0123456789abcdef")
	f.mu.Lock()
	issued := slices.Clone(f.issued)
	f.mu.Unlock()
	want := wire.TokenRequest{User: "alice", Scopes: []string{"read:users!user"}, ExpiresInSeconds: 720 * 3600, Note: "ci runner"}
	if len(issued) != 1 || issued[0].User != want.User || !slices.Equal(issued[0].Scopes, want.Scopes) ||
		issued[0].ExpiresInSeconds != want.ExpiresInSeconds || issued[0].Note != want.Note {
		t.Fatalf("issued %+v, want %+v", issued, want)
	}
	send(tm, "down", "x")
	waitScreen(t, tm, "alice?")
	send(tm, "y")
	waitScreen(t, tm, "Revoked")
	m := quit(t, tm, false)
	if strings.Contains(ansi.Strip(m.Render()), "0123456789abcdef0123456789abcdef") {
		t.Error("the token is still on screen after other keys")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.revoked, []string{"a7"}) {
		t.Errorf("revoked %v, want [a7]", f.revoked)
	}
}

func TestParseTokenRequest(t *testing.T) {
	req, err := parseTokenRequest("service:culler list:users read:servers note=for the culler")
	if err != nil || req.Service != "culler" || req.User != "" || len(req.Scopes) != 2 || req.Note != "for the culler" {
		t.Errorf("service request = %+v, %v", req, err)
	}
	for _, bad := range []string{"", "  ", "bob expires=-1h", "bob expires=soon"} {
		if _, err := parseTokenRequest(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func (f *fake) userCalls() (admins, deleted []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.admins), slices.Clone(f.deleted)
}

func usersOf(m Model) *listView[wire.User] { return m.pages[pageUsers].(*usersPage).list }

// runUsers starts the console on f and opens the users view.
func runUsers(t *testing.T, f *fake) *teatest.TestModel {
	t.Helper()
	tm := run(t, f, false)
	send(tm, "7")
	waitScreen(t, tm, "by rules")
	return tm
}

// TestUsersMakeAdmin: a on a user who is no admin asks, naming them, and
// y makes them one by hand.
func TestUsersMakeAdmin(t *testing.T) {
	f := newFake()
	tm := runUsers(t, f)
	send(tm, "a")
	waitScreen(t, tm, "Make alice an admin?")
	send(tm, "y")
	waitScreen(t, tm, "now an admin")
	m := quit(t, tm, false)
	if admins, _ := f.userCalls(); !slices.Equal(admins, []string{"alice=true"}) {
		t.Errorf("admin changes %q, want [alice=true]", admins)
	}
	if m.flash != "alice is now an admin." || m.flashErr {
		t.Errorf("status line = %q (error %v)", m.flash, m.flashErr)
	}
	if u, _ := usersOf(m).selected(); u.Name != "alice" || !u.AdminByHand {
		t.Errorf("after the refresh the cursor is on %+v", u)
	}
}

// TestUsersUnmakeAdminNamesTheRule: unmaking an admin whom a login rule
// made one says, before and after, that the rule decides at the next
// login; n changes nothing.
func TestUsersUnmakeAdminNamesTheRule(t *testing.T) {
	f := newFake()
	tm := runUsers(t, f)
	send(tm, "down", "down", "a", "n", "a")
	waitScreen(t, tm, "Unmake carol")
	m := drive(start(f, 80, 24, false), press("7", "down", "down", "a")...)
	if m.prompt == nil || m.prompt.question != "Unmake carol as an admin?" ||
		!strings.Contains(m.prompt.note, "auth.oidc.admin_groups: lab-admins made carol an admin at their last login and will again") {
		t.Fatalf("prompt %+v", m.prompt)
	}
	send(tm, "y")
	waitScreen(t, tm, "no longer")
	m = quit(t, tm, false)
	if admins, _ := f.userCalls(); !slices.Equal(admins, []string{"carol=false"}) {
		t.Errorf("admin changes %q, want [carol=false] (the n changed nothing)", admins)
	}
	if !strings.HasPrefix(m.flash, "carol is no longer an admin. Note: auth.oidc.admin_groups: lab-admins made carol an admin") {
		t.Errorf("status line = %q", m.flash)
	}
}

// TestUsersUnlink: u on carol (bound to an SSO login) asks, naming the
// method, and y frees her name; the list then shows no login method.
func TestUsersUnlink(t *testing.T) {
	f := newFake()
	tm := runUsers(t, f)
	send(tm, "down", "down", "u")
	waitScreen(t, tm, "Unlink carol from their oidc login?")
	send(tm, "y")
	waitScreen(t, tm, "no longer linked")
	m := quit(t, tm, false)
	if !strings.HasPrefix(m.flash, "carol is no longer linked to a login; the next login as carol, through any login method the hub offers (oidc included)") || m.flashErr {
		t.Errorf("status line = %q (error %v)", m.flash, m.flashErr)
	}
	if u, _ := usersOf(m).selected(); u.Name != "carol" || u.Method != "" {
		t.Errorf("after the refresh the cursor is on %+v", u)
	}
}

// TestUsersDeleteNeedsTheName: D asks for the user's name; a wrong one
// changes nothing, the right one stops the servers and deletes the user.
func TestUsersDeleteNeedsTheName(t *testing.T) {
	f := newFake()
	tm := runUsers(t, f)
	send(tm, "D", "alic", "enter")
	waitScreen(t, tm, "exactly")
	if _, deleted := f.userCalls(); len(deleted) != 0 {
		t.Fatalf("deleted %q on a wrong name", deleted)
	}
	send(tm, "e", "enter")
	waitScreen(t, tm, "deleted the user")
	m := quit(t, tm, false)
	if _, deleted := f.userCalls(); !slices.Equal(deleted, []string{"alice"}) {
		t.Errorf("deleted %q, want [alice]", deleted)
	}
	if m.flash != "Stopped the server of alice, then deleted the user alice." {
		t.Errorf("status line = %q", m.flash)
	}
	if slices.ContainsFunc(usersOf(m).items, func(u wire.User) bool { return u.Name == "alice" }) {
		t.Error("alice is still listed after the delete")
	}
}

// TestUsersFilterAndSort: the filter reads every cell; s and S sort.
func TestUsersFilterAndSort(t *testing.T) {
	m := start(newFake(), 160, 48, false)
	m = drive(m, press("7", "/", "dynamic", "enter")...)
	if got := usersOf(m).shown; len(got) != 1 || got[0].Name != "carol" {
		t.Errorf("filter dynamic shows %+v", got)
	}
	m = drive(m, press("esc", "s", "s", "s", "s")...) // by SEEN: most recent first
	var names []string
	for _, u := range usersOf(m).shown {
		names = append(names, u.Name)
	}
	if want := []string{"alice", "carol", "dave", "bob", "erin"}; !slices.Equal(names, want) {
		t.Errorf("sorted by last seen: %q, want %q", names, want)
	}
}

func TestSharesCreateChangeCheckRepair(t *testing.T) {
	f := newFake()
	tm := run(t, f, false)
	send(tm, "8")
	waitScreen(t, tm, "No shares")
	send(tm, "n")
	waitScreen(t, tm, "name user")
	tm.Send(tea.PasteMsg{Content: "proj alice bob"})
	send(tm, "enter")
	waitScreen(t, tm, "Created proj")
	send(tm, "d")
	waitScreen(t, tm, "Remove from proj")
	tm.Send(tea.PasteMsg{Content: "bob"})
	send(tm, "enter")
	waitScreen(t, tm, "Members of proj: alice")
	send(tm, "c")
	waitScreen(t, tm, "1 file-mode (e.g. /srv/hubd/shares/proj/draft.txt)")
	send(tm, "f")
	waitScreen(t, tm, "Repaired proj")
	quit(t, tm, false)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.shares.Shares) != 1 || !slices.Equal(f.shares.Shares[0].Members, []string{"alice"}) {
		t.Errorf("shares %+v", f.shares.Shares)
	}
	if !slices.Equal(f.shareChecks, []string{"proj false", "proj true"}) {
		t.Errorf("checks %v", f.shareChecks)
	}
}

// A read-only console cannot change shares, but may check them.
func TestSharesReadOnly(t *testing.T) {
	f := newFake()
	f.shares.Shares = []wire.Share{{Name: "proj", Path: "/srv/hubd/shares/proj", Group: "share-proj", Members: []string{"alice"}}}
	tm := run(t, f, true)
	send(tm, "8")
	waitScreen(t, tm, "share-proj")
	send(tm, "n", "a", "x", "f", "c")
	waitScreen(t, tm, "file-mode")
	quit(t, tm, true)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.shareChecks, []string{"proj false"}) {
		t.Errorf("a read-only console ran %v", f.shareChecks)
	}
}
