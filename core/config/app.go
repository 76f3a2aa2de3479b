package config

import "sort"

// The single-user apps spawner.app selects. jupyterhub-singleuser wraps
// whichever class JUPYTERHUB_SINGLEUSER_APP names; left unset, it picks
// Jupyter Server whenever that is installed, whose bare form has no /tree,
// so the choice is made here on purpose.
const (
	AppNotebook      = "notebook"
	AppJupyterServer = "jupyter-server"
	AppJupyterLab    = "jupyterlab"
	// AppAuto leaves the choice to jupyterhub-singleuser (JupyterLab ≥ 3.1
	// if installed, else Jupyter Server, else the classic Notebook).
	AppAuto = "auto"
)

// SingleUserApp is one choice of spawner.app.
type SingleUserApp struct {
	// Class is the Python class jupyterhub-singleuser runs
	// (JUPYTERHUB_SINGLEUSER_APP); "" leaves it to jupyterhub-singleuser.
	Class string
	// DefaultURL is the page users land on unless spawner.default_url says
	// otherwise.
	DefaultURL string
	// Title names the app for people.
	Title string
}

// singleUserApps maps spawner.app to what it selects. JupyterLab is a
// Jupyter Server extension, so it runs on the same class and differs in
// its page.
func singleUserApps() map[string]SingleUserApp {
	return map[string]SingleUserApp{
		AppNotebook:      {Class: "notebook.notebookapp.NotebookApp", DefaultURL: "/tree", Title: "classic Notebook"},
		AppJupyterServer: {Class: "jupyter_server.serverapp.ServerApp", DefaultURL: "/tree", Title: "Jupyter Server"},
		AppJupyterLab:    {Class: "jupyter_server.serverapp.ServerApp", DefaultURL: "/lab", Title: "JupyterLab"},
		AppAuto:          {Title: "the app jupyterhub-singleuser picks"},
	}
}

// AppNames lists the values spawner.app accepts.
func AppNames() []string {
	var out []string
	for k := range singleUserApps() {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// App is the single-user app the configuration selects.
func (s Spawner) App() SingleUserApp { return singleUserApps()[s.AppName] }

// LandingURL is the page users land on: spawner.default_url when set, else
// the app's own.
func (s Spawner) LandingURL() string {
	if s.DefaultURL != "" {
		return s.DefaultURL
	}
	return s.App().DefaultURL
}
