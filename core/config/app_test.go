package config

import (
	"strings"
	"testing"
)

func TestSpawnerAppSelectsClassAndLandingPage(t *testing.T) {
	for _, c := range []struct {
		app, defaultURL, class, landing string
	}{
		{AppNotebook, "", "notebook.notebookapp.NotebookApp", "/tree"},
		{AppJupyterServer, "", "jupyter_server.serverapp.ServerApp", "/tree"},
		{AppJupyterLab, "", "jupyter_server.serverapp.ServerApp", "/lab"},
		{AppAuto, "", "", ""},
		{AppJupyterLab, "/lab/tree/README.md", "jupyter_server.serverapp.ServerApp", "/lab/tree/README.md"},
	} {
		s := Default().Spawner
		s.AppName, s.DefaultURL = c.app, c.defaultURL
		if s.App().Class != c.class || s.LandingURL() != c.landing {
			t.Errorf("app %q, default_url %q: class %q landing %q; want %q %q", c.app, c.defaultURL, s.App().Class, s.LandingURL(), c.class, c.landing)
		}
	}
	if Default().Spawner.AppName != AppNotebook {
		t.Error("the default app is not the classic Notebook, the one Debian's jupyterhub depends on")
	}
}

func TestSpawnerAppConflictsWithTheEnvironment(t *testing.T) {
	for _, c := range []struct {
		file, want string
	}{
		{"[spawner]\napp = \"lab\"\n", `"lab" is not one of`},
		{"[spawner]\napp = \"jupyterlab\"\n[spawner.environment]\nJUPYTERHUB_SINGLEUSER_APP = \"notebook.notebookapp.NotebookApp\"\n", "remove JUPYTERHUB_SINGLEUSER_APP"},
		{"[spawner]\napp = \"auto\"\n[spawner.environment]\nJUPYTERHUB_SINGLEUSER_APP = \"notebook.notebookapp.NotebookApp\"\n", ""},
		{"[spawner]\napp = \"notebook\"\n[spawner.environment]\nJUPYTERHUB_SINGLEUSER_APP = \"notebook.notebookapp.NotebookApp\"\n", ""},
	} {
		_, err := Parse("hubd.toml", []byte(c.file))
		if c.want == "" && err != nil {
			t.Errorf("%s: %v", c.file, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v; want %q", c.file, err, c.want)
		}
	}
}
