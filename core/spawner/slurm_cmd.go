package spawner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The Slurm commands hubd runs: sbatch and scancel as the member (in the
// spawn helper) or as root with --uid/--gid, squeue and scontrol as the
// hub. Each is bounded: with the controller down they retry for about
// ten seconds before they fail.

// slurmTimeout bounds one Slurm command.
const slurmTimeout = 30 * time.Second

// jobIDRE is what a job id looks like (no array or heterogeneous jobs:
// the spawner submits plain batch jobs).
var jobIDRE = regexp.MustCompile(`^[0-9]{1,12}$`)

// slurmCommand runs a Slurm command with stdin and returns its trimmed
// stdout; its error carries Slurm's own complaint (stderr's lines
// without the "prog: error: " prefix).
func slurmCommand(ctx context.Context, env []string, stdin string, argv ...string) (string, error) {
	if !filepath.IsAbs(argv[0]) {
		return "", fmt.Errorf("%s is not an absolute path: set the spawner.slurm paths to absolute ones", argv[0])
	}
	ctx, cancel := context.WithTimeout(ctx, slurmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = "/"
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &stdout, n: maxReply}
	cmd.Stderr = &limitedWriter{w: &stderr, n: 8 << 10}
	err := cmd.Run()
	if err != nil {
		msg := slurmComplaint(filepath.Base(argv[0]), stderr.String())
		if ctx.Err() != nil {
			msg = fmt.Sprintf("no answer within %s", slurmTimeout)
		}
		if msg == "" {
			msg = err.Error()
		}
		return "", &slurmError{prog: filepath.Base(argv[0]), msg: msg, err: err}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// slurmError is a Slurm command that failed, with what it said.
type slurmError struct {
	prog, msg string
	err       error
}

func (e *slurmError) Error() string {
	msg := e.prog + " failed: " + e.msg
	if strings.Contains(e.msg, "Unable to contact slurm controller") {
		msg += " (is slurmctld running? `sinfo` and `hubd doctor` check it)"
	}
	return msg
}

func (e *slurmError) Unwrap() error { return e.err }

// slurmComplaint joins what a Slurm command wrote to stderr into one
// line, without the "sbatch: error: " prefixes.
func slurmComplaint(prog, stderr string) string {
	var parts []string
	for line := range strings.Lines(stderr) {
		line = strings.TrimSpace(line)
		for _, p := range []string{prog + ": error: ", prog + ": fatal: ", prog + ": "} {
			line = strings.TrimPrefix(line, p)
		}
		if line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

// sbatchEnv is the environment sbatch and scancel run with in the helper:
// the member's identity and a system PATH, nothing of the hub's.
func sbatchEnv(acct account) []string {
	return []string{"PATH=" + systemPath, "LANG=C.UTF-8", "HOME=" + acct.home, "USER=" + acct.name, "LOGNAME=" + acct.name}
}

// sbatch submits script (on stdin, so the token in it never reaches a
// command line) and returns the job id. --export=NONE: the job starts from
// the member's login environment and the script's exports, never from
// whoever submitted it. args are more options (--uid and --gid as root).
func sbatch(ctx context.Context, program, script string, env []string, args ...string) (string, error) {
	if script == "" {
		return "", errors.New("no job script")
	}
	argv := append([]string{program, "--parsable", "--export=NONE"}, args...)
	out, err := slurmCommand(ctx, env, script, argv...)
	if err != nil {
		return "", err
	}
	id, _, _ := strings.Cut(out, ";") // "id;cluster" on a federation
	if !jobIDRE.MatchString(id) {
		return "", fmt.Errorf("sbatch answered %q, not a job id", out)
	}
	return id, nil
}

// scancel cancels a job; Slurm only lets the job's owner (or an operator,
// or root) do that. scancel succeeds for a job that already ended.
func scancel(ctx context.Context, program, jobID string, env []string) error {
	if !jobIDRE.MatchString(jobID) {
		return fmt.Errorf("job id %q is not a number", jobID)
	}
	_, err := slurmCommand(ctx, env, "", program, jobID)
	return err
}
