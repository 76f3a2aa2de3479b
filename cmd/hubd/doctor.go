package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hubd/hubd/core/host"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/spawner"
)

func cmdDoctor(ctx context.Context, e *env, args []string) int {
	fs := e.flags("doctor", "doctor [--user NAME] [--json] [--config PATH]", `
Check everything setup installs and what only a working host shows: the
database schema against this hubd, that the hub user can read /etc/shadow,
the sudo rule (run as the hub user, without a password), the single-user
server (run as a member), Slurm when profiles use it (the controller, the
queue, the profiles' partitions), the ports, the admin socket and the age of
the newest backup. When accounts also come from a directory (LDAP, SSSD):
its daemon, whether the directory answers, nslcd's time limits, and the
hub's groups resolving with their members, each lookup timed. With the
docker spawner: the engine, the image and who may use the engine's socket.
With --user, also log that user in through PAM (the password is asked on
the terminal, or read from stdin when it is not one).

Each finding is one line, OK, WARN or FAIL, with the command that fixes it.
The exit code is 1 when anything FAILs. Run as root.`)
	names := nameFlags(fs)
	userName := fs.String("user", "", "try a PAM login as `USER` and use them for the sudo and server checks")
	asJSON := fs.Bool("json", false, "print the findings as a JSON array")
	if code, done := parse(fs, args); done {
		return code
	}
	if os.Geteuid() != 0 {
		return e.fail("doctor runs checks as the hub user and as a member, so it must run as root: run `sudo hubd doctor`")
	}
	o, err := e.hostOptions(names)
	if err != nil {
		if *asJSON {
			return e.printJSON([]host.Finding{{Check: "configuration", Level: host.Fail, Message: err.Error(), Fix: "hubd config check" + configArg(e)}}, 1)
		}
		return e.fail("%v\nfix the file (`hubd config check%s` lists every problem), then run doctor again", err, configArg(e))
	}
	o.Binary, err = hubdBinary(o)
	if err != nil {
		return e.fail("%v", err)
	}
	d := host.DoctorOptions{User: *userName, Now: time.Now()}
	if o.Config.Spawner.Kind == spawner.KindDocker {
		dk, err := server.NewDocker(o.Config, nil)
		if err != nil {
			return e.fail("%v", err)
		}
		defer dk.Close()
		d.Docker = dk
	}
	if d.User != "" {
		if d.Password, err = readPassword(e, "Password for "+d.User+": "); err != nil {
			return e.fail("read the password: %v", err)
		}
	}
	findings := host.Doctor(ctx, o, d)
	code := 0
	if host.AnyFailed(findings) {
		code = 1
	}
	if *asJSON {
		return e.printJSON(findings, code)
	}
	host.PrintFindings(e.stdout, findings)
	return code
}

func configArg(e *env) string {
	if e.configFlag == "" {
		return ""
	}
	return " --config " + e.configFlag
}

func (e *env) printJSON(v any, code int) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return e.fail("write JSON: %v", err)
	}
	return code
}

// readPassword asks on the terminal without echo, or reads one line when
// stdin is not a terminal (scripts and tests pipe it in).
func readPassword(e *env, prompt string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok {
		if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			fmt.Fprint(e.stderr, prompt)
			defer fmt.Fprintln(e.stderr)
			quiet := *t
			quiet.Lflag &^= unix.ECHO
			if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &quiet); err != nil {
				return "", err
			}
			defer unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
		}
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
