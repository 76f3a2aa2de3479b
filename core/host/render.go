package host

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/hubd/hubd/core/config"
)

// render executes one embedded template with data.
func render(name string, data any) ([]byte, error) {
	t, err := template.New(name).Funcs(template.FuncMap{"toml": tomlValue}).
		Option("missingkey=error").ParseFS(templates, "templates/"+name)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// RenderConfig is the commented configuration file for cfg: every setting
// with a one-line comment and cfg's value.
func RenderConfig(cfg config.Config, unit string) ([]byte, error) {
	return render("hubd.toml", struct {
		Config config.Config
		Unit   string
	}{cfg, unit})
}

func (o Options) sudoersFile() ([]byte, error) {
	return render("sudoers-hubd", struct{ HubUser, Group, HelperPath string }{
		o.HubUser, o.Config.Auth.AllowedGroup, o.Config.Spawner.HelperPath,
	})
}

func (o Options) unitFile() ([]byte, error) {
	return render("hubd.service", struct {
		User, Group, SupplementaryGroups, Binary, Config string
		BindLowPorts                                     bool
	}{
		User: o.HubUser, Group: o.hubGroup(), SupplementaryGroups: ShadowGroup,
		Binary: o.Config.Spawner.HelperPath, Config: o.ConfigPath,
		BindLowPorts: lowPort(o.Config.Hub.Listen),
	})
}

func (o Options) profileFile() ([]byte, error) {
	return render("profile-hubd.sh", struct{ Binary, Config string }{o.Config.Spawner.HelperPath, o.ConfigPath})
}

// lowPort reports whether addr's port needs CAP_NET_BIND_SERVICE.
func lowPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	return err == nil && perr == nil && n < 1024
}

// tomlValue writes one configuration value as TOML: the kinds of values
// config.Config holds, nothing more.
func tomlValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return quote(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case config.Duration:
		b, _ := v.MarshalText()
		return quote(string(b)), nil
	case config.ByteSize:
		b, _ := v.MarshalText()
		return quote(string(b)), nil
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]", nil
	case map[string]string:
		if len(v) == 0 {
			return "{}", nil
		}
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(v)) {
			kv = append(kv, quote(k)+" = "+quote(v[k]))
		}
		return "{ " + strings.Join(kv, ", ") + " }", nil
	}
	return "", fmt.Errorf("no TOML form for %T", v)
}

// quote makes a TOML basic string. JSON's escapes (\" \\ \n \uXXXX) are
// all valid in TOML; HTML escaping is turned off to keep '<' readable.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
