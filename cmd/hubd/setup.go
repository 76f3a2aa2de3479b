package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/host"
)

func cmdSetup(ctx context.Context, e *env, args []string) int {
	fs := e.flags("setup", "setup [--dry-run] [--config PATH] [flags]", `
Make this server a hubd host, or bring it back to that state: the members
group, the hub's system account (in group shadow, so PAM can check
passwords), the configuration file (from a commented template; an existing
one is never overwritten), hubd's directories with their owners and modes,
the spawn helper binary, /etc/pam.d/<pam_service> (with the PAM module of
the directory /etc/nsswitch.conf names, LDAP or SSSD), sudo's
/etc/pam.d/<pam_service>-spawn (it creates members' missing home
directories), /etc/sudoers.d/<name> (checked with visudo before it is put
in place), the systemd unit, the restart-hub alias in /etc/profile.d and
the shared Python environment.

Every step first checks whether it is already right; running setup again
changes nothing and says so. --dry-run prints each change without making it.
If a step fails, setup stops, says what was done and what not, and can
simply be run again. The path flags fill in a new configuration file; with
an existing one they must agree with it. Run as root.`)
	dryRun := fs.Bool("dry-run", false, "print every change without making it")
	packaged := fs.Bool("packaged", false, "the hubd Debian package runs setup: it owns "+host.PackagedBinary+", the unit, /etc/pam.d/hubd and the alias, so setup only checks those (recorded for doctor and uninstall)")
	names := nameFlags(fs)
	var members multiFlag
	fs.Var(&members, "add-member", "also put this existing `USER` into the members group (repeatable)")
	set := map[string]*string{}
	for _, f := range configFlags {
		set[f.name] = fs.String(f.name, "", f.usage)
	}
	if code, done := parse(fs, args); done {
		return code
	}
	if !*dryRun && os.Geteuid() != 0 {
		return e.fail("setup creates accounts and system files, so it must run as root: run `sudo hubd setup` (or `hubd setup --dry-run` to see the plan)")
	}
	o, err := e.hostOptions(names)
	if err != nil {
		return e.fail("%v", err)
	}
	o.Packaged = o.Packaged || *packaged
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if p, ok := set[f.Name]; ok {
			given[f.Name] = *p
		}
	})
	if o.Config, err = setupConfig(o, given); err != nil {
		return e.fail("%v", err)
	}
	o.AddMembers = members
	if o.Binary, err = hubdBinary(o); err != nil {
		return e.fail("%v", err)
	}
	if *dryRun {
		fmt.Fprintln(e.stdout, "dry run: checking every step, changing nothing")
	}
	if _, err := host.Setup(ctx, o, *dryRun, e.stdout); err != nil {
		return 1
	}
	return 0
}

// names holds the flags that name the installation: setup, doctor and
// uninstall must agree on them, so they default to what setup recorded.
type names struct{ name, hubUser *string }

func nameFlags(fs *flag.FlagSet) names {
	return names{
		name:    fs.String("name", "", "base `NAME` of /etc/sudoers.d/NAME, /etc/profile.d/NAME.sh and NAME.service (default: as recorded by setup, else "+host.DefaultName+")"),
		hubUser: fs.String("hub-user", "", "the hub's system `USER` (default: as recorded by setup, else "+host.DefaultHubUser+")"),
	}
}

