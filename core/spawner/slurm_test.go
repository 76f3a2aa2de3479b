package spawner

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseQueue(t *testing.T) {
	out := "12|RUNNING|None|node2|alice\n13|PENDING|Resources||bob\n14|TIMEOUT|TimeLimit|node1|alice\nsqueue: noise\n"
	jobs := parseQueue(out)
	if len(jobs) != 3 {
		t.Fatalf("jobs %v", jobs)
	}
	if j := jobs["12"]; !j.active() || !j.running() || j.Nodes != "node2" || j.User != "alice" {
		t.Errorf("job 12: %+v", j)
	}
	if j := jobs["13"]; !j.active() || j.running() || j.Reason != "Resources" {
		t.Errorf("job 13: %+v", j)
	}
	j := jobs["14"]
	if j.active() {
		t.Errorf("a timed-out job counts as active")
	}
	mustContain(t, "description", j.describe(), "Slurm job 14", "time limit", "TIMEOUT", "TimeLimit")
	if d := (jobInfo{ID: "9", State: "CANCELLED", Reason: "None"}).describe(); strings.Contains(d, "reason") {
		t.Errorf("reason None is noise: %s", d)
	}
}

func TestCheckSbatchOption(t *testing.T) {
	for _, ok := range []string{"--qos=interactive", "--nodelist=node2", "--exclusive", "--constraint=a100&nvlink", "--begin=now+1hour"} {
		if err := CheckSbatchOption(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"-p main", "--qos=a b", "--qos=x\n#SBATCH --uid=0", "--uid=0", "--export=ALL", "--wrap=id", "--x='y'", "--x=$(id)", "qos=x", "--comment=a;b"} {
		if err := CheckSbatchOption(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The script carries the server's environment quoted for the shell, the
// profile's resources as #SBATCH lines, and ends by running the server.
func TestSlurmScript(t *testing.T) {
	s, err := NewSlurm(SlurmOptions{Sudo: NewSudo(SudoOptions{}), Extra: []string{"--qos=jupyter"}})
	if err != nil {
		t.Fatal(err)
	}
	acct := account{uid: 1234, name: "alice", home: "/home/alice", shell: "/bin/bash"}
	r := Request{User: "alice", Server: "gpu", Command: []string{"/usr/bin/jupyterhub-singleuser"}, Args: []string{"--debug", "it's"},
		Env: map[string]string{"JUPYTERHUB_API_TOKEN": "s3cr'et", "X": "$(id) `id` \"q\""}, WorkingDir: "~/work",
		Resources: Resources{Profile: "gpu", Slurm: SlurmJob{Partition: "gpu", Time: "8:00:00", Memory: "8G", CPUs: 4, GPUs: 1, Extra: []string{"--exclusive"}}}}
	script, err := s.renderScript(r, acct)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "script", script, "#!/bin/bash\n", "#SBATCH --job-name=hubd-alice-gpu\n", "#SBATCH --output=/home/alice/.hubd-slurm-gpu.log\n",
		"#SBATCH --chdir=/home/alice/work\n", "#SBATCH --partition=gpu\n", "#SBATCH --time=8:00:00\n", "#SBATCH --mem=8G\n",
		"#SBATCH --cpus-per-task=4\n", "#SBATCH --gres=gpu:1\n", "#SBATCH --qos=jupyter\n#SBATCH --exclusive\n",
		"export JUPYTERHUB_API_TOKEN='s3cr'\\''et'\n", "export HOME='/home/alice'\n",
		"exec '/usr/bin/jupyterhub-singleuser' '--debug' 'it'\\''s'\n", "HUBD_ADDRESS_URL")
	// Every #SBATCH line comes before the first command: sbatch stops
	// reading them there.
	if i, j := strings.LastIndex(script, "#SBATCH"), strings.Index(script, "export "); i > j {
		t.Errorf("an #SBATCH line after the first command:\n%s", script)
	}
	// bash reads the exports back exactly.
	out, err := exec.Command("/bin/bash", "-c", strings.Split(script, "set -e")[0]+"\nprintf '%s|%s' \"$JUPYTERHUB_API_TOKEN\" \"$X\"").Output()
	if err != nil || string(out) != "s3cr'et|$(id) `id` \"q\"" {
		t.Errorf("exports read back as %q, %v", out, err)
	}
	if err := exec.Command("/bin/bash", "-n", "-c", script).Run(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, script)
	}

	r.WorkingDir = "/srv/my data"
	if _, err := s.renderScript(r, acct); err == nil || !strings.Contains(err.Error(), "space") {
		t.Errorf("a working directory with a space: %v", err)
	}
	r.WorkingDir = ""
	r.Resources.Slurm.Extra = []string{"--uid=0"}
	if _, err := s.renderScript(r, acct); err == nil || !strings.Contains(err.Error(), "set by hubd") {
		t.Errorf("--uid in a profile: %v", err)
	}
}

func TestSlurmTemplate(t *testing.T) {
	tmpl := "#!/bin/bash\n{{range .Directives}}#SBATCH {{.}}\n{{end}}{{.Environment}}\nmodule load jupyter\n{{.Start}}\n"
	s, err := NewSlurm(SlurmOptions{Sudo: NewSudo(SudoOptions{}), Template: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	script, err := s.renderScript(Request{User: "bob", Command: []string{"/bin/true"}}, account{name: "bob", home: "/home/bob"})
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "script", script, "module load jupyter\nset -e\n", "exec '/bin/true'")
	if _, err := NewSlurm(SlurmOptions{Sudo: NewSudo(SudoOptions{}), Template: "{{.Nope"}); err == nil {
		t.Error("a broken template was accepted")
	}
	s, _ = NewSlurm(SlurmOptions{Sudo: NewSudo(SudoOptions{}), Template: "{{.Nope}}"})
	if _, err := s.renderScript(Request{User: "bob", Command: []string{"/bin/true"}}, account{name: "bob", home: "/home/bob"}); err == nil {
		t.Error("a template naming an unknown field rendered")
	}
}

// Callers asking about jobs at the same time share one query, and a
// fresh enough answer is reused.
func TestJobTableBatches(t *testing.T) {
	var queries atomic.Int32
	var mu sync.Mutex
	var asked [][]string
	q := func(_ context.Context, ids []string) (map[string]jobInfo, error) {
		queries.Add(1)
		mu.Lock()
		asked = append(asked, ids)
		mu.Unlock()
		out := map[string]jobInfo{}
		for _, id := range ids {
			if id != "404" {
				out[id] = jobInfo{ID: id, State: "RUNNING"}
			}
		}
		return out, nil
	}
	tbl := newJobTable(q, time.Now, time.Minute)
	tbl.gather = 50 * time.Millisecond
	var wg sync.WaitGroup
	for _, id := range []string{"1", "2", "3", "404"} {
		wg.Go(func() {
			info, found, err := tbl.get(t.Context(), id)
			if err != nil || found != (id != "404") || (found && info.State != "RUNNING") {
				t.Errorf("job %s: %+v %v %v", id, info, found, err)
			}
		})
	}
	wg.Wait()
	if n := queries.Load(); n != 1 {
		t.Errorf("%d queries for four jobs asked together: %v", n, asked)
	}
	if _, _, err := tbl.get(t.Context(), "2"); err != nil || queries.Load() != 1 {
		t.Errorf("a fresh answer was not reused (%d queries, %v)", queries.Load(), err)
	}
	tbl.maxAge = 0
	if _, _, err := tbl.get(t.Context(), "2"); err != nil || queries.Load() != 2 {
		t.Errorf("no new query for a stale answer (%d queries, %v)", queries.Load(), err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := tbl.get(ctx, "5"); err == nil {
		t.Error("a cancelled ask returned no error")
	}
}

func TestSlurmComplaint(t *testing.T) {
	got := slurmComplaint("sbatch", "sbatch: error: invalid partition specified: nosuch\nsbatch: error: Batch job submission failed: Invalid partition name specified\n")
	if got != "invalid partition specified: nosuch; Batch job submission failed: Invalid partition name specified" {
		t.Errorf("complaint %q", got)
	}
	err := &slurmError{prog: "squeue", msg: "Unable to contact slurm controller (connect failure)"}
	mustContain(t, "error", err.Error(), "squeue failed", "slurmctld running")
}

func TestParseGPUList(t *testing.T) {
	got := parseGPUList("0, 0\n1, 3\n2, [N/A]\nbad\n")
	if len(got) != 2 || got[1] != (GPU{Index: 1, Device: "/dev/nvidia3"}) {
		t.Errorf("GPUs %+v", got)
	}
	if gpus, err := DetectGPUs(t.Context(), "/nonexistent/nvidia-smi"); gpus != nil || err != nil {
		t.Errorf("no nvidia-smi: %v %v", gpus, err)
	}
}
