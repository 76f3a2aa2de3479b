package host

import (
	"errors"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/config"
)

const scontrolConfig = `Configuration data as of 2026-12-01T10:00:00
AccountingStorageType   = accounting_storage/none
PrivateData             = none
ProctrackType           = proctrack/cgroup
`

func TestSlurmChecks(t *testing.T) {
	answers := map[string]func() (string, error){}
	run := &fakeRunner{answer: func(argv []string) (string, error) {
		for prog, f := range answers {
			if strings.Contains(strings.Join(argv, " "), prog) {
				return f()
			}
		}
		return "", nil
	}}
	o := testOptions(t, run)
	if got := o.checkSlurm(t.Context()); got != nil {
		t.Fatalf("Slurm checked on a hub that runs no jobs: %v", got)
	}
	o.Config.Spawner.Profiles = []config.Profile{{Name: "here"}, {Name: "cluster", Kind: "slurm", Slurm: config.ProfileSlurm{Partition: "gpu"}},
		{Name: "short", Kind: "slurm", Slurm: config.ProfileSlurm{Partition: "nosuch"}}}
	answers["sinfo"] = func() (string, error) { return "main\ngpu\nshort", nil }
	answers["scontrol show config"] = func() (string, error) { return scontrolConfig, nil }
	byCheck := func() map[string]Finding {
		m := map[string]Finding{}
		for _, f := range o.checkSlurm(t.Context()) {
			m[strings.Fields(f.Check)[1]] = f
		}
		return m
	}
	got := byCheck()
	if f := got["controller"]; f.Level != OK || !strings.Contains(f.Message, "main, gpu, short") {
		t.Errorf("controller: %+v", f)
	}
	if f := got["partitions"]; f.Level != Fail || !strings.Contains(f.Message, "nosuch (profile short)") || strings.Contains(f.Message, "gpu (profile") {
		t.Errorf("partitions: %+v", f)
	}
	if f := got["process"]; f.Level != OK {
		t.Errorf("process tracking: %+v", f)
	}
	if f := got["queue"]; f.Level != OK {
		t.Errorf("queue: %+v", f)
	}
	answers["scontrol show config"] = func() (string, error) {
		return strings.NewReplacer("PrivateData             = none", "PrivateData             = jobs,usage",
			"proctrack/cgroup", "proctrack/linuxproc").Replace(scontrolConfig), nil
	}
	got = byCheck()
	if f := got["queue"]; f.Level != Fail || !strings.Contains(f.Message, "hides members' jobs") {
		t.Errorf("queue with PrivateData=jobs: %+v", f)
	}
	if f := got["process"]; f.Level != Warn || !strings.Contains(f.Fix, "proctrack/cgroup") {
		t.Errorf("process tracking with linuxproc: %+v", f)
	}
	answers["sinfo"] = func() (string, error) { return "", errors.New("sinfo: error: Unable to contact slurm controller") }
	all := o.checkSlurm(t.Context())
	if len(all) != 1 || all[0].Level != Fail || !strings.Contains(all[0].Message, "Unable to contact") || !strings.Contains(all[0].Fix, "slurmctld") {
		t.Errorf("controller down: %+v", all)
	}
}
