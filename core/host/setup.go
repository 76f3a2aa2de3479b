package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Status is what happened to one step.
type Status string

// Step outcomes, as printed.
const (
	Unchanged   Status = "unchanged"
	Changed     Status = "changed"
	WouldChange Status = "would change"
	Failed      Status = "FAILED"
	NotDone     Status = "not done"
)

// Result is one step's outcome.
type Result struct {
	Step    string
	Status  Status
	Changes []Change
	Err     error
}

// Setup checks every step and applies those that differ, printing one line
// per step as it goes. With dryRun it only prints what would change. It
// stops at the first failure and then prints what was done and what not.
// The record of what was created is saved even after a failure, so a
// later uninstall knows about it.
func Setup(ctx context.Context, o Options, dryRun bool, out io.Writer) ([]Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	rec, err := LoadRecord(o.RecordFile())
	if err != nil {
		return nil, err
	}
	if rec.Name != "" && (rec.Name != o.Name || rec.HubUser != o.HubUser) {
		return nil, fmt.Errorf("%s was set up with --name %s --hub-user %s: run setup with those, or `hubd uninstall --purge` first",
			o.ConfigPath, rec.Name, rec.HubUser)
	}
	rec.Name, rec.HubUser = o.Name, o.HubUser
	modeChanged := rec.Packaged != o.Packaged
	rec.Packaged = o.Packaged
	steps := o.Steps(&rec)
	results := make([]Result, 0, len(steps))
	var failure error
	for i, s := range steps {
		r := runStep(ctx, s, dryRun, out)
		results = append(results, r)
		if r.Err != nil {
			failure = fmt.Errorf("%s: %w", s.Name, r.Err)
			for _, rest := range steps[i+1:] {
				results = append(results, Result{Step: rest.Name, Status: NotDone})
			}
			break
		}
	}
	if !dryRun && (modeChanged || slices.ContainsFunc(results, func(r Result) bool { return r.Status == Changed || r.Status == Failed })) {
		if _, err := rec.save(o.RecordFile()); err != nil {
			failure = errors.Join(failure, err)
		}
	}
	summarize(out, o, results, dryRun, failure)
	return results, failure
}

// runStep checks one step, applies it unless dryRun and prints its line.
func runStep(ctx context.Context, s Step, dryRun bool, out io.Writer) Result {
	r := Result{Step: s.Name}
	all, err := s.Check(ctx)
	if err != nil {
		r.Status, r.Err = Failed, err
		fmt.Fprintf(out, "%-12s  %s: %v\n", r.Status, s.Name, err)
		return r
	}
	var notes []Change
	for _, c := range all {
		// A step without Apply (a file the package owns) only informs.
		if c.Warn || s.Apply == nil {
			notes = append(notes, c)
		} else {
			r.Changes = append(r.Changes, c)
		}
	}
	switch {
	case len(r.Changes) == 0:
		r.Status = Unchanged
	case dryRun:
		r.Status = WouldChange
	default:
		if s.Slow {
			fmt.Fprintf(out, "%-12s  %s (this takes a while)\n", "working", s.Name)
		}
		if err := s.Apply(ctx); err != nil {
			r.Status, r.Err = Failed, err
		} else {
			r.Status = Changed
		}
	}
	fmt.Fprintf(out, "%-12s  %s\n", r.Status, s.Name)
	for _, c := range r.Changes {
		fmt.Fprintf(out, "%-12s    - %s\n", "", c.What)
	}
	for _, c := range notes {
		fmt.Fprintf(out, "%-12s    note: %s (`%s`)\n", "", c.What, c.Fix)
	}
	if r.Err != nil {
		fmt.Fprintf(out, "%-12s    error: %v\n", "", r.Err)
	}
	return r
}

func summarize(out io.Writer, o Options, results []Result, dryRun bool, failure error) {
	count := map[Status]int{}
	var done, notDone []string
	for _, r := range results {
		count[r.Status]++
		switch r.Status {
		case Changed:
			done = append(done, r.Step)
		case Failed, NotDone:
			notDone = append(notDone, r.Step)
		}
	}
	fmt.Fprintln(out)
	switch {
	case failure != nil:
		fmt.Fprintf(out, "setup stopped: %v\n", failure)
		fmt.Fprintf(out, "done (%d): %s\n", len(done), listOrNone(done))
		fmt.Fprintf(out, "not done (%d): %s\n", len(notDone), listOrNone(notDone))
		fmt.Fprintf(out, "no file was left half-written. Fix the problem above and run `%s` again: it keeps what is done and continues.\n", o.SetupCommand())
	case count[Changed] == 0 && count[WouldChange] == 0:
		fmt.Fprintf(out, "nothing to do: all %d steps unchanged\n", len(results))
	case dryRun:
		fmt.Fprintf(out, "dry run: %d steps would change, %d unchanged; nothing was changed. Run `%s` to apply.\n",
			count[WouldChange], count[Unchanged], o.SetupCommand())
	default:
		fmt.Fprintf(out, "setup done: %d steps changed, %d unchanged.\n", count[Changed], count[Unchanged])
		fmt.Fprintf(out, "next: review %s, add members with `%s`, check with `hubd doctor%s`",
			o.ConfigPath, o.addMember("USER"), o.configFlag())
		switch {
		case !o.Systemd:
			fmt.Fprintf(out, ", then start the hub with `%s` (this machine does not run systemd)", o.serveCommand())
		case !o.Packaged: // the package enables and starts the unit itself
			fmt.Fprintf(out, ", then start the hub with `systemctl enable --now %s`", o.Unit())
		}
		fmt.Fprintln(out, ".")
	}
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "nothing"
	}
	return strings.Join(l, "; ")
}

// Executable is the running hubd binary, the one setup installs as the
// spawn helper.
func Executable() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the running hubd binary: %w", err)
	}
	return filepath.EvalSymlinks(p)
}
