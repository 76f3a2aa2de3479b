package ui

import (
	"errors"
	"fmt"
	"strings"

	"charm.land/lipgloss/v2"

	"github.com/hubd/hubd/core/admin/client"
)

// problem is what the console says when it cannot work at all: a title
// and the error, whose text (from the client's typed errors) carries
// the exact fix.
func problem(err error) (title, body string) {
	switch {
	case isType[*client.NotRunningError](err):
		title = "The hub is not running"
	case isType[*client.SocketPermissionError](err):
		title = "No access to the hub's admin socket"
	case isType[*client.AccessDeniedError](err):
		title = "The hub refuses this account"
	default:
		title = "Cannot talk to the hub"
	}
	return title, clean(err.Error())
}

func isType[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}

// renderProblem fills the screen with the problem, what hubtui does
// about it, and the keys that still work.
func renderProblem(c *Common, err error, helpLine string, width, height int) string {
	st := c.styles
	title, body := problem(err)
	inner := min(width-st.ScreenBox.GetHorizontalFrameSize(), 76)
	retry := "Press r to try again."
	if c.refresh > 0 {
		retry = fmt.Sprintf("hubtui tries again every %s; press r to try now.", c.refresh)
	}
	text := strings.Join([]string{
		st.Error.Bold(true).Render(title),
		"",
		wrap(body, inner),
		"",
		st.Muted.Render(wrap(retry, inner)),
	}, "\n")
	box := st.ScreenBox.Render(text)
	return lipgloss.Place(width, max(height-1, 1), lipgloss.Center, lipgloss.Center, box) + "\n" + helpLine
}

// renderConnecting is the screen until the hub first answers.
func renderConnecting(c *Common, spin string, width, height int) string {
	return lipgloss.Place(width, height, lipgloss.Center, lipgloss.Center,
		spin+" Connecting to the hub at "+c.socket+"…")
}
