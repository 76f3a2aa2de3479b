package main

import (
	"context"

	"github.com/hubd/hubd/core/spawner"
)

// cmdSpawnHelper is the mediator the sudo spawner runs as a member:
// `sudo -n -u <member> /usr/local/bin/hubd spawn-helper`. It reads no
// configuration: everything, secrets included, arrives in the request on
// stdin, because sudo resets the environment and argv is world-readable.
func cmdSpawnHelper(ctx context.Context, e *env, args []string) int {
	fs := e.flags("spawn-helper", "spawn-helper < request.json", `
Start, stop or check a user's single-user server. The hub runs this as the
member, through the one sudoers rule it installs:

    hub ALL=(%jupyterhub) NOPASSWD: /usr/local/bin/hubd spawn-helper

It reads one JSON request on stdin and writes JSON replies on stdout:

    {"v":2,"action":"start","user":"alice","command":["/usr/bin/jupyterhub-singleuser"],
     "args":[],"env":{"JUPYTERHUB_API_TOKEN":"…"},"working_dir":"~","path":"/usr/bin:/bin",
     "port":41234}
    {"v":2,"action":"stop","user":"alice","pid":1234,"pid_start":567890,"timeout_ms":10000}
    {"v":2,"action":"status","user":"alice","pid":1234,"pid_start":567890}
    {"v":2,"action":"reclaim","user":"alice","timeout_ms":10000,
     "env":{"JUPYTERHUB_API_URL":"http://127.0.0.1:8081/hub/api","JUPYTERHUB_USER":"alice"}}
    {"v":2,"action":"slurm-submit","user":"alice","program":"/usr/bin/sbatch","script":"…"}
    {"v":2,"action":"slurm-cancel","user":"alice","program":"/usr/bin/scancel","job_id":"42"}

    {"ok":true,"pid":1234,"pid_start":567890,"running":true}
    {"ok":false,"error":"…"}

start answers once the server runs and then watches it while the hub keeps
stdin open, writing a second line if it exits ({"exited":true,"exit_code":1}).
reclaim stops the member's servers whose environment holds every pair of
"env": a server a hub crash left unrecorded.

stderr is the server's log file: the helper's diagnostics and the started
server's output go there. The helper refuses to run as root or as a system
account, and signals only processes of its own uid whose start time matches.
No configuration file is read; --config is ignored.

To check the sudoers rule as the hub account, run `+"`hubd doctor`"+`.`)
	if code, done := parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return e.fail("spawn-helper takes no arguments (the request comes on stdin); see `hubd spawn-helper --help`")
	}
	return spawner.RunHelper(ctx, e.stdin, e.stdout, e.stderr)
}
