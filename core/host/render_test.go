package host

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/hubd/hubd/core/config"
)

// The commented template must give back exactly the configuration it was
// rendered from: the defaults, and a configuration with setup's
// substitutions and values that need quoting.
func TestConfigTemplateRoundTrip(t *testing.T) {
	changed := config.Default()
	changed.Auth.PAMService = "hubtest-hs"
	changed.Auth.AllowedGroup = "hubtest-hs"
	changed.Auth.AdminGroup = "hubtest-admins"
	changed.Auth.AdminUsers = []string{"alice", "bob"}
	changed.Data.DB = "/srv/hub data/hubd.sqlite"
	changed.Hub.Listen = ":80"
	changed.Spawner.Environment = map[string]string{"B": `quote " and \ back`, "A": "x<y"}
	changed.Spawner.Systemd.MemoryMax = 4 << 30
	changed.Spawner.Systemd.ExtraProperties = map[string]string{"IOWeight": "50"}
	changed.Culler.MaxAge = config.Duration(90 * 60e9)
	for name, cfg := range map[string]config.Config{"defaults": config.Default(), "changed": changed} {
		t.Run(name, func(t *testing.T) {
			data, err := RenderConfig(cfg, "hubd.service")
			if err != nil {
				t.Fatal(err)
			}
			got, err := config.Parse("hubd.toml", data)
			if err != nil {
				t.Fatalf("rendered template does not parse: %v\n%s", err, data)
			}
			cfg.Source = "hubd.toml"
			if !reflect.DeepEqual(got, cfg) {
				t.Errorf("round trip differs:\n got %+v\nwant %+v", got, cfg)
			}
		})
	}
}

// Every setting appears in the template, each with a comment right above
// it, so nobody has to read the source to find a knob.
func TestConfigTemplateListsEverySettingWithAComment(t *testing.T) {
	var all bytes.Buffer
	if err := config.Default().Write(&all); err != nil {
		t.Fatal(err)
	}
	data, err := RenderConfig(config.Default(), "hubd.service")
	if err != nil {
		t.Fatal(err)
	}
	want, got := keys(t, all.Bytes()), keys(t, data)
	if !slices.Equal(got, want) {
		t.Errorf("template settings differ from config.Default():\n got %v\nwant %v", got, want)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	prev := ""
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, " = ") && !strings.HasPrefix(line, "#") && !strings.HasPrefix(prev, "#") {
			t.Errorf("setting without a comment above it: %s", line)
		}
		prev = line
	}
}

// keys lists the dotted setting names of a TOML document; an empty table
// counts as a setting (environment = {}).
func keys(t *testing.T, data []byte) []string {
	t.Helper()
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			sub, isTable := v.(map[string]any)
			if isTable && len(sub) > 0 && prefix+k != "spawner.environment" && prefix+k != "spawner.systemd.extra_properties" {
				walk(prefix+k+".", sub)
				continue
			}
			out = append(out, prefix+k)
		}
	}
	walk("", m)
	slices.Sort(out)
	return out
}

func TestSystemFileTemplates(t *testing.T) {
	o := Options{Name: "hubtest-hs", HubUser: "hubtest-hs-hub", ConfigPath: "/etc/hubd/hubd.toml", Config: config.Default()}
	o.Config.Auth.AllowedGroup = "hubtest-hs"
	o.Config.Spawner.HelperPath = "/opt/x/hubd"
	o.Config.Hub.Listen = ":443"

	rule := "hubtest-hs-hub ALL=(%hubtest-hs) NOPASSWD: /opt/x/hubd spawn-helper"
	// With spawner.create_home (the default) sudo run by the hub, and only
	// by the hub, opens its session with the service that creates homes.
	if rules := sudoersRules(t, o); !slices.Equal(rules, []string{"Defaults:hubtest-hs-hub pam_service=hubd-spawn, pam_session", rule}) {
		t.Errorf("sudoers rules %q, want the hub's pam_service and %q", rules, rule)
	}
	o.Config.Spawner.CreateHome = false
	if rules := sudoersRules(t, o); !slices.Equal(rules, []string{rule}) {
		t.Errorf("sudoers rules without create_home %q, want exactly %q", rules, rule)
	}

	unit, err := o.unitFile()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"User=hubtest-hs-hub\n", "SupplementaryGroups=shadow\n",
		"ExecStart=/opt/x/hubd serve --config /etc/hubd/hubd.toml\n", "AmbientCapabilities=CAP_NET_BIND_SERVICE\n", "KillMode=process\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	o.Config.Hub.Listen = ":8000"
	if unit, _ = o.unitFile(); strings.Contains(string(unit), "CAP_NET_BIND_SERVICE") {
		t.Errorf("unit binds low ports for :8000:\n%s", unit)
	}

	profile, err := o.profileFile()
	if err != nil {
		t.Fatal(err)
	}
	if want := "alias restart-hub='/opt/x/hubd restart --config /etc/hubd/hubd.toml'"; !strings.Contains(string(profile), want) {
		t.Errorf("profile lacks %q:\n%s", want, profile)
	}
}

