// Package host turns a Linux server into a hubd host and checks that it
// stays one: the hub's system account and groups, the configuration file,
// hubd's directories, the PAM service, the sudoers rule, the systemd unit,
// the restart-hub alias, the spawn helper binary and the shared Python
// environment.
//
// Setup is a list of steps. Each step can say what differs from the wanted
// state (Check) and make it right (Apply); `hubd setup` applies, `hubd
// setup --dry-run` and `hubd doctor` only check. A step that is already
// right changes nothing, so setup can run any number of times, and every
// file is written to a temporary file beside it and renamed into place,
// so a failure never leaves a half-written file behind.
package host

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/spawner"
)

//go:embed templates
var templates embed.FS

// Defaults of the names setup chooses when not told otherwise.
const (
	DefaultName    = "hubd"
	DefaultHubUser = "hub"
	// ShadowGroup may read /etc/shadow (root:shadow 0640 on Debian), which
	// pam_unix needs to check other users' passwords when the hub does not
	// run as root (without it every login fails with PAM error 7).
	ShadowGroup = "shadow"
	// PackagedBinary is where the Debian package installs hubd.
	PackagedBinary = "/usr/bin/hubd"
)

// Options describe the host setup manages.
type Options struct {
	// Config is the configuration the host is set up for; ConfigPath is
	// its file, written from a commented template when missing.
	Config     config.Config
	ConfigPath string
	// Name names the system files: /etc/sudoers.d/<Name>,
	// /etc/profile.d/<Name>.sh and /etc/systemd/system/<Name>.service.
	// The PAM file is named after auth.pam_service.
	Name string
	// HubUser is the unprivileged system account the hub runs as.
	HubUser string
	// Binary is the hubd executable installed at spawner.helper_path.
	Binary string
	// AddMembers are users to put into the members group.
	AddMembers []string
	// Etc is the directory holding pam.d, sudoers.d, profile.d and
	// systemd/system: "/etc" except in unit tests.
	Etc string
	// Systemd is true when systemd runs (/run/systemd/system exists); the
	// unit is then reloaded after a change.
	Systemd bool
	// Run runs the system tools (useradd, visudo, systemctl…).
	Run Runner
	// Logger receives the shared environment's log lines.
	Logger *slog.Logger
	// Packaged means the hubd Debian package owns PackagedBinary, the unit
	// (in /lib/systemd/system), /etc/pam.d/hubd and the alias: setup checks
	// them but never writes them, and uninstall leaves them to dpkg.
	// Setup records it, so doctor and uninstall know without a flag.
	Packaged bool
	// StopServers, when set, stops the hub and every user server it
	// started; uninstall calls it first, so no server outlives the hub and
	// the accounts, data and sudo rule it needs.
	StopServers func(ctx context.Context) (string, error)
}

