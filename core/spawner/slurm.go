package spawner

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/hubd/hubd/core/names"
)

// How the Slurm spawner submits and cancels jobs (config
// spawner.slurm.submit).
const (
	// SlurmSubmitSudo runs sbatch and scancel as the member through the
	// spawn helper: the hub stays unprivileged, the sudoers rule is the
	// same one rule.
	SlurmSubmitSudo = "sudo"
	// SlurmSubmitRoot runs them as the hub, which must be root, with
	// --uid and --gid.
	SlurmSubmitRoot = "root"
)

// AddressURLEnv names the environment variable holding the URL a placed
// server reports its address to (POST {"ip": ..., "port": ...} with its
// API token).
const AddressURLEnv = "HUBD_ADDRESS_URL"

// SlurmOptions configures the Slurm spawner (config spawner.slurm). Zero
// values take the defaults.
type SlurmOptions struct {
	Submit string // SlurmSubmitSudo (default) or SlurmSubmitRoot
	// The Slurm commands, absolute paths (default /usr/bin/<name>);
	// Scontrol and Python must be at the same paths on the nodes, where
	// the job script runs them.
	Sbatch, Squeue, Scancel, Scontrol string
	Python                            string // default /usr/bin/python3
	JobNamePrefix                     string // default "hubd": jobs are <prefix>-<user>[-<server>]
	// Extra are sbatch options for every job, before the profile's.
	Extra []string
	// Template is the job script's text/template ("" = the built-in one);
	// see slurmScript for what it may use.
	Template string
	// Sudo runs the spawn helper for SlurmSubmitSudo.
	Sudo *Sudo
	// PollEvery is how often a starting job's state is read (default
	// 500 ms); running jobs are read when the hub polls.
	PollEvery   time.Duration
	StopTimeout time.Duration // default 10 s
	Logger      *slog.Logger
	Now         func() time.Time
}

// Slurm runs each server as a Slurm batch job: the job script, rendered
// from a template with the profile's resources, picks a free port on the
// node the job lands on, reports (node address, port) to the hub's API
// with the server's own token, and runs the single-user server there.
// The hub learns the job's progress (pending with Slurm's reason, then
// running on a node) and its end (time limit, node failure, a cancel from
// outside, with Slurm's reason) from squeue, which it runs as itself, one
// query for all jobs asked about at once.
type Slurm struct {
	o      SlurmOptions
	log    *slog.Logger
	script *template.Template
	jobs   *jobTable
	addrs  func(ctx context.Context, nodes string) ([]string, error)
}

var (
	_ Spawner = (*Slurm)(nil)
	_ Placer  = (*Slurm)(nil)
)

//go:embed templates/slurm-job.sh.tmpl
var defaultJobTemplate string

//go:embed templates/slurm-start.sh.tmpl
var startBlockTemplate string

var startBlock = template.Must(template.New("start").Parse(startBlockTemplate))

// NewSlurm checks the options and parses the job template.
func NewSlurm(o SlurmOptions) (*Slurm, error) {
	for _, p := range []*string{&o.Sbatch, &o.Squeue, &o.Scancel, &o.Scontrol} {
		if *p == "" {
			*p = map[*string]string{&o.Sbatch: "/usr/bin/sbatch", &o.Squeue: "/usr/bin/squeue",
				&o.Scancel: "/usr/bin/scancel", &o.Scontrol: "/usr/bin/scontrol"}[p]
		}
	}
	if o.Python == "" {
		o.Python = "/usr/bin/python3"
	}
	if o.JobNamePrefix == "" {
		o.JobNamePrefix = "hubd"
	}
	if o.Submit == "" {
		o.Submit = SlurmSubmitSudo
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 500 * time.Millisecond
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = defaultStopTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch o.Submit {
	case SlurmSubmitSudo:
		if o.Sudo == nil {
			return nil, errors.New("the Slurm spawner submits through the spawn helper but has no sudo spawner")
		}
	case SlurmSubmitRoot:
		if os.Geteuid() != 0 {
			return nil, errors.New("spawner.slurm.submit = \"root\" needs the hub to run as root (sbatch --uid is root's privilege): run hubd as root or set submit = \"sudo\"")
		}
	default:
		return nil, fmt.Errorf("spawner.slurm.submit %q is neither %q nor %q", o.Submit, SlurmSubmitSudo, SlurmSubmitRoot)
	}
	for _, line := range o.Extra {
		if err := CheckSbatchOption(line); err != nil {
			return nil, fmt.Errorf("spawner.slurm.extra: %w", err)
		}
	}
	text := o.Template
	if text == "" {
		text = defaultJobTemplate
	}
	tmpl, err := template.New("job").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("the Slurm job template: %w", err)
	}
	s := &Slurm{o: o, script: tmpl, log: o.Logger.With("component", "spawner", "kind", KindSlurm)}
	s.jobs = newJobTable(squeueJobs(o.Squeue), o.Now, o.PollEvery)
	s.addrs = s.nodeAddresses
	return s, nil
}

