package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultsAreValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestShowRoundTrips(t *testing.T) {
	var buf bytes.Buffer
	if err := Default().Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Parse("shown.toml", buf.Bytes())
	if err != nil {
		t.Fatalf("config show output does not parse back: %v\n%s", err, buf.String())
	}
	want := Default()
	want.Source = "shown.toml"
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("round trip changed the config (-want +got):\n%s", d)
	}
}

func TestFileOverridesDefaults(t *testing.T) {
	cfg, err := Parse("x.toml", []byte(`
[hub]
listen = "127.0.0.1:9000"
base_url = "/jupyter/"
[spawner]
start_timeout = "90s"
[spawner.systemd]
memory_max = "2G"
[spawner.environment]
JUPYTERHUB_SINGLEUSER_APP = "notebook.notebookapp.NotebookApp"
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hub.Listen != "127.0.0.1:9000" || cfg.Hub.BaseURL != "/jupyter/" || cfg.Spawner.StartTimeout.D() != 90*time.Second ||
		cfg.Spawner.Systemd.MemoryMax != 2<<30 || cfg.Spawner.Environment["JUPYTERHUB_SINGLEUSER_APP"] == "" {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if cfg.Auth.AllowedGroup != "jupyterhub" || cfg.Data.DB != "/var/lib/hubd/hubd.sqlite" {
		t.Error("unset values lost their defaults")
	}
}

func TestProblemsNameFileLineAndHint(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string
	}{
		{"unknown key with a suggestion", "[hub]\nlisen = \":80\"\n", []string{"x.toml:2", "hub.lisen", "unknown setting", `did you mean "hub.listen"`}},
		{"syntax error", "[hub]\nlisten = \n", []string{"x.toml:2"}},
		{"wrong type", "[auth]\nmin_uid = \"x\"\n", []string{"x.toml:2"}},
		{"bad duration", "[spawner]\n\nstart_timeout = \"5x\"\n", []string{"x.toml:3", "spawner.start_timeout", "not a duration"}},
		{"bad size", "[spawner.systemd]\nmemory_max = \"lots\"\n", []string{"x.toml:2", "not a size"}},
		{"bad listener", "[hub]\nlisten = \"nowhere\"\n", []string{"x.toml:2", "hub.listen", "host:port"}},
		{"public internal listener", "[hub]\ninternal_listen = \"0.0.0.0:8081\"\n", []string{"x.toml:2", "loopback"}},
		{"base url", "[hub]\nbase_url = \"jupyter\"\n", []string{"x.toml:2", "hub.base_url", "start and end with '/'"}},
		{"relative path", "[data]\ndb = \"hubd.sqlite\"\n", []string{"x.toml:2", "data.db", "absolute"}},
		{"bad spawner", "[spawner]\nkind = \"podman\"\n", []string{"x.toml:2", "spawner.kind", "sudo, systemd, docker, local"}},
		{"docker without an image", "[spawner]\nkind = \"docker\"\n", []string{"spawner.docker.image", "no image"}},
		{"docker mount", "[spawner.docker]\nmounts = [\"data:/data\"]\n", []string{"x.toml:2", "spawner.docker.mounts", "absolute"}},
		{"docker hub ip", "[spawner.docker]\nhub_ip = \"gateway\"\n", []string{"x.toml:2", "spawner.docker.hub_ip"}},
		{"share group prefix", "[shares]\ngroup_prefix = \"Share \"\n", []string{"x.toml:2", "shares.group_prefix"}},
		{"relative command", "[spawner]\ncommand = [\"jupyterhub-singleuser\"]\n", []string{"x.toml:2", "absolute path"}},
		{"nobody can log in", "[auth]\nallowed_group = \"\"\n", []string{"x.toml:2", "nobody could log in"}},
		{"hostile group", "[auth]\nallowed_group = \"-rf\"\n", []string{"x.toml:2", "auth.allowed_group"}},
		{"root spawns", "[auth]\nmin_uid = 0\n", []string{"x.toml:2", "auth.min_uid"}},
		{"no login method", "[auth]\nmethods = []\n", []string{"x.toml:2", "auth.methods", "nobody could log in"}},
		{"unknown login method", "[auth]\nmethods = [\"kerberos\"]\n", []string{"auth.methods", "pam, ldap, oidc"}},
		{"oidc without a provider", oidcFile(`issuer = ""`), []string{"auth.oidc.issuer", "no provider configured"}},
		{"oidc over http", oidcFile(`issuer = "http://sso.example.org"`), []string{"auth.oidc.issuer", "not https"}},
		{"oidc issuer and endpoints", oidcFile(`token_url = "https://sso.example.org/token"`), []string{"auth.oidc.authorize_url", "discovery gives the endpoints"}},
		{"oidc dynamic without systemd", oidcFile(`account_mode = "dynamic"`), []string{"auth.oidc.account_mode", `needs spawner.kind = "systemd"`, "DynamicUser"}},
		{"oidc unknown mode", oidcFile(`account_mode = "guest"`), []string{"auth.oidc.account_mode", "existing, create, dynamic"}},
		{"oidc mapped to a bad name", oidcFile(`username_map = { "a" = "../root" }`), []string{"auth.oidc.username_map"}},
		{"oidc relative secret", oidcFile(`client_secret_file = "secret"`), []string{"auth.oidc.client_secret_file", "absolute"}},
		{"oidc nobody allowed", oidcFile(`allowed_groups = []`), []string{"auth.oidc.allowed_groups", "nobody could sign in"}},
		{"oidc redirect elsewhere", oidcFile(`redirect_url = "https://hub.example.org/callback"`), []string{"auth.oidc.redirect_url", "hub/oauth_callback"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("x.toml", []byte(c.file))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v; want *Error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
		})
	}
}

// oidcFile is a valid [auth.oidc] configuration with one line added (a
// later key wins in a TOML table only when it is not repeated, so change
// lines only name keys the base leaves out or set to their defaults).
func oidcFile(line string) string {
	base := map[string]string{
		"issuer": `"https://sso.example.org/realms/lab"`, "client_id": `"hubd"`,
		"client_secret_file": `"/etc/hubd/oidc-secret"`, "allowed_groups": `["lab"]`,
	}
	key, _, _ := strings.Cut(line, " = ")
	delete(base, key)
	var b strings.Builder
	b.WriteString("[auth]\nmethods = [\"pam\", \"oidc\"]\n[auth.oidc]\n")
	for k, v := range base {
		b.WriteString(k + " = " + v + "\n")
	}
	b.WriteString(line + "\n")
	return b.String()
}

// TestOIDCValid: a complete [auth.oidc] passes, with discovery or with
// explicit endpoints.
func TestOIDCValid(t *testing.T) {
	for _, f := range []string{oidcFile(`name = "Keycloak"`),
		oidcFile(`issuer = ""`) + "authorize_url = \"https://gitlab.example.org/oauth/authorize\"\ntoken_url = \"https://gitlab.example.org/oauth/token\"\nuserinfo_url = \"https://gitlab.example.org/api/v4/user\"\n",
		oidcFile(`issuer = "http://127.0.0.1:4444"`),
	} {
		if _, err := Parse("x.toml", []byte(f)); err != nil {
			t.Errorf("%s\n%v", f, err)
		}
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	_, err := Parse("x.toml", []byte("[hub]\nlisten = \"x\"\nbase_url = \"y\"\n[culler]\nactivity = \"z\"\n"))
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
}

func TestResolveAndLoad(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if p, explicit := Resolve("", getenv); p != DefaultPath || explicit {
		t.Errorf("default resolve = %s, %v", p, explicit)
	}
	env[EnvVar] = "/etc/other.toml"
	if p, explicit := Resolve("", getenv); p != "/etc/other.toml" || !explicit {
		t.Errorf("HUBD_CONFIG resolve = %s, %v", p, explicit)
	}
	if p, _ := Resolve("/flag.toml", getenv); p != "/flag.toml" {
		t.Errorf("flag does not win over HUBD_CONFIG: %s", p)
	}
	missing := filepath.Join(t.TempDir(), "none.toml")
	if _, err := Load(missing, true); err == nil || !strings.Contains(err.Error(), "hubd config show") {
		t.Errorf("explicit missing file: %v", err)
	}
	if cfg, err := Load(missing, false); err != nil || cfg.Hub.Listen != ":8000" {
		t.Errorf("implicit missing file should give defaults: %v", err)
	}
	path := filepath.Join(t.TempDir(), "hubd.toml")
	os.WriteFile(path, []byte("[hub]\nlisten = \":9\"\n"), 0o644)
	if cfg, err := Load(path, true); err != nil || cfg.Hub.Listen != ":9" || cfg.Source != path {
		t.Errorf("Load = %+v, %v", cfg.Hub, err)
	}
}

func TestByteSizeAndDuration(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "64K": 64 << 10, "512M": 512 << 20, "2G": 2 << 30, "1T": 1 << 40, "2GiB": 2 << 30, "3gb": 3 << 30} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(in)); err != nil || int64(b) != want {
			t.Errorf("%s → %d, %v; want %d", in, b, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.5G", "G", "99999999999T"} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted as a size", bad)
		}
	}
	for in, want := range map[time.Duration]string{time.Hour: "1h", 90 * time.Second: "1m30s", 5 * time.Minute: "5m", 0: "0s"} {
		if got, _ := Duration(in).MarshalText(); string(got) != want {
			t.Errorf("%v → %s; want %s", in, got, want)
		}
	}
}

// The helper path goes into the sudoers rule verbatim: anything sudoers
// reads as syntax is refused before setup writes the rule.
func TestHelperPathIsSudoersSafe(t *testing.T) {
	for _, p := range []string{"/usr/bin/hub d", "/usr/bin/hubd,/bin/sh", "/opt/a:b/hubd", `/usr/bin/hu\bd`, "/usr/bin/hubd=x"} {
		_, err := Parse("x.toml", []byte("[spawner]\nhelper_path = \""+strings.ReplaceAll(p, `\`, `\\`)+"\"\n"))
		if err == nil || !strings.Contains(err.Error(), "sudoers would read as syntax") {
			t.Errorf("helper_path %q: %v", p, err)
		}
	}
	if _, err := Parse("x.toml", []byte("[spawner]\nhelper_path = \"/usr/lib/hubd-1.2/hubd_helper+x\"\n")); err != nil {
		t.Errorf("a plain path refused: %v", err)
	}
}

// The LDAP login's settings are checked when auth.methods has "ldap":
// clear-text passwords to another machine, a template or filter without
// the user, a search without a service account, a membership without a
// base, rules that let nobody in.
func TestLDAPSettings(t *testing.T) {
	const head = "[auth]\nmethods = [\"pam\", \"ldap\"]\n[auth.ldap]\n"
	ok := "urls = [\"ldaps://ldap.example.org\", \"ldap://127.0.0.1:3389\"]\nuser_dn_template = \"uid={username},ou=people,dc=x\"\n" +
		"group_membership = \"memberOf\"\nallowed_groups = [\"staff\"]\n"
	if _, err := Parse("x.toml", []byte(head+ok)); err != nil {
		t.Fatalf("a valid LDAP section: %v", err)
	}
	if _, err := Parse("x.toml", []byte("[auth.ldap]\nurls = [\"ldap://x\"]\n")); err != nil {
		t.Errorf("[auth.ldap] is not checked while the method is off: %v", err)
	}
	const rest = "allowed_groups = [\"staff\"]\n"
	for what, c := range map[string]struct{ toml, key, msg string }{
		"no urls":            {"user_dn_template = \"uid={username},dc=x\"\ngroup_membership = \"memberOf\"\n" + rest, "auth.ldap.urls", "no directory server"},
		"clear text":         {"urls = [\"ldap://ldap.example.org\"]\nuser_dn_template = \"uid={username},dc=x\"\n" + rest, "auth.ldap.urls", "clear text"},
		"not ldap":           {"urls = [\"https://x\"]\nuser_dn_template = \"uid={username},dc=x\"\n" + rest, "auth.ldap.urls", "not an ldap://"},
		"template":           {"urls = [\"ldaps://x\"]\nuser_dn_template = \"uid=x,dc=x\"\n" + rest, "auth.ldap.user_dn_template", "{username}"},
		"search, no service": {"urls = [\"ldaps://x\"]\nuser_search_base = \"dc=x\"\n" + rest, "auth.ldap.bind_dn", "service account"},
		"service, no file": {"urls = [\"ldaps://x\"]\nuser_search_base = \"dc=x\"\nbind_dn = \"cn=s,dc=x\"\n" + rest,
			"auth.ldap.bind_password_file", "needed with bind_dn"},
		"membership": {"urls = [\"ldaps://x\"]\nuser_dn_template = \"uid={username},dc=x\"\ngroup_membership = \"uniqueMember\"\n" + rest,
			"auth.ldap.group_membership", "not one of"},
		"no group base": {"urls = [\"ldaps://x\"]\nuser_dn_template = \"uid={username},dc=x\"\n" + rest, "auth.ldap.group_search_base", "memberUid"},
		"nobody":        {"urls = [\"ldaps://x\"]\nuser_dn_template = \"uid={username},dc=x\"\ngroup_membership = \"memberOf\"\n", "auth.ldap.allowed_groups", "nobody could sign in"},
		"dynamic with sudo": {"urls = [\"ldaps://x\"]\nuser_dn_template = \"uid={username},dc=x\"\ngroup_membership = \"memberOf\"\naccount_mode = \"dynamic\"\n" + rest,
			"auth.ldap.account_mode", "spawner.kind"},
	} {
		_, err := Parse("x.toml", []byte(head+c.toml))
		if err == nil || !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want %s: …%s…", what, err, c.key, c.msg)
		}
	}
}

const profilesFile = `
[spawner]
kind = "sudo"

[[spawner.profiles]]
name = "small"
display_name = "CPU, 4 GB"
description = "For notebooks and small data"
default = true
[spawner.profiles.systemd]
memory_max = "4G"
cpu_quota_percent = 100

[[spawner.profiles]]
name = "gpu"
description = "One GPU of this machine"
gpus = 1
groups = ["gpu-users"]
linux_groups = ["video"]
[spawner.profiles.systemd]
device_allow = ["/dev/fuse rw", "char-drm"]

[[spawner.profiles]]
name = "cluster"
kind = "slurm"
[spawner.profiles.slurm]
partition = "gpu"
time = "8:00:00"
memory = "8G"
cpus = 4
gpus = 1
extra = ["--qos=interactive"]

[[spawner.profiles]]
name = "r"
kind = "docker"
gpus = 1
[spawner.profiles.docker]
image = "quay.io/jupyter/r-notebook:2026-11-30"
memory_max = "8G"
cpu_quota_percent = 200
pids_max = 512

[[spawner.gpus]]
index = 0
device = "/dev/nvidia0"
[[spawner.gpus]]
index = 1
device = "/dev/nvidia1"
`

func TestProfiles(t *testing.T) {
	cfg, err := Parse("x.toml", []byte(profilesFile+"\n[hub]\ninternal_listen = \"10.0.0.5:8081\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Spawner
	if len(s.Profiles) != 4 || s.Profiles[0].Systemd.MemoryMax != 4<<30 || !s.Profiles[0].Default ||
		s.Profiles[1].GPUs != 1 || s.Profiles[2].Slurm.Partition != "gpu" || len(s.GPUs) != 2 || s.GPUs[1].Device != "/dev/nvidia1" {
		t.Errorf("profiles read as %+v, gpus %+v", s.Profiles, s.GPUs)
	}
	if d := s.Profiles[3].Docker; d != (ProfileDocker{Image: "quay.io/jupyter/r-notebook:2026-11-30", MemoryMax: 8 << 30, CPUQuotaPercent: 200, PidsMax: 512}) {
		t.Errorf("a profile's docker table read as %+v", d)
	}
	// Every docker start has its profile's image: the hub needs none.
	if got := s.DockerImages(); !cmp.Equal(got, []string{"quay.io/jupyter/r-notebook:2026-11-30"}) {
		t.Errorf("docker images in use %v", got)
	}
	if got := s.KindsInUse(); !cmp.Equal(got, []string{"sudo", "slurm", "docker"}) {
		t.Errorf("kinds in use %v", got)
	}
	if s.ProfileKind(s.Profiles[0]) != "sudo" || s.ProfileKind(s.Profiles[2]) != "slurm" {
		t.Error("a profile's kind")
	}
	// Without a Slurm profile the internal listener stays on loopback.
	if _, err := Parse("x.toml", []byte("[hub]\ninternal_listen = \"10.0.0.5:8081\"\n")); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("a public internal listener without Slurm: %v", err)
	}
}

func TestProfileProblems(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"unknown key", "[[spawner.profiles]]\nname = \"a\"\nmemroy = \"4G\"\n", "spawner.profiles.memroy: unknown setting"},
		{"unknown sub-table key", "[[spawner.profiles]]\nname = \"a\"\n[spawner.profiles.slurm]\npartiton = \"x\"\n", "spawner.profiles.slurm.partiton: unknown setting"},
		{"bad name", "[[spawner.profiles]]\nname = \"GPU <b>\"\n", "profile name \"GPU <b>\" is not valid"},
		{"twice", "[[spawner.profiles]]\nname = \"a\"\n[[spawner.profiles]]\nname = \"a\"\n", "defined twice"},
		{"two defaults", "[[spawner.profiles]]\nname = \"a\"\ndefault = true\n[[spawner.profiles]]\nname = \"b\"\ndefault = true\n", "2 profiles are the default"},
		{"bad kind", "[[spawner.profiles]]\nname = \"a\"\nkind = \"k8s\"\n", "spawner.profiles.kind"},
		{"bad group", "[[spawner.profiles]]\nname = \"a\"\ngroups = [\"-rf\"]\n", "spawner.profiles.groups"},
		{"pool GPUs for Slurm", "[[spawner.profiles]]\nname = \"a\"\nkind = \"slurm\"\ngpus = 1\n", "get their GPUs from Slurm"},
		{"bad partition", "[[spawner.profiles]]\nname = \"a\"\n[spawner.profiles.slurm]\npartition = \"a b\"\n", "not a partition name"},
		{"bad time", "[[spawner.profiles]]\nname = \"a\"\n[spawner.profiles.slurm]\ntime = \"8 hours\"\n", "not a Slurm time limit"},
		{"bad memory", "[[spawner.profiles]]\nname = \"a\"\n[spawner.profiles.slurm]\nmemory = \"8 GB\"\n", "not a Slurm memory size"},
		{"sbatch injection", "[[spawner.profiles]]\nname = \"a\"\n[spawner.profiles.slurm]\nextra = [\"--qos=x\\n#SBATCH --uid=0\"]\n", "not an sbatch option"},
		{"hub's own option", "[spawner.slurm]\nextra = [\"--uid=0\"]\n", "set by hubd itself"},
		{"docker profile without an image", "[[spawner.profiles]]\nname = \"a\"\nkind = \"docker\"\n", "spawner.docker.image: no image"},
		{"bad profile image", "[[spawner.profiles]]\nname = \"a\"\nkind = \"docker\"\n[spawner.profiles.docker]\nimage = \"--privileged\"\n", "not an image reference"},
		{"negative pids", "[[spawner.profiles]]\nname = \"a\"\n[spawner.profiles.docker]\npids_max = -1\n", "spawner.profiles.docker.pids_max"},
		{"bad device rule", "[[spawner.profiles]]\nname = \"a\"\n[spawner.profiles.systemd]\ndevice_allow = [\"/etc/shadow rw\"]\n", "not a device rule"},
		{"gpu index twice", "[[spawner.gpus]]\nindex = 0\ndevice = \"/dev/nvidia0\"\n[[spawner.gpus]]\nindex = 0\ndevice = \"/dev/nvidia1\"\n", "listed twice"},
		{"relative gpu device", "[[spawner.gpus]]\nindex = 0\ndevice = \"nvidia0\"\n", "spawner.gpus.device"},
		{"bad submit", "[spawner.slurm]\nsubmit = \"ssh\"\n", "spawner.slurm.submit"},
		{"bad hub url", "[spawner.slurm]\nhub_api_url = \"10.0.0.5:8081\"\n", "spawner.slurm.hub_api_url"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("x.toml", []byte(c.file))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v; want %q", err, c.want)
			}
		})
	}
	// A sub-table of a kind the hub does not run is fine.
	if _, err := Parse("x.toml", []byte("[[spawner.profiles]]\nname = \"a\"\n[spawner.profiles.slurm]\npartition = \"main\"\n[spawner.profiles.systemd]\nmemory_max = \"1G\"\n")); err != nil {
		t.Errorf("sub-tables of kinds not running: %v", err)
	}
}
