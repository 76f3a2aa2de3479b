package hub

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/spawner"
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
// the server calls (InternalAPIURL, or a stand-in for `hubd doctor`). addr
// is host:port where the server is to listen (its JUPYTERHUB_SERVICE_URL),
// or "" for a server that finds its own address where it lands: it gets
// the URL to report that to instead (spawner.AddressURLEnv).
func ServerEnv(cfg config.Config, apiURL, user, server, token, addr string) map[string]string {
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
		"JUPYTERHUB_OAUTH_CALLBACK_URL":          prefix + "oauth_callback",
		"JUPYTERHUB_OAUTH_ACCESS_SCOPES":         string(scopes),
		"JUPYTERHUB_OAUTH_SCOPES":                string(scopes),
		"JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
		"JUPYTERHUB_USER":                        user,
		"JUPYTERHUB_SERVER_NAME":                 server,
		"JUPYTERHUB_DEFAULT_URL":                 cfg.Spawner.LandingURL(),
		"LANG":                                   "C.UTF-8",
	}
	if addr != "" {
		env["JUPYTERHUB_SERVICE_URL"] = "http://" + addr + prefix
	} else {
		env[spawner.AddressURLEnv] = api + "/users/" + url.PathEscape(user) + "/server/address"
		if server != "" {
			env[spawner.AddressURLEnv] = api + "/users/" + url.PathEscape(user) + "/servers/" + url.PathEscape(server) + "/address"
		}
	}
	if class := cfg.Spawner.App().Class; class != "" {
		env["JUPYTERHUB_SINGLEUSER_APP"] = class
	}
	for k, v := range cfg.Spawner.Environment {
		env[k] = strings.ReplaceAll(v, "{username}", user)
	}
	return env
}

// serverEnv is ServerEnv for a server of this hub: the API URL its jobs
// reach (spawner.slurm.hub_api_url for Slurm), where it listens, and with
// a GPU pool CUDA_VISIBLE_DEVICES naming its own GPUs (none for a server
// that holds none; Slurm sets it for its jobs).
func (h *Hub) serverEnv(user string, srv store.Server, token string, gpus []store.GPU) map[string]string {
	api := InternalAPIURL(h.cfg)
	if srv.Spawner == spawner.KindSlurm && h.cfg.Spawner.Slurm.HubAPIURL != "" {
		api = h.cfg.Spawner.Slurm.HubAPIURL
	}
	addr := ""
	if srv.Port != 0 {
		addr = net.JoinHostPort(srv.IP, strconv.Itoa(srv.Port))
	}
	env := ServerEnv(h.cfg, api, user, srv.Name, token, addr)
	if len(h.gpuPool) > 0 && srv.Spawner != spawner.KindSlurm {
		env["CUDA_VISIBLE_DEVICES"] = cudaDevices(gpus)
	}
	return env
}
