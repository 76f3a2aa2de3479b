package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
)

// tmux drives a private tmux server (-L) so the test never touches others.
type tmux struct {
	t      *testing.T
	socket string
}

func (x tmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.socket}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

func (x tmux) screen() string { return x.run("capture-pane", "-p", "-t", "t") }

// waitScreen polls the screen until it contains want.
func (x tmux) waitScreen(want string) string {
	x.t.Helper()
	var last string
	if err := waitFor(30*time.Second, func() error {
		last = x.screen()
		if !strings.Contains(last, want) {
			return fmt.Errorf("screen lacks %q", want)
		}
		return nil
	}); err != nil {
		x.t.Fatalf("%v; the screen was:\n%s", err, last)
	}
	return last
}

func TestHubtuiAgainstTheRealHub(t *testing.T) {
	need(t)
	b := newBrowser(t)
	startServer(t, b, alice, alicePW)
	if len(serverPIDs(t, alice)) == 0 {
		t.Fatal("alice's server is not running")
	}
	socket := filepath.Join(env.dataDir, "run", "hubd.sock")
	x := hubtuiOn(t, socket)

	t.Run("sees the session", func(t *testing.T) {
		x.waitScreen(alice)
		x.waitScreen("running")
	})

	t.Run("kills it and the process is gone", func(t *testing.T) {
		x.run("send-keys", "-t", "t", "/")
		x.run("send-keys", "-t", "t", "-l", "alice")
		x.run("send-keys", "-t", "t", "Enter")
		x.run("send-keys", "-t", "t", "x")
		x.waitScreen("Stop the server")
		x.run("send-keys", "-t", "t", "y")
		if err := waitFor(30*time.Second, func() error {
			if p := serverPIDs(t, alice); len(p) > 0 {
				return fmt.Errorf("still running: %v", p)
			}
			return nil
		}); err != nil {
			t.Fatalf("%v; screen:\n%s", err, x.screen())
		}
		// Clear the filter, and see it cleared before the next key: an
		// Escape followed at once by another key reads as Alt+key.
		x.run("send-keys", "-t", "t", "Escape")
		if err := waitFor(10*time.Second, func() error {
			if strings.Contains(x.screen(), "filter: alice") {
				return fmt.Errorf("filter still shown")
			}
			return nil
		}); err != nil {
			t.Fatalf("%v; screen:\n%s", err, x.screen())
		}
	})

	t.Run("creates a backup that verifies", func(t *testing.T) {
		dir := filepath.Join(env.dataDir, "backups")
		before, _ := backups.List(dir)
		x.run("send-keys", "-t", "t", "2")
		x.waitScreen("Backups")
		x.run("send-keys", "-t", "t", "n")
		var after []backups.Info
		if err := waitFor(60*time.Second, func() error {
			after, _ = backups.List(dir)
			if len(after) <= len(before) {
				return fmt.Errorf("no new archive yet")
			}
			return nil
		}); err != nil {
			t.Fatalf("%v; screen:\n%s", err, x.screen())
		}
		newest := after[0]
		if _, err := backups.Verify(context.Background(), newest.Path); err != nil {
			t.Fatalf("the backup made from hubtui does not verify: %v", err)
		}
		x.waitScreen(filepath.Base(newest.Path)[:20])
	})

	t.Run("shows the upgrade plan", func(t *testing.T) {
		x.run("send-keys", "-t", "t", "3")
		screen := x.waitScreen("Upgrade plan")
		if !strings.Contains(screen, "2") {
			t.Errorf("upgrade plan does not show the schema version:\n%s", screen)
		}
	})

	t.Run("makes a user an admin, then deletes the user", func(t *testing.T) {
		login := func() {
			r := newBrowser(t).login(bob, bobPW)
			r.Body.Close()
			if r.StatusCode != http.StatusFound {
				t.Fatalf("bob's login: %d", r.StatusCode)
			}
		}
		login()
		admin := &client.Client{Socket: socket}
		userOf := func() (wire.User, bool) {
			users, err := admin.AllUsers(context.Background(), bob)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range users {
				if u.Name == bob {
					return u, true
				}
			}
			return wire.User{}, false
		}
		x.run("send-keys", "-t", "t", "7")
		x.waitScreen("LAST SEEN")
		x.run("send-keys", "-t", "t", "/")
		x.run("send-keys", "-t", "t", "-l", bob)
		x.run("send-keys", "-t", "t", "Enter")
		x.waitScreen(bob + " is not an admin")
		x.run("send-keys", "-t", "t", "a")
		x.waitScreen("Make " + bob + " an admin?")
		x.run("send-keys", "-t", "t", "y")
		x.waitScreen(bob + " is now an admin.")
		if u, _ := userOf(); !u.Admin || !u.AdminByHand || u.Method != "pam" {
			t.Errorf("bob after a: %+v", u)
		}
		// An admin by hand stays one through the next login.
		login()
		if u, _ := userOf(); !u.Admin {
			t.Errorf("bob lost admin at his next login: %+v", u)
		}
		// Earlier tests may have left bob's server running; the delete's
		// message names a stopped server, so start from none.
		if _, err := admin.StopServer(context.Background(), bob, "before the delete test"); err != nil {
			t.Fatal(err)
		}
		x.run("send-keys", "-t", "t", "D")
		x.waitScreen("Delete the user " + bob + "?")
		x.run("send-keys", "-t", "t", "-l", bob)
		x.run("send-keys", "-t", "t", "Enter")
		x.waitScreen("Deleted the user " + bob + ".")
		if u, ok := userOf(); ok {
			t.Errorf("bob is still a user after the delete: %+v", u)
		}
		x.run("send-keys", "-t", "t", "Escape")
		if err := waitFor(10*time.Second, func() error {
			if strings.Contains(x.screen(), "filter: "+bob) {
				return fmt.Errorf("filter still shown")
			}
			return nil
		}); err != nil {
			t.Fatalf("%v; screen:\n%s", err, x.screen())
		}
	})

	t.Run("quits cleanly", func(t *testing.T) {
		x.run("send-keys", "-t", "t", "q")
		if err := waitFor(10*time.Second, func() error {
			out := x.run("display", "-p", "-t", "t", "#{pane_dead} #{pane_dead_status}")
			if strings.TrimSpace(out) != "1 0" {
				return fmt.Errorf("pane state %q", out)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}
