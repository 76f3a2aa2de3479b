package admin_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/internal/testutil"
)

// A hub running as root changes shares through the API, each change in
// the audit log; the shares package's tests show what members can do.
func TestSharesThroughTheAPI(t *testing.T) {
	testutil.NeedRoot(t)
	const prefix, member = "hubtest-admsh-", "hubtest-adm-sh"
	var h testutil.Host
	t.Cleanup(h.Cleanup)
	if err := h.User(member, ""); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	t.Cleanup(func() { exec.Command("groupdel", prefix+"proj").Run() })
	e := newTestEnv(t, func(c *config.Config) {
		c.Shares.Root, c.Shares.GroupPrefix = filepath.Join(root, "shares"), prefix
	})
	call := func(method, path, body string, want int, out any) {
		t.Helper()
		rec := e.do(idRoot, method, path, body)
		if rec.Code != want {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		if out != nil {
			if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
				t.Fatal(err)
			}
		}
	}
	var sh wire.Share
	call("POST", "/v1/shares", `{"name":"proj"}`, http.StatusCreated, &sh)
	if sh.Group != prefix+"proj" || len(sh.Members) != 0 {
		t.Errorf("created %+v", sh)
	}
	call("POST", "/v1/shares/proj/members", `{"add":["`+member+`"]}`, http.StatusOK, &sh)
	if !slices.Equal(sh.Members, []string{member}) {
		t.Errorf("after add: %+v", sh)
	}
	call("POST", "/v1/shares/proj/members", `{"add":["hubtest-nobody-here"]}`, http.StatusBadRequest, nil)
	call("POST", "/v1/shares/nosuch/members", `{"add":["`+member+`"]}`, http.StatusNotFound, nil)
	// A file moved in 0600 with root's group: check finds it, repair fixes it.
	if err := os.WriteFile(filepath.Join(sh.Path, "draft.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var chk wire.ShareCheck
	call("POST", "/v1/shares/proj/check", "", http.StatusOK, &chk)
	if len(chk.Reports) != 1 || chk.Reports[0].Healthy || !slices.Contains(chk.Reports[0].Examples["file-mode"], filepath.Join(sh.Path, "draft.txt")) {
		t.Errorf("check: %+v", chk)
	}
	call("POST", "/v1/shares/proj/repair", "", http.StatusOK, &chk)
	if !chk.Reports[0].Healthy || chk.Reports[0].Fixed["file-mode"] != 1 {
		t.Errorf("repair: %+v", chk)
	}
	var list wire.Shares
	call("GET", "/v1/shares", "", http.StatusOK, &list)
	if len(list.Shares) != 1 || list.ReadOnly != "" {
		t.Errorf("list: %+v", list)
	}
	call("DELETE", "/v1/shares/proj", "", http.StatusBadRequest, nil) // holds a file
	call("DELETE", "/v1/shares/proj?purge=true", "", http.StatusOK, nil)
	var actions []string
	for _, ev := range e.adminEvents(t) {
		if strings.HasPrefix(ev.Action, "share.") {
			actions = append(actions, ev.Action+" "+ev.Target)
		}
	}
	if want := []string{"share.create proj", "share.add proj", "share.repair proj", "share.delete proj"}; !slices.Equal(slices.Sorted(slices.Values(actions)), slices.Sorted(slices.Values(want))) {
		t.Errorf("audit log: %v, want %v", actions, want)
	}
}
