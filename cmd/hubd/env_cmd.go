package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/daemon"
	"github.com/hubd/hubd/core/sharedenv"
)

// geteuid is os.Geteuid; tests replace it to see the refusal non-root
// users get.
var geteuid = os.Geteuid

func cmdEnv(ctx context.Context, e *env, args []string) int {
	actions := []action{
		{"init", envInit},
		{"check", envCheck},
		{"repair", envRepair},
		{"status", envStatus},
	}
	return e.dispatch(ctx, "env", `Usage: hubd env <action> [--config PATH] [flags]

Actions:
  init    create the shared environment (or bring it back in shape) and register its kernel (root)
  check   find files and directories members cannot share; exit 1 when there are any
  repair  fix what check finds: group, group write, setgid, default ACL (root)
  status  Python version, packages, size, kernel and health

The environment is shared_env.path (default /opt/hubd/env), owned by the
members group auth.allowed_group. Run `+"`hubd env <action> --help`"+` for an action's flags.
`, actions, args)
}

// envOpen parses an action's flags, loads the configuration and returns the
// options of the environment it names. done reports that the action ends
// with code.
func envOpen(e *env, name, about string, asRoot bool, args []string, examples *int) (sharedenv.Options, config.Config, int, bool) {
	fs := e.flags("env "+name, "env "+name+" [--config PATH]", about)
	if examples != nil {
		fs.IntVar(examples, "examples", 5, "example paths to show per kind of problem")
	}
	if code, done := parse(fs, args); done {
		return sharedenv.Options{}, config.Config{}, code, true
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return sharedenv.Options{}, config.Config{}, 2, true
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return sharedenv.Options{}, cfg, e.fail("%v", err), true
	}
	if !cfg.SharedEnv.Enabled {
		return sharedenv.Options{}, cfg, e.fail("the shared environment is turned off (shared_env.enabled = false in %s): set it to true first", source(cfg)), true
	}
	if asRoot && geteuid() != 0 {
		return sharedenv.Options{}, cfg, e.fail("hubd env %s changes group ownership and permissions, so it must run as root: run `sudo hubd env %s`", name, name), true
	}
	return sharedenv.OptionsFromConfig(cfg, slog.New(daemon.LogHandler(e.stderr, logLevel(cfg.Hub.LogLevel)))), cfg, 0, false
}

func source(cfg config.Config) string {
	if cfg.Source == "" {
		return "the defaults"
	}
	return cfg.Source
}

func envInit(ctx context.Context, e *env, args []string) int {
	opts, cfg, code, done := envOpen(e, "init", `
Create the shared Python environment at shared_env.path: a venv owned by
the members group, every directory setgid with a default ACL granting the
group rwx, every file group-writable; then register it as the Jupyter
kernel shared_env.kernel_display_name. An existing environment is kept and
repaired. Runs as root.`, true, args, nil)
	if done {
		return code
	}
	opts.Progress = func(s string) { fmt.Fprintf(e.stdout, "… %s\n", s) }
	shared := sharedenv.New(opts)
	res, err := shared.Init(ctx)
	if err != nil {
		return e.fail("%v", err)
	}
	what := "kept the existing environment"
	if res.Created {
		what = "created"
	}
	fmt.Fprintf(e.stdout, "shared environment %s: %s\n", cfg.SharedEnv.Path, what)
	printReport(e.stdout, res.Report, true)
	kernel := "unchanged"
	if res.KernelWritten {
		kernel = "written"
	}
	fmt.Fprintf(e.stdout, "kernel %q: %s (%s)\n", cfg.SharedEnv.KernelDisplayName, shared.KernelSpecPath(), kernel)
	if !res.IPyKernel {
		fmt.Fprintf(e.stdout, "ipykernel is missing, so the kernel will not start: run `%s/bin/pip install ipykernel`\n", cfg.SharedEnv.Path)
	}
	fmt.Fprintf(e.stdout, "spawned servers get %s first on PATH\n", shared.PathPrefix())
	return leftOver(e.stdout, res.Report)
}

// leftOver ends init and repair: exit 1, with what to do, when the repair
// pass could not fix everything (hard links, I/O errors).
func leftOver(w io.Writer, rep sharedenv.Report) int {
	if rep.Healthy() {
		return 0
	}
	fmt.Fprintln(w, "some problems are left: see the paths above, fix them by hand, then run `hubd env check`")
	return 1
}

