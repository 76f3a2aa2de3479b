package spawner

import (
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/hubd/hubd/internal/testutil"

	"github.com/godbus/dbus/v5"
)

func TestSystemdEscapeMatchesSystemd(t *testing.T) {
	names := []string{"alice", "hubtest-sd-alice", "a.b", ".hidden", "o_k:1", "my server", "a/b", "ü", "tab\there", "\x01", "x\\x2d", "-"}
	for _, n := range names {
		got := escapeUnitName(n)
		if !validUnitName("p-" + got + ".service") {
			t.Errorf("escapeUnitName(%q) = %q: not a valid unit name part", n, got)
		}
		out, err := exec.Command("systemd-escape", "--", n).Output()
		if err != nil {
			testutil.Require(t, false, "systemd-escape: %v", err)
		}
		if want := strings.TrimSuffix(string(out), "\n"); got != want {
			t.Errorf("escapeUnitName(%q) = %q, systemd-escape says %q", n, got, want)
		}
	}
}

func TestSystemdUnitName(t *testing.T) {
	s := &Systemd{o: SystemdOptions{UnitPrefix: "hubd-server"}}
	for _, c := range []struct{ user, server, want string }{
		{"alice", "", "hubd-server-alice.service"},
		{"a-b", "", `hubd-server-a\x2db.service`},
		// Escaped '-' keeps user and server apart: a-b + "" differs from a + b.
		{"a", "b", "hubd-server-a-b.service"},
		{"a.b", "x/y z", `hubd-server-a.b-x-y\x20z.service`},
	} {
		got, err := s.UnitName(c.user, c.server)
		if err != nil || got != c.want {
			t.Errorf("UnitName(%q, %q) = %q, %v; want %q", c.user, c.server, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "-x", "root x", "A"} {
		if _, err := s.UnitName(bad, ""); err == nil {
			t.Errorf("UnitName(%q) accepted", bad)
		}
	}
	if _, err := s.UnitName("alice", strings.Repeat("ü", 100)); err == nil || !strings.Contains(err.Error(), "shorter server name") {
		t.Errorf("a too long unit name: %v", err)
	}
}

func TestSystemdEnvFileContent(t *testing.T) {
	got, err := envFileContent([]string{`A=plain`, `B=with space`, `C=q"uo'te`, `D=$HOME ${X} $$`, `E=back\slash\`, "F=`tick`", `G=`, `H=%h;#x`})
	if err != nil {
		t.Fatal(err)
	}
	want := `A="plain"
B="with space"
C="q\"uo'te"
D="\$HOME \${X} \$\$"
E="back\\slash\\"
F="\` + "`tick\\`" + `"
G=""
H="%h;#x"
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for _, bad := range [][]string{{"A=line\nbreak"}, {"A=cr\r"}, {"A=\xff"}, {"1A=x"}, {"A-B=x"}, {"=x"}} {
		if _, err := envFileContent(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSystemdExtraProperties(t *testing.T) {
	props, err := extraProperties(map[string]string{
		"ProtectSystem": "strict", "PrivateDevices": "yes", "MemoryHigh": "2G", "Nice": "-5",
		"RuntimeMaxSec": "8h", "InaccessiblePaths": "/srv /mnt", "LimitNOFILE": "infinity",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, p := range props {
		got[p.Name] = p.Value.Value()
	}
	want := map[string]any{
		"ProtectSystem": "strict", "PrivateDevices": true, "MemoryHigh": uint64(2 << 30), "Nice": int32(-5),
		"RuntimeMaxUSec": uint64(8 * 3600 * 1e6), "LimitNOFILE": uint64(math.MaxUint64),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if l, _ := got["InaccessiblePaths"].([]string); len(l) != 2 || l[1] != "/mnt" {
		t.Errorf("InaccessiblePaths = %#v", got["InaccessiblePaths"])
	}
	for k, v := range map[string]string{
		"User": "root", "MemoryMax": "1G", "ExecStart": "/bin/sh", "PrivateDevices": "maybe",
		"MemoryHigh": "lots", "Nice": "x", "RuntimeMaxSec": "forever",
	} {
		_, err := extraProperties(map[string]string{k: v})
		if err == nil {
			t.Errorf("%s=%s accepted", k, v)
			continue
		}
		mustContain(t, "error", err.Error(), "spawner.systemd.extra_properties."+k)
	}
	_, err = extraProperties(map[string]string{"MemoryMax": "1G"})
	mustContain(t, "error", err.Error(), "spawner.systemd.memory_max")
}

func TestSystemdFailureReason(t *testing.T) {
	s := &Systemd{o: SystemdOptions{MemoryMax: 64 << 20}}
	for _, c := range []struct {
		props map[string]any
		code  int
		want  []string
	}{
		{map[string]any{"Result": "oom-kill", "ExecMainCode": int32(cldKilled), "ExecMainStatus": int32(9)}, 137, []string{"result oom-kill", "OOM killer", "SIGKILL", "memory_max"}},
		{map[string]any{"Result": "signal", "ExecMainCode": int32(cldKilled), "ExecMainStatus": int32(9)}, 137, []string{"result signal", "SIGKILL", "OOM killer"}},
		{map[string]any{"Result": "exit-code", "ExecMainCode": int32(cldExited), "ExecMainStatus": int32(200)}, 200, []string{"status 200", "working directory"}},
		{map[string]any{"Result": "success", "ExecMainCode": int32(cldExited), "ExecMainStatus": int32(0)}, 0, []string{"exited with status 0"}},
		{map[string]any{"Result": "success", "ExecMainCode": int32(0), "ExecMainStatus": int32(0)}, -1, []string{"is gone"}},
	} {
		reason, code := s.failure("u.service", c.props)
		if code != c.code {
			t.Errorf("%v: exit code %d, want %d", c.props, code, c.code)
		}
		mustContain(t, "reason", reason, c.want...)
	}
}

func TestSystemdLimitDiffs(t *testing.T) {
	s := &Systemd{o: SystemdOptions{MemoryMax: 512 << 20, CPUQuotaPercent: 150, TasksMax: 100}}
	ok := map[string]any{"MemoryMax": uint64(512 << 20), "CPUQuotaPerSecUSec": uint64(1_500_000), "TasksMax": uint64(100)}
	if d := s.limitDiffs(ok, SystemdLimits{}); len(d) != 0 {
		t.Errorf("diffs for matching limits: %v", d)
	}
	bad := map[string]any{"MemoryMax": uint64(math.MaxUint64), "CPUQuotaPerSecUSec": uint64(1_500_000)}
	d := s.limitDiffs(bad, SystemdLimits{})
	if len(d) != 2 {
		t.Fatalf("diffs %v", d)
	}
	mustContain(t, "diffs", strings.Join(d, "\n"), "MemoryMax is 18446744073709551615, configured 536870912", "TasksMax is <nil>")
	if (&Systemd{}).limitDiffs(map[string]any{}, SystemdLimits{}) != nil {
		t.Error("no limits configured, yet differences")
	}
}

func TestSystemdBusErrorSaysRoot(t *testing.T) {
	err := busError(dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied", Body: []any{"Access denied"}}, "start unit x.service")
	mustContain(t, "error", err.Error(), "start unit x.service", "Access denied", "as root", "spawner.kind")
	if err := busError(dbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit"}, "x"); strings.Contains(err.Error(), "root") {
		t.Errorf("other errors do not blame root: %v", err)
	}
}
