package ui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hubd/hubd/core/admin/wire"
)

// renderHeader draws the hub status bar and the tabs: always on screen,
// so the admin never loses sight of which hub this is and how it is.
func renderHeader(c *Common, status wire.Status, statusErr error, active pageID, width int) string {
	st := c.styles
	var segs []string
	switch {
	case statusErr != nil:
		segs = []string{"hubd: status unavailable: " + clean(statusErr.Error())}
	case status.Version == "":
		segs = []string{"hubd: status loading…"}
	default:
		segs = []string{
			"hubd " + clean(status.Version),
			"up " + compactDuration(time.Duration(status.UptimeSeconds)*time.Second),
			fmt.Sprintf("%d active %s", status.ActiveServers, plural(status.ActiveServers, "server", "servers")),
		}
		if n := status.Servers["failed"]; n > 0 {
			segs = append(segs, fmt.Sprintf("%d failed", n))
		}
		segs = append(segs,
			fmt.Sprintf("%d %s", status.Users, plural(status.Users, "user", "users")),
			fmt.Sprintf("schema %d", status.SchemaVersion),
			fmt.Sprintf("pid %d", status.PID),
			"spawner "+clean(status.SpawnerKind),
		)
		for _, l := range status.Listeners {
			if l.Name != "admin" {
				segs = append(segs, clean(l.Name)+" "+clean(l.Addr))
			}
		}
	}
	line2 := renderTabs(st, active, false)
	if lipgloss.Width(line2) > width {
		// A narrow screen: the other tabs by number only.
		line2 = renderTabs(st, active, true)
	}
	who := "you: " + whoText(c.who)
	if c.readOnly {
		// Say why when there is room: the flag, or the hub's answer.
		why := "--readonly"
		if !c.flagRO {
			why = string(c.who.Role)
		}
		placed := false
		for _, text := range []string{"READ-ONLY (" + why + ")", "READ-ONLY"} {
			badge := st.Badge.Render(text)
			if pad := width - lipgloss.Width(line2) - lipgloss.Width(badge) - 1; pad > 0 {
				line2 += strings.Repeat(" ", pad) + badge
				placed = true
				break
			}
		}
		if !placed {
			// The tabs fill a narrow screen: the status line says it.
			who += " READ-ONLY"
		}
	}
	bar := fitSegments(segs, " · ", width-ansi.StringWidth(who)-3)
	gap := max(width-ansi.StringWidth(bar)-ansi.StringWidth(who)-2, 1)
	line1 := st.Header.Render(ansi.Truncate(" "+bar+strings.Repeat(" ", gap)+who+" ", width, "…"))
	return line1 + "\n" + line2
}

// renderTabs draws the tab bar; brackets mark the current tab without
// colour too. short leaves the titles of the other tabs out.
func renderTabs(st Styles, active pageID, short bool) string {
	var tabs []string
	for i, t := range pageTitles {
		switch {
		case pageID(i) == active:
			tabs = append(tabs, st.ActiveTab.Render(fmt.Sprintf("[%d %s]", i+1, t)))
		case short:
			tabs = append(tabs, st.Tab.Render(fmt.Sprintf(" %d ", i+1)))
		default:
			tabs = append(tabs, st.Tab.Render(fmt.Sprintf(" %d %s ", i+1, t)))
		}
	}
	return lipgloss.JoinHorizontal(lipgloss.Top, tabs...)
}

func whoText(w wire.WhoAmI) string {
	name := w.User
	if name == "" {
		name = fmt.Sprintf("uid %d", w.UID)
	}
	return clean(name) + " (" + string(w.Role) + ")"
}

// fitSegments joins as many leading segments as fit in width; the first
// is cut if it alone is too long.
func fitSegments(segs []string, sep string, width int) string {
	if len(segs) == 0 {
		return ""
	}
	out := ansi.Truncate(segs[0], width, "…")
	for _, s := range segs[1:] {
		next := out + sep + s
		if ansi.StringWidth(next) > width {
			break
		}
		out = next
	}
	return out
}