func envCheck(ctx context.Context, e *env, args []string) int {
	var examples int
	opts, cfg, code, done := envOpen(e, "check", `
Walk the shared environment and report what members cannot share: files
not group-writable, wrong group, directories without setgid or without a
default ACL (typical causes: cp or mv from elsewhere, installs as root).
Changes nothing; works as any user who can read the tree. Exits 1 when
something needs `+"`hubd env repair`.", false, args, &examples)
	if done {
		return code
	}
	rep, err := sharedenv.New(opts).Check(ctx, examples)
	if err != nil {
		return e.fail("%v", err)
	}
	printReport(e.stdout, rep, false)
	if rep.Healthy() {
		return 0
	}
	if rep.Problems[sharedenv.Unreadable] > 0 {
		fmt.Fprintf(e.stdout, "some directories could not be read: run the check as root or as a member of %s\n", cfg.Auth.AllowedGroup)
	}
	fmt.Fprintln(e.stdout, "run `sudo hubd env repair` to fix it")
	return 1
}

func envRepair(ctx context.Context, e *env, args []string) int {
	var examples int
	opts, _, code, done := envOpen(e, "repair", `
Fix what `+"`hubd env check`"+` reports: set the members group, give the group
read and write on files (and execute where the owner has it), rwx and
setgid on directories, and the default ACL. Symlinks are never followed or
changed; files with several hard links are reported, not changed. Runs as
root.`, true, args, &examples)
	if done {
		return code
	}
	rep, err := sharedenv.New(opts).Repair(ctx, examples)
	if err != nil {
		return e.fail("%v", err)
	}
	printReport(e.stdout, rep, true)
	return leftOver(e.stdout, rep)
}

func envStatus(ctx context.Context, e *env, args []string) int {
	var examples int
	opts, cfg, code, done := envOpen(e, "status", `
Show the shared environment at a glance: Python version, whether ipykernel
imports, packages installed in it, size, the registered kernel, ACL
support and the result of a check.`, false, args, &examples)
	if done {
		return code
	}
	st, err := sharedenv.New(opts).Status(ctx, examples)
	if err != nil {
		return e.fail("%v", err)
	}
	if !st.Exists {
		return e.fail("there is no environment at %s yet: run `sudo hubd env init`", st.Path)
	}
	ipykernel := "ipykernel imports"
	if !st.IPyKernel {
		ipykernel = "ipykernel missing: the kernel will not start"
	}
	kernel := cfg.SharedEnv.KernelDisplayName + " at " + st.KernelSpec
	if !st.KernelRegistered {
		kernel = "not registered (" + st.KernelSpec + "): run `sudo hubd env init`"
	}
	h := st.Health
	fmt.Fprintf(e.stdout, "path        %s (group %s)\n", st.Path, h.Group)
	fmt.Fprintf(e.stdout, "python      %s, %s\n", st.PythonVersion, ipykernel)
	fmt.Fprintf(e.stdout, "packages    %d installed in the environment\n", st.Packages)
	fmt.Fprintf(e.stdout, "size        %s in %d files and %d directories\n", backups.HumanSize(h.Bytes), h.Files, h.Dirs)
	fmt.Fprintf(e.stdout, "kernel      %s\n", kernel)
	fmt.Fprintf(e.stdout, "POSIX ACLs  %s\n", yesNo(h.ACLSupported, "yes", "no: the filesystem refuses them; setgid and group modes only"))
	fmt.Fprintf(e.stdout, "health      %s\n", yesNo(h.Healthy(), "ok",
		fmt.Sprintf("%d problems, %d errors: run `hubd env check` for details", h.Remaining(), h.Errors)))
	return 0
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// printReport prints the counts of a walk with example paths per kind;
// with fixed it reports repairs rather than problems.
func printReport(w io.Writer, rep sharedenv.Report, fixed bool) {
	fmt.Fprintf(w, "%s (group %s): %d files, %d directories, %d symlinks, %s; POSIX ACLs: %s\n",
		rep.Path, rep.Group, rep.Files, rep.Dirs, rep.Symlinks, backups.HumanSize(rep.Bytes), yesNo(rep.ACLSupported, "yes", "not supported"))
	if rep.Drift() == 0 && rep.Errors == 0 {
		fmt.Fprintf(w, "no drift: everything is shared with group %s\n", rep.Group)
		return
	}
	for _, k := range sharedenv.Kinds() {
		n := rep.Problems[k]
		if n == 0 {
			continue
		}
		if fixed {
			fmt.Fprintf(w, "  %s: %d found, %d fixed\n", k.Description(), n, rep.Fixed[k])
		} else {
			fmt.Fprintf(w, "  %s: %d\n", k.Description(), n)
		}
		for _, p := range rep.Examples[k] {
			fmt.Fprintf(w, "      %s\n", p)
		}
	}
	if rep.Errors > 0 {
		fmt.Fprintf(w, "  errors: %d\n", rep.Errors)
		for _, p := range rep.ErrorExamples {
			fmt.Fprintf(w, "      %s\n", p)
		}
	}
}
