package host

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/internal/testutil"
)

// Doctor starts the real jupyterhub-singleuser as a member with each app
// spawner.app can select and says what ran and whether the landing page
// exists: with Debian's python3-jupyter-server installed, the Jupyter
// Server app has no /tree, which is exactly the broken first page members
// would get.
func TestDoctorSingleUserApp(t *testing.T) {
	testutil.NeedRoot(t)
	_, err := os.Stat("/usr/lib/python3/dist-packages/jupyter_server")
	testutil.Require(t, err == nil, "python3-jupyter-server is not installed")
	_, err = os.Stat("/usr/bin/jupyterhub-singleuser")
	testutil.Require(t, err == nil, "jupyterhub is not installed")
	var h testutil.Host
	t.Cleanup(h.Cleanup)
	// Doctor's temporary directories go to a directory of this test's, so
	// what other packages' doctors make meanwhile is not counted; the
	// member must pass through it.
	tmp, err := os.MkdirTemp("", "hubtest-appchk-tmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	const group, member = "hubtest-appchk", "hubtest-appchk-m"
	if err := h.Group(group); err != nil {
		t.Fatal(err)
	}
	if err := h.User(member, "", group); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		app, defaultURL string
		level           Level
		says            []string
	}{
		{config.AppNotebook, "", OK, []string{"Jupyter Notebook 6.", "landing page /tree exists"}},
		{config.AppJupyterServer, "", Fail, []string{"Jupyter Server 1.", "/tree, does not exist there (404)"}},
		{config.AppJupyterServer, "/api/status", OK, []string{"Jupyter Server 1.", "/api/status exists"}},
		// Left to jupyterhub-singleuser, Jupyter Server wins once installed.
		{config.AppAuto, "/tree", Fail, []string{"Jupyter Server 1.", "(404)"}},
	} {
		t.Run(c.app+c.defaultURL, func(t *testing.T) {
			cfg := config.Default()
			cfg.Auth.AllowedGroup = group
			cfg.SharedEnv.Enabled = false
			cfg.Spawner.AppName, cfg.Spawner.DefaultURL = c.app, c.defaultURL
			o := Options{Config: cfg, ConfigPath: "/etc/hubd/hubd.toml", Run: ExecRunner{}}
			f := o.checkSingleUserApp(context.Background(), member)
			if f.Level != c.level {
				t.Errorf("level %s, want %s: %s", f.Level, c.level, f.Message)
			}
			for _, s := range c.says {
				if !strings.Contains(f.Message, s) {
					t.Errorf("finding %q does not say %q", f.Message, s)
				}
			}
			if f.Level == Fail && !strings.Contains(f.Fix, `spawner.app = "notebook"`) {
				t.Errorf("fix %q", f.Fix)
			}
		})
	}

	// The trial servers' runtime files went to directories of their own,
	// removed with them: nothing in the member's home, nothing left over.
	u, err := user.Lookup(member)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(u.HomeDir, ".local/share/jupyter/runtime/*")); len(left) > 0 {
		t.Errorf("doctor left runtime files in the member's home: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "hubd-doctor-runtime-*")); len(left) > 0 {
		t.Errorf("runtime directories left behind: %v", left)
	}

	// A member whose home does not exist yet (a directory user before the
	// first start): the app runs in a temporary home, which goes again,
	// and doctor creates nothing; without create_home that is a failure.
	if err := os.RemoveAll(u.HomeDir); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Auth.AllowedGroup, cfg.SharedEnv.Enabled, cfg.Spawner.AppName = group, false, config.AppNotebook
	o := Options{Config: cfg, ConfigPath: "/etc/hubd/hubd.toml", Run: ExecRunner{}}
	if f := o.checkSingleUserApp(context.Background(), member); f.Level != OK || !strings.Contains(f.Message, "temporary home") {
		t.Errorf("member without a home: %+v", f)
	}
	if _, err := os.Stat(u.HomeDir); err == nil {
		t.Error("doctor created the member's home")
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "hubd-doctor-home-*")); len(left) > 0 {
		t.Errorf("temporary homes left behind: %v", left)
	}
	o.Config.Spawner.CreateHome = false
	if f := o.checkSingleUserApp(context.Background(), member); f.Level != Fail || !strings.Contains(f.Message, "does not exist") ||
		!strings.Contains(f.Fix, "create_home") {
		t.Errorf("member without a home, create_home off: %+v", f)
	}
}