// sbatchOptionRE is one sbatch option as an #SBATCH line takes it: a long
// option with an optional value, no whitespace (sbatch splits the line on
// it) and nothing a shell or sbatch would read further.
var sbatchOptionRE = regexp.MustCompile(`^--[a-z][a-z-]*(=[^\s'"\\` + "`" + `$;]+)?$`)

// CheckSbatchOption says what is wrong with one sbatch option of the
// configuration (spawner.slurm.extra, a profile's slurm.extra), or nil.
func CheckSbatchOption(opt string) error {
	if !sbatchOptionRE.MatchString(opt) {
		return fmt.Errorf("%s is not an sbatch option like \"--qos=interactive\" (a long option, its value without spaces or quotes)", names.Quote(opt))
	}
	switch name, _, _ := strings.Cut(opt, "="); name {
	case "--uid", "--gid", "--export", "--export-file", "--get-user-env", "--wrap", "--parsable":
		return fmt.Errorf("%s is set by hubd itself", name)
	}
	return nil
}

// slurmScript is what the job template may use. Directives, Environment
// and Start are rendered already: a template adds its own lines (module
// load, a conda activation) between them.
type slurmScript struct {
	// User, Server and Profile name the server (Server and Profile may be
	// ""): a template may load different modules per profile.
	User, Server, Profile, JobName string
	// Directives are the sbatch options, one per "#SBATCH" line.
	Directives []string
	// Environment exports the server's environment, its token included.
	Environment string
	// Start finds the node's address, picks a port, reports both to the
	// hub and runs the server; it must come last.
	Start string
}

// Output is the job's output file for a user's server, in their home:
// Slurm opens it as the member on the node.
func slurmOutput(home, server string) string {
	name := ".hubd-slurm"
	if server != "" {
		name += "-" + server
	}
	return home + "/" + name + ".log"
}

// renderScript builds the job script for r.
func (s *Slurm) renderScript(r Request, acct account) (string, error) {
	env, err := buildEnv(r.Env, r.Path, acct)
	if err != nil {
		return "", err
	}
	dir, err := resolveDir(r.WorkingDir, acct.home)
	if err != nil {
		return "", err
	}
	if len(r.Command) == 0 || !strings.HasPrefix(r.Command[0], "/") {
		return "", errors.New("no server command with an absolute path: set spawner.command")
	}
	output := slurmOutput(acct.home, r.Server)
	for _, p := range []string{dir, output} {
		if strings.ContainsFunc(p, func(c rune) bool { return c <= ' ' || c == '\'' || c == '"' || c == '\\' }) {
			return "", fmt.Errorf("the path %s has a space or quote, which #SBATCH lines cannot carry: use spawner.working_dir without one", names.Quote(p))
		}
	}
	name := s.o.JobNamePrefix + "-" + r.User
	if r.Server != "" {
		name += "-" + r.Server
	}
	job := r.Resources.Slurm
	dirs := []string{"--job-name=" + name, "--output=" + output, "--open-mode=append", "--chdir=" + dir, "--nodes=1", "--ntasks=1"}
	for _, o := range []struct{ flag, v string }{
		{"--partition=", job.Partition}, {"--time=", job.Time}, {"--mem=", job.Memory},
	} {
		if o.v != "" {
			dirs = append(dirs, o.flag+o.v)
		}
	}
	if job.CPUs > 0 {
		dirs = append(dirs, "--cpus-per-task="+strconv.Itoa(job.CPUs))
	}
	if job.GPUs > 0 {
		dirs = append(dirs, "--gres=gpu:"+strconv.Itoa(job.GPUs))
	}
	dirs = append(dirs, s.o.Extra...)
	dirs = append(dirs, job.Extra...)
	for _, d := range dirs[6:] {
		if err := CheckSbatchOption(d); err != nil {
			return "", fmt.Errorf("profile %s: %w", r.Resources.Profile, err)
		}
	}
	var exports strings.Builder
	exports.WriteString("export PYTHONUNBUFFERED=1\n")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if !envName(k) {
			return "", fmt.Errorf("environment variable name %s cannot be exported by a shell: rename it in spawner.environment", names.Quote(k))
		}
		exports.WriteString("export " + k + "=" + shellQuote(v) + "\n")
	}
	argv := append(append([]string{}, r.Command...), r.Args...)
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = shellQuote(a)
	}
	var start bytes.Buffer
	if err := startBlock.Execute(&start, map[string]string{
		"Scontrol": shellQuote(s.o.Scontrol), "Python": shellQuote(s.o.Python), "Command": strings.Join(quoted, " "),
	}); err != nil {
		return "", err
	}
	var out bytes.Buffer
	err = s.script.Execute(&out, slurmScript{User: r.User, Server: r.Server, Profile: r.Resources.Profile, JobName: name, Directives: dirs,
		Environment: strings.TrimSuffix(exports.String(), "\n"), Start: strings.TrimSuffix(start.String(), "\n")})
	if err != nil {
		return "", fmt.Errorf("the Slurm job template: %w", err)
	}
	return out.String(), nil
}