// nameRE is what Name may be: sudo ignores files in /etc/sudoers.d whose
// names contain a '.', so a dotted name would install a rule that silently
// does nothing.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// SystemdRunning reports whether systemd is the init system, the test
// sd_booted(3) uses.
func SystemdRunning() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// validate checks the options that do not come from a validated config.
func (o *Options) validate() error {
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("name %q: use lowercase letters, digits, '-' and '_' (sudo ignores drop-ins with a '.')", o.Name)
	}
	if o.Packaged && o.Name != DefaultName {
		return fmt.Errorf("name %q: the hubd package ships %s.service, /etc/pam.d/%s and /etc/profile.d/%s.sh, so a packaged host is named %q",
			o.Name, DefaultName, DefaultName, DefaultName, DefaultName)
	}
	if o.HubUser == "" || o.HubUser == "root" {
		return fmt.Errorf("hub user %q: the hub needs its own unprivileged account, e.g. %q", o.HubUser, DefaultHubUser)
	}
	if o.Etc == "" {
		o.Etc = "/etc"
	}
	if o.Run == nil {
		o.Run = ExecRunner{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Paths of the files setup installs.

// PAMFile is /etc/pam.d/<auth.pam_service>.
func (o Options) PAMFile() string { return filepath.Join(o.Etc, "pam.d", o.Config.Auth.PAMService) }

// spawnPAMService is the PAM service sudo uses when the hub runs it:
// <auth.pam_service>-spawn.
func (o Options) spawnPAMService() string { return o.Config.Auth.PAMService + "-spawn" }

// SpawnPAMFile is /etc/pam.d/<auth.pam_service>-spawn.
func (o Options) SpawnPAMFile() string { return filepath.Join(o.Etc, "pam.d", o.spawnPAMService()) }

// createsHomes: with the sudo spawner and spawner.create_home, sudo's
// session for the hub creates a member's missing home directory
// (pam_mkhomedir through SpawnPAMFile). The systemd spawner runs as root
// and creates it itself; the local spawner never runs as anybody else.
func (o Options) createsHomes() bool {
	return o.Config.Spawner.Kind == spawner.KindSudo && o.Config.Spawner.CreateHome
}

// SudoersFile is /etc/sudoers.d/<Name>.
func (o Options) SudoersFile() string { return filepath.Join(o.Etc, "sudoers.d", o.Name) }

// ProfileFile is /etc/profile.d/<Name>.sh.
func (o Options) ProfileFile() string { return filepath.Join(o.Etc, "profile.d", o.Name+".sh") }

// Unit is the systemd unit's name, <Name>.service.
func (o Options) Unit() string { return o.Name + ".service" }

// UnitFile is /etc/systemd/system/<Name>.service, or the package's
// /lib/systemd/system/hubd.service.
func (o Options) UnitFile() string {
	if o.Packaged {
		return filepath.Join(o.root(), "lib", "systemd", "system", o.Unit())
	}
	return filepath.Join(o.Etc, "systemd", "system", o.Unit())
}

// root is "/" except in unit tests, where Etc is a temporary ".../etc".
func (o Options) root() string {
	if o.Etc == "" {
		return "/"
	}
	return filepath.Dir(o.Etc)
}

// hubBinary is the hubd the unit and the alias run: the package's, or
// the copy setup installs at spawner.helper_path.
func (o Options) hubBinary() string {
	if o.Packaged {
		return PackagedBinary
	}
	return o.Config.Spawner.HelperPath
}

// fromPackage reports whether the hubd package installs path, so that
// setup leaves it to dpkg. The package's PAM service is named hubd; a
// configuration naming another service gets its file from setup.
func (o Options) fromPackage(path string) bool {
	if !o.Packaged {
		return false
	}
	switch path {
	case PackagedBinary, o.UnitFile(), o.ProfileFile(), filepath.Join(o.Etc, "pam.d", DefaultName):
		return true
	}
	return false
}

// RecordFile is where setup records what it created, beside the config:
// /etc/hubd/hubd.toml → /etc/hubd/hubd.setup.json.
func (o Options) RecordFile() string {
	return strings.TrimSuffix(o.ConfigPath, filepath.Ext(o.ConfigPath)) + ".setup.json"
}

// SetupCommand is the command line that (re)runs setup for this host, the
// fix doctor prints for anything setup installs.
func (o Options) SetupCommand() string {
	cmd := "hubd setup"
	if o.ConfigPath != config.DefaultPath {
		cmd += " --config " + o.ConfigPath
	}
	if o.Name != DefaultName {
		cmd += " --name " + o.Name
	}
	if o.HubUser != DefaultHubUser {
		cmd += " --hub-user " + o.HubUser
	}
	return cmd
}

// configFlag is " --config PATH" for fix commands when the config is not
// the default one.
func (o Options) configFlag() string {
	if o.ConfigPath == config.DefaultPath {
		return ""
	}
	return " --config " + o.ConfigPath
}

// Runner runs a system tool and returns its combined output. Unit tests
// replace it to check the argv.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (string, error)
}

// ExecRunner runs the real tools with a system PATH.
type ExecRunner struct{}

// Run implements Runner. The error names the command and carries its
// output, which is where the tools explain themselves.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	// Root's PATH may lack /usr/sbin (su without -), and inherited
	// LANG/LC_* would translate the messages tests and users grep for.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		if s != "" {
			err = fmt.Errorf("%w: %s", err, s)
		}
		return s, fmt.Errorf("%s: %w", commandLine(name, args), err)
	}
	return s, nil
}

func commandLine(name string, args []string) string {
	return strings.Join(append([]string{name}, args...), " ")
}
