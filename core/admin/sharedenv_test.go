package admin_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/config"
)

// GET /v1/sharedenv walks the environment and names what drifted, with
// examples, in the shape hubtui shows.
func TestSharedEnvReportsDrift(t *testing.T) {
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, func(c *config.Config) { c.Auth.AllowedGroup = g.Name })
	env := e.cfg.SharedEnv.Path
	if err := os.MkdirAll(filepath.Join(env, "lib"), 0o2775); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(env, "pyvenv.cfg"), []byte("home = /usr/bin\n"), 0o664); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(env, "lib", "copied.py")
	if err := os.WriteFile(copied, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(copied, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := e.do(idRoot, "GET", "/v1/sharedenv", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var got wire.SharedEnv
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Enabled || !got.Exists || got.Path != env || got.Group != g.Name || got.Health.Files < 2 || got.Checked.IsZero() {
		t.Errorf("answer %+v", got)
	}
	var found bool
	for _, p := range got.Health.Problems {
		if p.Kind == "file-mode" && p.Count >= 1 && len(p.Examples) > 0 && p.Examples[0] == copied {
			found = true
		}
	}
	if !found || got.Health.Healthy() {
		t.Errorf("the 0644 file is not reported: %+v", got.Health)
	}

	off := newTestEnv(t, func(c *config.Config) { c.SharedEnv.Enabled = false })
	rec = off.do(idRoot, "GET", "/v1/sharedenv", "")
	var none wire.SharedEnv
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &none) != nil || none.Enabled || none.Exists {
		t.Errorf("disabled: %d %s", rec.Code, rec.Body)
	}
}
