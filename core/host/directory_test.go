package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/internal/testutil"
)

func TestNSSSources(t *testing.T) {
	conf := []byte("# passwd: ldap\npasswd:  files [NOTFOUND=return] systemd\tldap # sss\ngroup: files [SUCCESS=continue UNAVAIL=return] sss\nshadow:files\n")
	for db, want := range map[string][]string{
		"passwd": {"files", "systemd", "ldap"}, "group": {"files", "sss"}, "shadow": {"files"}, "hosts": nil,
	} {
		if got := nssSources(conf, db); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", db, got, want)
		}
	}
	for conf, want := range map[string]string{
		"passwd: files systemd\n":          "",
		"passwd: files ldap\n":             "ldap",
		"passwd: sss files\ngroup: ldap\n": "sss",
		"group: files ldap\n":              "", // the accounts are what PAM logs in
	} {
		got := ""
		if d := directoryOf([]byte(conf)); d != nil {
			got = d.Source
		}
		if got != want {
			t.Errorf("directoryOf(%q) = %q, want %q", conf, got, want)
		}
	}
}

// The login service follows nsswitch.conf: pam_unix alone for local
// accounts; with a directory, its module after pam_unix, never nullok,
// never a failure delay, and a directory that is down never reads as a
// wrong password.
func TestPAMServiceFollowsNSS(t *testing.T) {
	o := Options{Etc: t.TempDir(), Config: config.Default()}
	o.Config.Auth.MinUID = 2000
	pam := func(nsswitch string) (string, error) {
		t.Helper()
		if err := os.WriteFile(o.NSSwitchFile(), []byte(nsswitch), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := o.RenderPAMService()
		return string(b), err
	}
	rules := func(file string) []string {
		var out []string
		for l := range strings.Lines(file) {
			if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
				out = append(out, strings.Join(f, " "))
			}
		}
		return out
	}

	local, err := pam("passwd: files systemd\ngroup: files systemd\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rules(local), []string{"auth requisite pam_nologin.so", "auth required pam_unix.so nodelay", "account required pam_unix.so"}; !slices.Equal(got, want) {
		t.Errorf("local accounts only: %q, want %q", got, want)
	}

	files := []string{local}
	if !pamModuleInstalled("pam_ldap.so") {
		t.Log("pam_ldap.so is not installed here (libpam-ldapd): only the refusal is checked")
		if _, err := pam("passwd: files ldap\n"); err == nil || !strings.Contains(err.Error(), "apt-get install libpam-ldapd") {
			t.Errorf("nsswitch names ldap without pam_ldap installed: %v, want an error naming the package", err)
		}
	} else {
		ldap, err := pam("passwd: files systemd ldap\ngroup: files ldap\n")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"auth requisite pam_nologin.so",
			"auth [success=2 default=ignore] pam_unix.so nodelay",
			"auth [success=1 ignore=ignore default=die] pam_ldap.so minimum_uid=2000 use_first_pass",
			"auth requisite pam_deny.so",
			"auth required pam_permit.so",
			"account [success=1 new_authtok_reqd=done default=ignore] pam_unix.so",
			"account requisite pam_deny.so",
			"account required pam_permit.so",
			"account [success=ok new_authtok_reqd=done ignore=ignore user_unknown=ignore authinfo_unavail=ignore default=bad] pam_ldap.so minimum_uid=2000",
		}
		if got := rules(ldap); !slices.Equal(got, want) {
			t.Errorf("with ldap:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		files = append(files, ldap)
	}
	for _, file := range files {
		for _, bad := range []string{"nullok", "pam_faildelay", "common-auth"} {
			if slices.ContainsFunc(rules(file), func(r string) bool { return strings.Contains(r, bad) }) {
				t.Errorf("a rule has %q:\n%s", bad, file)
			}
		}
	}

	sss, err := pam("passwd: files sss\n")
	if pamModuleInstalled("pam_sss.so") {
		if err != nil || !strings.Contains(sss, "auth     [success=1 ignore=ignore default=die]  pam_sss.so use_first_pass\n") {
			t.Errorf("with sss: %v\n%s", err, sss)
		}
	} else if err == nil || !strings.Contains(err.Error(), "apt-get install libpam-sss") {
		t.Errorf("nsswitch names sss without pam_sss installed: %v, want an error naming the package", err)
	}
}

// The sudoers rule that names the spawn service passes visudo, and the
// service creates homes from /etc/skel, private to the member.
func TestSpawnPAMServiceAndRule(t *testing.T) {
	o := Options{Name: "hubtest-hs", HubUser: "hubtest-hs-hub", Config: config.Default()}
	o.Config.Auth.PAMService = "hubtest-hs"
	spawn, err := o.RenderSpawnPAMService()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(spawn), "session  required   pam_mkhomedir.so skel=/etc/skel umask=0077\n") ||
		!strings.Contains(string(spawn), "auth     required   pam_deny.so\n") {
		t.Errorf("spawn service:\n%s", spawn)
	}
	_, err = exec.LookPath("visudo")
	testutil.Require(t, err == nil, "visudo is not installed (package sudo)")
	sudoers, err := o.RenderSudoers()
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "sudoers")
	if err := os.WriteFile(tmp, sudoers, 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-cf", tmp).CombinedOutput(); err != nil {
		t.Errorf("visudo refuses the rule: %v: %s\n%s", err, out, sudoers)
	}
	if !strings.Contains(string(sudoers), "Defaults:hubtest-hs-hub pam_service=hubtest-hs-spawn, pam_session\n") {
		t.Errorf("the rule does not name the spawn service:\n%s", sudoers)
	}
}

func TestNslcdConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nslcd.conf")
	write := func(s string) nslcdConf {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := readNslcdConf(path)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := write("uid nslcd\n# uri ldap://commented/\nuri ldap://a/ ldaps://b:636/\nuri DNS\nssl start_tls\ntls_cacertfile /etc/ssl/ca.pem\n" +
		"bind_timelimit 3\ntimelimit 4\nnss_initgroups_ignoreusers root,ALLLOCAL\n")
	if !slices.Equal(c.URIs, []string{"ldap://a/", "ldaps://b:636/"}) || c.SSL != "start_tls" || c.CACertFile != "/etc/ssl/ca.pem" ||
		c.BindTimelimit != 3 || c.Timelimit != 4 || !c.InitgroupsIgnoreLocal {
		t.Errorf("parsed %+v", c)
	}
	if p, f := c.settingsProblems(); len(p) != 0 || len(f) != 0 {
		t.Errorf("a bounded configuration has problems %q (fixes %q)", p, f)
	}
	// Debian's default file: no limits, local users' groups ask the directory.
	c = write("uid nslcd\ngid nslcd\nuri ldap://127.0.0.1/\nbase dc=example,dc=com\n")
	p, f := c.settingsProblems()
	if len(p) != 3 || !slices.Equal(f, []string{"bind_timelimit 5", "timelimit 5", "nss_initgroups_ignoreusers ALLLOCAL"}) {
		t.Errorf("default configuration: problems %q, fixes %q", p, f)
	}
}

// On a packaged host the package's /etc/pam.d/hubd serves local accounts
// only; with a directory in NSS, the PAM step fails and names the way out:
// a service of another name, which setup writes.
func TestPackagedHostWithDirectory(t *testing.T) {
	o := testOptions(t, &fakeRunner{})
	o.Name, o.Packaged, o.Config.Auth.PAMService = DefaultName, true, DefaultName
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	pam, err := o.packagePAMService()
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string]string{o.PAMFile(): string(pam), o.NSSwitchFile(): "passwd: files ldap\n"} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var rec Record
	for _, s := range o.Steps(&rec) {
		if s.Name != "PAM service "+o.PAMFile() {
			continue
		}
		ch, err := s.Check(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(ch) != 1 || ch[0].Warn || !strings.Contains(ch[0].What, "directory users cannot log in") ||
			!strings.Contains(ch[0].Fix, `set pam_service = "hubd-ldap"`) {
			t.Errorf("packaged PAM service with ldap in NSS: %+v", ch)
		}
		return
	}
	t.Fatal("no PAM service step")
}