// shellQuote quotes s for a POSIX shell: nothing inside single quotes is
// special.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// slurmAccount is the member's passwd entry and primary gid.
func slurmAccount(userName string) (account, string, error) {
	acct, _, err := memberAccount(userName)
	if err != nil {
		return account{}, "", err
	}
	u, err := user.Lookup(userName)
	if err != nil {
		return account{}, "", fmt.Errorf("look up user %s: %w", userName, err)
	}
	return acct, u.Gid, nil
}

// Start implements Spawner: it submits the job and returns once Slurm
// took it. Place follows it from there.
func (s *Slurm) Start(ctx context.Context, r Request) (State, error) {
	lg, err := beginStart(r, false)
	if err != nil {
		return State{}, err
	}
	defer lg.Close()
	acct, gid, err := slurmAccount(r.User)
	if err != nil {
		return State{}, startFailed(err)
	}
	script, err := s.renderScript(r, acct)
	if err != nil {
		return State{}, startFailed(err)
	}
	t0 := s.o.Now()
	var id string
	if s.o.Submit == SlurmSubmitRoot {
		id, err = sbatch(ctx, s.o.Sbatch, script, []string{"PATH=" + systemPath, "LANG=C.UTF-8"},
			"--uid="+strconv.Itoa(acct.uid), "--gid="+gid)
	} else {
		var reply helperReply
		reply, err = s.o.Sudo.call(ctx, r.User, helperRequest{V: protocolVersion, Action: actionSlurmSubmit, User: r.User,
			Program: s.o.Sbatch, Script: script}, lg.f, lg.tail)
		id = reply.JobID
	}
	if err != nil {
		se := &StartError{Reason: "Slurm did not take the job: " + err.Error(), Output: lg.tail(), Err: err}
		if he, ok := errors.AsType[*helperError](err); ok {
			se.Reason = "Slurm did not take the job: " + strings.TrimPrefix(he.reason, "the spawn helper refused: ")
		}
		return State{}, se
	}
	fmt.Fprintf(lg.f, "hubd: submitted Slurm job %s for %s (profile %q); its output goes to %s on its node\n",
		id, r.User, r.Resources.Profile, slurmOutput(acct.home, r.Server))
	s.log.Info("job submitted", "user", r.User, "server", r.Server, "job", id, "took", s.o.Now().Sub(t0))
	return State{Kind: KindSlurm, JobID: id}, nil
}