// TestSudoersCreateRule: with account_mode = "create" and the sudo
// spawner, the sudoers file gets exactly one more rule, the account
// helper as root with fixed arguments, and visudo accepts the file; other
// modes and the systemd spawner (the hub is root) get none.
func TestSudoersCreateRule(t *testing.T) {
	o := Options{Name: "hubtest-hs", HubUser: "hubtest-hs-hub", ConfigPath: "/etc/hubd/hubd.toml", Config: config.Default()}
	o.Config.Auth.AllowedGroup = "hubtest-hs"
	o.Config.Spawner.HelperPath = "/opt/x/hubd"
	o.Config.Auth.Methods = []string{config.MethodPAM, config.MethodOIDC}
	o.Config.Auth.OIDC.AccountMode = "create"
	const rule = "hubtest-hs-hub ALL=(root) NOPASSWD: /opt/x/hubd account-helper --config /etc/hubd/hubd.toml"
	sudoers, err := o.RenderSudoers()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sudoers), "\n"+rule+"\n") {
		t.Errorf("sudoers lacks %q:\n%s", rule, sudoers)
	}
	if _, err := exec.LookPath("visudo"); err == nil {
		f := filepath.Join(t.TempDir(), "sudoers")
		if err := os.WriteFile(f, sudoers, 0o440); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("visudo", "-cf", f).CombinedOutput(); err != nil {
			t.Errorf("visudo refuses the file: %v\n%s", err, out)
		}
	}
	for _, change := range []func(*config.Config){
		func(c *config.Config) { c.Auth.OIDC.AccountMode = "existing" },
		func(c *config.Config) { c.Spawner.Kind = "systemd" },
		func(c *config.Config) { c.Auth.Methods = []string{config.MethodPAM} },
	} {
		p := o
		change(&p.Config)
		if s, _ := p.RenderSudoers(); strings.Contains(string(s), "account-helper") {
			t.Errorf("account helper rule without create mode under sudo:\n%s", s)
		}
	}
	o.ConfigPath = "/etc/hubd/odd path.toml"
	if _, err := o.RenderSudoers(); err == nil {
		t.Error("a configuration path with a space went into the sudoers rule")
	}
}

// sudoersRules are the lines of the sudoers file that are not comments.
func sudoersRules(t *testing.T, o Options) []string {
	t.Helper()
	sudoers, err := o.RenderSudoers()
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for l := range strings.Lines(string(sudoers)) {
		if !strings.HasPrefix(l, "#") && strings.TrimSpace(l) != "" {
			rules = append(rules, strings.TrimSpace(l))
		}
	}
	return rules
}

// The LDAP method's account_mode = "create" gets the account helper's
// rule as single sign-on's does.
func TestSudoersCreateRuleForLDAP(t *testing.T) {
	o := Options{Name: "hubtest-hs", HubUser: "hubtest-hs-hub", ConfigPath: "/etc/hubd/hubd.toml", Config: config.Default()}
	o.Config.Auth.Methods = []string{config.MethodPAM, config.MethodLDAP}
	for mode, want := range map[string]bool{"create": true, "existing": false} {
		o.Config.Auth.LDAP.AccountMode = mode
		s, err := o.RenderSudoers()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(s), " account-helper --config /etc/hubd/hubd.toml\n"); got != want {
			t.Errorf("ldap account_mode %q: account helper rule %v, want %v", mode, got, want)
		}
	}
}
