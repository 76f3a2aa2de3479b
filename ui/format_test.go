package ui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hubd/hubd/core/admin/wire"
)

func TestWrapKeepsNamesWhole(t *testing.T) {
	in := "then run hubd backup restore hubd-20260315T020000Z-nightly.tar.gz"
	got := wrap(in, 40)
	for _, l := range strings.Split(got, "\n") {
		if ansi.StringWidth(l) > 40 {
			t.Errorf("line over 40 cells: %q", l)
		}
	}
	if !strings.Contains(got, "hubd-20260315T020000Z-nightly.tar.gz") {
		t.Errorf("the archive name was split:\n%s", got)
	}
	if got := wrap(strings.Repeat("x", 25), 10); got != "xxxxxxxxxx\nxxxxxxxxxx\nxxxxx" {
		t.Errorf("a word longer than a line: %q", got)
	}
}

func TestClean(t *testing.T) {
	if got := clean("a\x1b[31mred\x1b[0m\tb\x07c\x1b]0;title\x07"); got != "ared b?c" {
		t.Errorf("clean = %q", got)
	}
}

func TestNameList(t *testing.T) {
	for n, want := range []string{"", "a", "a and b", "a, b and c"} {
		if got := nameList([]string{"a", "b", "c"}[:n]); got != want {
			t.Errorf("nameList(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestStopOutcome(t *testing.T) {
	got := stopOutcome(wire.StopResult{
		Stopped:    []string{"alice"},
		NotRunning: []string{"bob"},
		Failed:     []wire.StopFailure{{User: "carol", Error: "kill: operation not permitted"}},
	})
	if got.text != "Stopped the server of alice. bob had no server running." {
		t.Errorf("text = %q", got.text)
	}
	if got.err == nil || got.err.Error() != "could not stop carol: kill: operation not permitted" {
		t.Errorf("err = %v", got.err)
	}
	if len(got.stopped) != 1 || got.stopped[0] != "alice" {
		t.Errorf("stopped = %q", got.stopped)
	}
	if err := stopOutcome(wire.StopResult{Stopped: []string{"a"}}).err; err != nil {
		t.Errorf("a clean stop reported %v", err)
	}
}

// TestNoColor: with NO_COLOR no style sets a colour; the cursor row is
// still told apart, by reverse video.
func TestNoColor(t *testing.T) {
	m := New(Options{Client: newFake(), Now: clock, NoColor: true})
	m = drive(m, tea.WindowSizeMsg{Width: 80, Height: 24}, m.Init()())
	out := m.Render()
	for _, sgr := range []string{"38;", "48;"} { // lipgloss writes every colour as 38;… or 48;…
		if strings.Contains(out, sgr) {
			t.Errorf("colour sequence %q in the NO_COLOR screen:\n%q", sgr, out)
		}
	}
	if !strings.Contains(out, "\x1b[7m") {
		t.Error("no reverse video for the selected row")
	}
	// The text fields and the progress bar too.
	m = drive(m, press("/", "al")...)
	filter := m.Render()
	m = drive(m, press("esc", "2", "R", "hubd")...)
	m.startOp("Backing up the hub…", nil)
	m = drive(m, progressMsg{progress: wire.Progress{Stage: "copy database", Done: 1, Total: 2}})
	for want, out := range map[string]string{"filter: al": filter, "> hubd": m.Render(), "50%": m.Render()} {
		if !strings.Contains(ansi.Strip(out), want) {
			t.Errorf("%q is not on the NO_COLOR screen:\n%s", want, ansi.Strip(out))
		}
		for _, sgr := range []string{"38;", "48;"} {
			if strings.Contains(out, sgr) {
				t.Errorf("colour sequence %q in the NO_COLOR screen with %q:\n%q", sgr, want, out)
			}
		}
	}
}