// hostOptions builds host.Options from the flags, the setup record beside
// the configuration and the configuration itself (the defaults when the
// file does not exist yet).
func (e *env) hostOptions(n names) (host.Options, error) {
	path, _ := config.Resolve(e.configFlag, e.getenv)
	abs, err := filepath.Abs(path)
	if err != nil {
		return host.Options{}, fmt.Errorf("config path %s: %w", path, err)
	}
	o := host.Options{ConfigPath: abs, Systemd: host.SystemdRunning(), Run: host.ExecRunner{},
		Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	rec, err := host.LoadRecord(o.RecordFile())
	if err != nil {
		return o, err
	}
	o.Name = pick(*n.name, rec.Name, host.DefaultName)
	o.HubUser = pick(*n.hubUser, rec.HubUser, host.DefaultHubUser)
	o.Packaged = rec.Packaged
	if o.Config, err = config.Load(abs, false); err != nil {
		return o, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return o, nil
}

// hubdBinary is the hubd setup installs as the spawn helper and doctor
// compares it with: the package's on a packaged host, else this one.
func hubdBinary(o host.Options) (string, error) {
	if o.Packaged {
		return host.PackagedBinary, nil
	}
	return host.Executable()
}

func pick(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// configFlags are setup's flags that fill in a new configuration file.
var configFlags = []struct {
	name, usage string
	apply       func(c *config.Config, v string)
}{
	{"group", "members `GROUP` (auth.allowed_group; default jupyterhub)", func(c *config.Config, v string) { c.Auth.AllowedGroup = v }},
	{"admin-group", "admins' `GROUP` (auth.admin_group; default none)", func(c *config.Config, v string) { c.Auth.AdminGroup = v }},
	{"listen", "public `ADDRESS` (hub.listen; default :8000)", func(c *config.Config, v string) { c.Hub.Listen = v }},
	{"data-dir", "`DIR` for the database and cookie secret (default /var/lib/hubd)", func(c *config.Config, v string) {
		c.Data.DB, c.Data.CookieSecretFile = filepath.Join(v, "hubd.sqlite"), filepath.Join(v, "cookie_secret")
	}},
	{"log-dir", "`DIR` for server logs (data.log_dir; default /var/log/hubd)", func(c *config.Config, v string) { c.Data.LogDir = v }},
	{"runtime-dir", "`DIR` for the admin socket and runtime files (default /run/hubd)", func(c *config.Config, v string) {
		c.Data.RuntimeDir, c.Admin.Socket = v, filepath.Join(v, "hubd.sock")
	}},
	{"backup-dir", "`DIR` for backups (backups.dir; default /var/backups/hubd)", func(c *config.Config, v string) { c.Backups.Dir = v }},
	{"env-dir", "`DIR` of the shared Python environment (shared_env.path; default /opt/hubd/env)", func(c *config.Config, v string) { c.SharedEnv.Path = v }},
	{"kernel-dir", "`DIR` for the shared kernel spec (shared_env.kernel_spec_dir)", func(c *config.Config, v string) { c.SharedEnv.KernelSpecDirectory = v }},
	{"helper-path", "`PATH` hubd is installed at for sudo (spawner.helper_path; default /usr/local/bin/hubd)", func(c *config.Config, v string) { c.Spawner.HelperPath = v }},
}

// setupConfig is the configuration setup works with: the existing file,
// which the flags must agree with, or a new one from the defaults and the
// flags (the PAM service is named like the other system files).
func setupConfig(o host.Options, given map[string]string) (config.Config, error) {
	apply := func(c *config.Config) {
		for _, f := range configFlags {
			if v, ok := given[f.name]; ok {
				f.apply(c, v)
			}
		}
	}
	if _, err := os.Stat(o.ConfigPath); err == nil {
		want := o.Config
		apply(&want)
		if !reflect.DeepEqual(want, o.Config) {
			var flags []string
			for name := range given {
				flags = append(flags, "--"+name)
			}
			return o.Config, fmt.Errorf("%s exists and %s disagree with it: edit the file instead (setup never overwrites it), or run setup without them",
				o.ConfigPath, strings.Join(flags, ", "))
		}
		return o.Config, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return o.Config, err
	}
	c := config.Default()
	c.Auth.PAMService = o.Name
	if o.Packaged {
		// The sudo rule then names the package's binary, which every
		// upgrade replaces: no copy to keep in step.
		c.Spawner.HelperPath = host.PackagedBinary
	}
	apply(&c)
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("the flags give an invalid configuration:\n%w", err)
	}
	return c, nil
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}
