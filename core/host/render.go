package host

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/spawner"
)

// render executes one embedded template with data.
func render(name string, data any) ([]byte, error) {
	t, err := template.New(name).Funcs(template.FuncMap{"toml": config.TOMLValue}).
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
	c := o.Config
	create := c.Auth.HasMethod(config.MethodOIDC) && c.Auth.OIDC.AccountMode == "create" && c.Spawner.Kind == spawner.KindSudo
	if create && !sudoersLiteral(o.ConfigPath) {
		return nil, fmt.Errorf("the configuration path %q cannot stand in a sudoers rule (a space, ',', ':', '=' or '\\' would change it): keep hubd.toml at a plain path for account_mode = \"create\"", o.ConfigPath)
	}
	return render("sudoers-hubd", struct {
		HubUser, Group, HelperPath, ConfigPath string
		CreateAccounts                         bool
	}{o.HubUser, c.Auth.AllowedGroup, c.Spawner.HelperPath, o.ConfigPath, create})
}

// sudoersLiteral: a path sudoers takes as it is.
func sudoersLiteral(p string) bool {
	return filepath.IsAbs(p) && !strings.ContainsAny(p, " \t,:=\\\"'#!*?[]")
}

func (o Options) unitFile() ([]byte, error) {
	return render("hubd.service", struct {
		User, Group, SupplementaryGroups, Binary, Config string
		BindLowPorts, Packaged                           bool
	}{
		User: o.HubUser, Group: o.hubGroup(), SupplementaryGroups: ShadowGroup,
		Binary: o.hubBinary(), Config: o.ConfigPath,
		BindLowPorts: lowPort(o.Config.Hub.Listen) || lowPort(o.Config.Hub.TLS.RedirectListen), Packaged: o.Packaged,
	})
}

func (o Options) profileFile() ([]byte, error) {
	return render("profile-hubd.sh", struct {
		Binary, Config string
		Packaged       bool
	}{o.hubBinary(), o.ConfigPath, o.Packaged})
}

func (o Options) pamFile() ([]byte, error) { return render("pam.d-hubd", nil) }

// lowPort reports whether addr's port needs CAP_NET_BIND_SERVICE.
func lowPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	return err == nil && perr == nil && n < 1024
}

// PackageFiles renders the files the hubd Debian package ships besides the
// binaries, by path: the unit, the PAM service and the restart-hub alias,
// exactly as setup checks them on a packaged host set up with the defaults.
func PackageFiles() (map[string][]byte, error) {
	c := config.Default()
	c.Spawner.HelperPath = PackagedBinary
	o := Options{Config: c, ConfigPath: config.DefaultPath, Name: DefaultName, HubUser: DefaultHubUser, Etc: "/etc", Packaged: true}
	out := map[string][]byte{}
	for path, f := range map[string]func() ([]byte, error){
		o.UnitFile():    o.unitFile,
		o.PAMFile():     o.pamFile,
		o.ProfileFile(): o.profileFile,
	} {
		b, err := f()
		if err != nil {
			return nil, err
		}
		out[path] = b
	}
	return out, nil
}
