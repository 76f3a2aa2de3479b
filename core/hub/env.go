package hub

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
)

// ServerPrefix is the URL prefix of a user's server: <base>user/<name>/.
func ServerPrefix(base, user, server string) string {
	p := base + "user/" + url.PathEscape(user) + "/"
	if server != "" {
		p += url.PathEscape(server) + "/"
	}
	return p
}

// InternalAPIURL is where servers and services reach the hub's API: the
// loopback listener, never the public one.
func InternalAPIURL(cfg config.Config) string {
	host, port, _ := net.SplitHostPort(cfg.Hub.InternalListen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + cfg.Hub.BaseURL + "hub/api"
}

// ServerEnv is the environment JupyterHub 3.0.0 gives jupyterhub-singleuser
// (JUPYTERHUB_* and JPY_API_TOKEN), with the app spawner.app selects, and
// the configured spawner.environment applied last. apiURL is the hub API
// the server calls (InternalAPIURL, or a stand-in for `hubd doctor`).
func ServerEnv(cfg config.Config, apiURL, user, server, token string, port int) map[string]string {
	base := cfg.Hub.BaseURL
	prefix := ServerPrefix(base, user, server)
	api := apiURL
	scopes, _ := json.Marshal([]string{
		fmt.Sprintf("access:servers!server=%s/%s", user, server),
		"access:servers!user=" + user,
	})
	env := map[string]string{
		"JUPYTERHUB_API_TOKEN":                   token,
		"JPY_API_TOKEN":                          token,
		"JUPYTERHUB_CLIENT_ID":                   store.OAuthClientID(user, server),
		"JUPYTERHUB_API_URL":                     api,
		"JUPYTERHUB_ACTIVITY_URL":                api + "/users/" + url.PathEscape(user) + "/activity",
		"JUPYTERHUB_BASE_URL":                    base,
		"JUPYTERHUB_HOST":                        "",
		"JUPYTERHUB_SERVICE_PREFIX":              prefix,
		"JUPYTERHUB_SERVICE_URL":                 fmt.Sprintf("http://127.0.0.1:%d%s", port, prefix),
		"JUPYTERHUB_OAUTH_CALLBACK_URL":          prefix + "oauth_callback",
		"JUPYTERHUB_OAUTH_ACCESS_SCOPES":         string(scopes),
		"JUPYTERHUB_OAUTH_SCOPES":                string(scopes),
		"JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
		"JUPYTERHUB_USER":                        user,
		"JUPYTERHUB_SERVER_NAME":                 server,
		"JUPYTERHUB_DEFAULT_URL":                 cfg.Spawner.LandingURL(),
		"LANG":                                   "C.UTF-8",
	}
	if class := cfg.Spawner.App().Class; class != "" {
		env["JUPYTERHUB_SINGLEUSER_APP"] = class
	}
	for k, v := range cfg.Spawner.Environment {
		env[k] = strings.ReplaceAll(v, "{username}", user)
	}
	return env
}