// Place implements Placer: it follows the job through the queue, telling
// progress what Slurm says (pending and why, running on which node), and
// accepts the first report whose host is the job's node.
func (s *Slurm) Place(ctx context.Context, userName string, st State, reports <-chan AddressReport, progress func(string)) (State, error) {
	if err := s.checkState(userName, st); err != nil {
		return State{}, err
	}
	tick := time.NewTicker(s.o.PollEvery)
	defer tick.Stop()
	var last jobInfo
	said := ""
	look := func() error {
		info, found, err := s.jobs.get(ctx, st.JobID)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Warn("read the state of a starting job", "job", st.JobID, "err", err)
			}
			return nil // Slurm may answer again before the deadline
		case !found:
			return fmt.Errorf("Slurm job %s vanished from the queue before the server reported its address", st.JobID)
		case !info.active():
			return fmt.Errorf("%s before the server reported its address; the job's output is in %s on its node", info.describe(), slurmOutputHint(info))
		}
		last = info
		msg := fmt.Sprintf("Slurm job %s is pending (%s)", info.ID, info.Reason)
		if info.Reason == "None" || info.Reason == "" {
			msg = fmt.Sprintf("Slurm job %s is queued", info.ID)
		}
		if info.running() {
			st.Node = info.Nodes
			msg = fmt.Sprintf("Slurm job %s is running on %s; waiting for the server to report its address", info.ID, info.Nodes)
		}
		if msg != said {
			said = msg
			progress(msg)
		}
		return nil
	}
	for {
		if err := look(); err != nil {
			return State{}, err
		}
		select {
		case <-ctx.Done():
			if last.State == "" || !last.running() {
				reason := last.Reason
				if reason == "" {
					reason = "no answer from squeue"
				}
				return State{}, fmt.Errorf("Slurm job %s was still pending (%s) when spawner.start_timeout ran out: %w", st.JobID, reason, ctx.Err())
			}
			return State{}, fmt.Errorf("Slurm job %s runs on %s but its server did not report its address before spawner.start_timeout ran out "+
				"(the job's output is in %s on %s): %w", st.JobID, last.Nodes, slurmOutputHint(last), last.Nodes, ctx.Err())
		case rep := <-reports:
			err := s.checkReport(ctx, st.JobID, userName, rep)
			rep.Reply <- err
			if err != nil {
				s.log.Warn("refused an address report", "user", userName, "job", st.JobID, "host", rep.Host, "port", rep.Port, "err", err)
				continue
			}
			info, _, _ := s.jobs.get(ctx, st.JobID)
			st.Host, st.Port, st.Node = rep.Host, rep.Port, info.Nodes
			progress(fmt.Sprintf("Slurm job %s runs on %s; the server listens at %s:%d", st.JobID, info.Nodes, rep.Host, rep.Port))
			return st, nil
		case <-tick.C:
		}
	}
}

// slurmOutputHint names the job's output file for messages.
func slurmOutputHint(j jobInfo) string {
	return "~/.hubd-slurm*.log (" + j.User + "'s home)"
}

// checkReport accepts a report whose host is the running job's node (its
// name, NodeAddr or NodeHostName) and whose port is a port.
func (s *Slurm) checkReport(ctx context.Context, jobID, userName string, rep AddressReport) error {
	if rep.Port < 1 || rep.Port > 65535 {
		return fmt.Errorf("port %d is not a TCP port", rep.Port)
	}
	// A report comes once the job runs, possibly before this poller saw
	// it: ask again rather than use an older answer.
	var info jobInfo
	for {
		i, found, err := s.jobs.get(ctx, jobID)
		if err != nil {
			return fmt.Errorf("cannot check the address against Slurm: %w", err)
		}
		if !found || !i.active() {
			return fmt.Errorf("job %s is not running", jobID)
		}
		if i.running() && i.Nodes != "" {
			info = i
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.o.PollEvery / 5):
		}
	}
	if info.User != userName {
		return fmt.Errorf("job %s belongs to %s, not %s", jobID, info.User, userName)
	}
	addrs, err := s.addrs(ctx, info.Nodes)
	if err != nil {
		return fmt.Errorf("cannot check the address against Slurm: %w", err)
	}
	if !slices.Contains(addrs, rep.Host) {
		return fmt.Errorf("%s is not an address of the job's node %s (Slurm knows it as %s)", names.Quote(rep.Host), info.Nodes, strings.Join(addrs, ", "))
	}
	return nil
}

