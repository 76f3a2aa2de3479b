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

// RenderSudoers is the sudoers drop-in setup installs at SudoersFile.
func (o Options) RenderSudoers() ([]byte, error) {
	c := o.Config
	create := c.Auth.CreatesAccounts() && c.Spawner.Kind == spawner.KindSudo
	if create && !sudoersLiteral(o.ConfigPath) {
		return nil, fmt.Errorf("the configuration path %q cannot stand in a sudoers rule (a space, ',', ':', '=' or '\\' would change it): keep hubd.toml at a plain path for account_mode = \"create\"", o.ConfigPath)
	}
	var spawnService string
	if o.createsHomes() {
		spawnService = o.spawnPAMService()
	}
	return render("sudoers-hubd", struct {
		Name, HubUser, Group, HelperPath, ConfigPath, SpawnPAMService string
		CreateAccounts                                                bool
	}{o.Name, o.HubUser, c.Auth.AllowedGroup, c.Spawner.HelperPath, o.ConfigPath, spawnService, create})
}

// sudoersLiteral: a path sudoers takes as it is.
func sudoersLiteral(p string) bool {
	return filepath.IsAbs(p) && !strings.ContainsAny(p, " \t,:=\\\"'#!*?[]")
}

// RenderPAMService is the hub's login service at PAMFile: pam_unix, and
// after it the PAM module of the directory the host's NSS uses, if any. A
// directory whose module is missing is an error, since its users could
// never log in.
func (o Options) RenderPAMService() ([]byte, error) {
	dir, err := o.hostDirectory()
	if err != nil {
		return nil, err
	}
	if dir != nil && !pamModuleInstalled(dir.PAMModule) {
		return nil, fmt.Errorf("%s names %q for accounts, but %s is not installed, so its users could not log in to the hub: apt-get install %s",
			o.NSSwitchFile(), dir.Source, dir.PAMModule, dir.Package)
	}
	return o.pamService(dir)
}

// pamService renders the login service for local accounts and, unless
// dir is nil, dir's.
func (o Options) pamService(dir *Directory) ([]byte, error) {
	args := ""
	// pam_sss has no uid floor; the hub's policy (auth.min_uid) applies anyway.
	if dir != nil && dir.Source == "ldap" {
		args = fmt.Sprintf(" minimum_uid=%d", o.Config.Auth.MinUID)
	}
	return render("pam.d-hubd", struct {
		Service    string
		Directory  *Directory
		ModuleArgs string
		MinUID     int
	}{o.Config.Auth.PAMService, dir, args, o.Config.Auth.MinUID})
}

// packagePAMService is the login service the package ships: local
// accounts only, whatever the machine that builds the package uses.
func (o Options) packagePAMService() ([]byte, error) { return o.pamService(nil) }

// RenderSpawnPAMService is sudo's service for the hub's spawns at
// SpawnPAMFile (see createsHomes).
func (o Options) RenderSpawnPAMService() ([]byte, error) {
	return render("pam.d-hubd-spawn", struct{ Service, HubUser string }{o.spawnPAMService(), o.HubUser})
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
		o.PAMFile():     o.packagePAMService,
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
