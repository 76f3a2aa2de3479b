package spawner

import (
	"fmt"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

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

// A profile's limits replace the configured ones, and a server of a hub
// with a GPU pool may open only its own GPUs (and the driver's shared
// nodes, the pseudo-terminals and the profile's device_allow).
func TestSystemdProfileResources(t *testing.T) {
	s := &Systemd{o: SystemdOptions{MemoryMax: 1 << 30, TasksMax: 100, StopTimeout: time.Second}}
	props := func(r Resources) map[string]any {
		m := map[string]any{}
		for _, p := range s.properties(Request{User: "alice", Resources: r}, launch{argv: []string{"/bin/true"}}, "alice", "alice", "/env") {
			m[p.Name] = p.Value.Value()
		}
		return m
	}
	got := props(Resources{Systemd: SystemdLimits{MemoryMax: 200 << 20, DeviceAllow: []string{"/dev/fuse"}},
		GPUs: []GPU{{Index: 1, Device: "/dev/nvidia1"}}, Restrict: true, SharedDevices: []string{"/dev/nvidiactl"}})
	if got["MemoryMax"] != uint64(200<<20) || got["TasksMax"] != uint64(100) || got["DevicePolicy"] != "closed" {
		t.Errorf("MemoryMax %v TasksMax %v DevicePolicy %v", got["MemoryMax"], got["TasksMax"], got["DevicePolicy"])
	}
	want := []deviceRule{{"char-pts", "rw"}, {"/dev/nvidia1", "rw"}, {"/dev/nvidiactl", "rw"}, {"/dev/fuse", "rw"}}
	if fmt.Sprint(got["DeviceAllow"]) != fmt.Sprint(want) {
		t.Errorf("DeviceAllow %v, want %v", got["DeviceAllow"], want)
	}
	// No GPUs held: no shared nodes either, but still restricted.
	if got := props(Resources{Restrict: true, SharedDevices: []string{"/dev/nvidiactl"}}); fmt.Sprint(got["DeviceAllow"]) != "[{char-pts rw}]" {
		t.Errorf("a server without GPUs may open %v", got["DeviceAllow"])
	}
	if got := props(Resources{}); got["DevicePolicy"] != nil || got["MemoryMax"] != uint64(1<<30) {
		t.Errorf("without a pool or a profile: DevicePolicy %v MemoryMax %v", got["DevicePolicy"], got["MemoryMax"])
	}
	if d := s.limitDiffs(map[string]any{"MemoryMax": uint64(1 << 30), "TasksMax": uint64(100)}, SystemdLimits{MemoryMax: 200 << 20}); len(d) != 1 || !strings.Contains(d[0], "configured 209715200") {
		t.Errorf("diffs against the profile's limit: %v", d)
	}
}