// nodeAddresses lists the names a job's nodes go by: node name, NodeAddr
// and NodeHostName of each.
func (s *Slurm) nodeAddresses(ctx context.Context, nodes string) ([]string, error) {
	env := []string{"PATH=" + systemPath, "LANG=C.UTF-8"}
	list := []string{nodes}
	if strings.ContainsAny(nodes, "[,") {
		out, err := slurmCommand(ctx, env, "", s.o.Scontrol, "show", "hostnames", nodes)
		if err != nil {
			return nil, err
		}
		list = strings.Fields(out)
	}
	var addrs []string
	for _, n := range list {
		out, err := slurmCommand(ctx, env, "", s.o.Scontrol, "--oneliner", "show", "node", n)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, n)
		for _, f := range strings.Fields(out) {
			if v, ok := strings.CutPrefix(f, "NodeAddr="); ok {
				addrs = append(addrs, v)
			}
			if v, ok := strings.CutPrefix(f, "NodeHostName="); ok {
				addrs = append(addrs, v)
			}
		}
	}
	return addrs, nil
}

// Poll implements Spawner with squeue, shared by every server polled at
// about the same time. A job of another user (a recycled id in a state
// restored from elsewhere) counts as not running.
func (s *Slurm) Poll(ctx context.Context, userName string, st State) (Status, error) {
	if err := s.checkState(userName, st); err != nil {
		return Status{}, err
	}
	info, found, err := s.jobs.get(ctx, st.JobID)
	switch {
	case err != nil:
		return Status{}, err
	case !found:
		return Status{ExitCode: -1, Reason: fmt.Sprintf("Slurm job %s is no longer known to Slurm (it ended a while ago)", st.JobID)}, nil
	case info.User != userName:
		return Status{ExitCode: -1, Reason: fmt.Sprintf("Slurm job %s belongs to %s", st.JobID, info.User)}, nil
	case info.active():
		detail := info.State
		if info.Nodes != "" {
			detail += " on " + info.Nodes
		}
		return Status{Running: true, ExitCode: -1, Detail: detail}, nil
	}
	return Status{ExitCode: -1, Reason: info.describe()}, nil
}

// Stop implements Spawner: scancel (as the member, or as root for a job
// squeue says is theirs), then wait until the job is over, its processes
// killed. Slurm sends SIGTERM, then SIGKILL after its KillWait; with
// proctrack/cgroup nothing of the job survives, kernels that left the
// server's session included.
func (s *Slurm) Stop(ctx context.Context, userName string, st State, timeout time.Duration) error {
	if err := s.checkState(userName, st); err != nil {
		return err
	}
	info, found, err := s.jobs.get(ctx, st.JobID)
	if err != nil {
		return fmt.Errorf("stop %s's server: %w", userName, err)
	}
	if !found || !info.active() {
		return nil
	}
	if info.User != userName {
		s.log.Warn("not cancelling: the recorded job is not the user's", "user", userName, "job", st.JobID, "owner", info.User)
		return nil
	}
	if timeout <= 0 {
		timeout = s.o.StopTimeout
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout+slurmTimeout+killWait)
		defer cancel()
	}
	if s.o.Submit == SlurmSubmitRoot {
		err = scancel(ctx, s.o.Scancel, st.JobID, []string{"PATH=" + systemPath, "LANG=C.UTF-8"})
	} else {
		var diag bytes.Buffer
		_, err = s.o.Sudo.call(ctx, userName, helperRequest{V: protocolVersion, Action: actionSlurmCancel, User: userName,
			Program: s.o.Scancel, JobID: st.JobID}, &diag, diag.String)
		err = withOutput(err, diag.String())
	}
	if err != nil {
		return fmt.Errorf("cancel %s's Slurm job %s: %w", userName, st.JobID, err)
	}
	for {
		info, found, err := s.jobs.get(ctx, st.JobID)
		if err == nil && (!found || !info.active()) {
			s.log.Info("job cancelled", "user", userName, "job", st.JobID, "state", info.State)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Slurm job %s of %s is still %s after scancel: %w", st.JobID, userName, info.State, ctx.Err())
		case <-time.After(s.o.PollEvery / 2):
		}
	}
}

func (s *Slurm) checkState(userName string, st State) error {
	if st.Kind != KindSlurm {
		return fmt.Errorf("server state of kind %q given to the Slurm spawner", st.Kind)
	}
	if err := names.Check(userName); err != nil {
		return fmt.Errorf("user %s: %w", names.Quote(userName), err)
	}
	if !jobIDRE.MatchString(st.JobID) {
		return fmt.Errorf("server state names job %s, which is not a Slurm job id", names.Quote(st.JobID))
	}
	return nil
}
