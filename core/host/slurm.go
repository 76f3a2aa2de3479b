package host

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hubd/hubd/core/spawner"
)

// checkSlurm checks, when a profile or spawner.kind runs Slurm jobs, what
// those need: a controller that answers the hub's account, a queue that
// shows the hub every member's jobs, the partitions profiles name, and
// process tracking that ends every process of a cancelled job.
func (o Options) checkSlurm(ctx context.Context) []Finding {
	s := o.Config.Spawner
	if !slices.Contains(s.KindsInUse(), spawner.KindSlurm) {
		return nil
	}
	sl := s.Slurm
	sinfo := filepath.Join(filepath.Dir(sl.Squeue), "sinfo")
	ctl := Finding{Check: "Slurm controller (sinfo as " + o.HubUser + ")", Level: OK}
	out, err := o.Run.Run(ctx, "setpriv", o.asHub(sinfo, "--noheader", "--format=%R")...)
	if err != nil {
		ctl.Level = Fail
		ctl.Message = "sinfo fails: " + err.Error()
		ctl.Fix = "start slurmctld and check /etc/slurm/slurm.conf and munge on this machine; `sinfo` must work as " + o.HubUser
		return []Finding{ctl}
	}
	partitions := strings.Fields(out)
	ctl.Message = "answers; partitions " + strings.Join(partitions, ", ")
	findings := []Finding{ctl}

	queue := Finding{Check: "Slurm queue (squeue as " + o.HubUser + ")", Level: OK, Message: "answers"}
	if _, err := o.Run.Run(ctx, "setpriv", o.asHub(sl.Squeue, "--noheader", "--format=%i", "--user="+o.HubUser)...); err != nil {
		queue.Level, queue.Message = Fail, "squeue fails: "+err.Error()
		queue.Fix = "check spawner.slurm.squeue in " + o.ConfigPath + " and that " + o.HubUser + " may use Slurm"
	}
	conf, err := o.Run.Run(ctx, sl.Scontrol, "show", "config")
	if err != nil {
		queue.Level, queue.Message = Fail, "scontrol show config fails: "+err.Error()
		queue.Fix = "check spawner.slurm.scontrol in " + o.ConfigPath
		return append(findings, queue)
	}
	if priv := slurmSetting(conf, "PrivateData"); strings.Contains(priv, "jobs") {
		queue.Level = Fail
		queue.Message = "PrivateData=" + priv + " hides members' jobs from " + o.HubUser + ", so the hub cannot follow their servers"
		queue.Fix = "remove jobs from PrivateData in slurm.conf, or make " + o.HubUser + " a Slurm operator (sacctmgr modify user " + o.HubUser + " set adminlevel=operator)"
	}
	findings = append(findings, queue)

	part := Finding{Check: "Slurm partitions of the profiles", Level: OK, Message: "every profile's partition exists"}
	var missing []string
	for _, p := range s.Profiles {
		if s.ProfileKind(p) == spawner.KindSlurm && p.Slurm.Partition != "" && !slices.Contains(partitions, p.Slurm.Partition) {
			missing = append(missing, fmt.Sprintf("%s (profile %s)", p.Slurm.Partition, p.Name))
		}
	}
	if len(missing) > 0 {
		part.Level = Fail
		part.Message = "no such partition: " + strings.Join(missing, ", ") + "; Slurm has " + strings.Join(partitions, ", ")
		part.Fix = "correct the partition of those profiles in " + o.ConfigPath + ", or add the partitions to slurm.conf"
	}
	findings = append(findings, part)

	track := Finding{Check: "Slurm process tracking", Level: OK}
	switch pt := slurmSetting(conf, "ProctrackType"); pt {
	case "proctrack/cgroup":
		track.Message = pt + ": a cancelled job's every process ends"
	default:
		track.Level = Warn
		track.Message = pt + ": processes that leave the server's session (kernels started with setsid) can outlive a stopped server"
		track.Fix = "set ProctrackType=proctrack/cgroup in slurm.conf (with cgroup.conf) and restart slurmctld and slurmd"
	}
	return append(findings, track)
}

// slurmSetting reads "Name = value" from `scontrol show config`.
func slurmSetting(conf, name string) string {
	for line := range strings.Lines(conf) {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
