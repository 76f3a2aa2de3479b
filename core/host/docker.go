package host

import (
	"context"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// DockerChecker is what doctor asks of the docker spawner.
type DockerChecker interface {
	Host() string
	Ping(ctx context.Context) (string, error)
	CheckImage(ctx context.Context, image string) error
}

// checkDocker checks the engine answers, holds every image the hub's
// starts and profiles use, and that its socket is the hub account's to use
// and nobody else's: the socket is root's equivalent.
func (o Options) checkDocker(ctx context.Context, d DockerChecker) []Finding {
	engine := Finding{Check: "docker engine " + d.Host(), Level: OK}
	v, err := d.Ping(ctx)
	if err != nil {
		engine.Level, engine.Message = Fail, err.Error()
		engine.Fix = "start the engine (systemctl start docker), or set spawner.docker.host in " + o.ConfigPath
		return []Finding{engine, o.checkDockerSocket(d.Host())}
	}
	engine.Message = "answers: Engine " + v
	out := []Finding{engine}
	for _, img := range o.Config.Spawner.DockerImages() {
		f := Finding{Check: "docker image " + img, Level: OK, Message: "on the engine"}
		if err := d.CheckImage(ctx, img); err != nil {
			f.Level, f.Message, f.Fix = Fail, err.Error(), "docker pull "+img
		}
		out = append(out, f)
	}
	return append(out, o.checkDockerSocket(d.Host()))
}

// checkDockerSocket: a socket others may write makes every local user
// root; the hub account must be root or in the socket's group.
func (o Options) checkDockerSocket(host string) Finding {
	path, ok := strings.CutPrefix(host, "unix://")
	f := Finding{Check: "docker socket " + path, Level: OK}
	if !ok {
		f.Check, f.Message = "docker socket", host+" is not a unix socket: protect it with TLS (see the docker spawner's page)"
		f.Level = Warn
		return f
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		f.Level, f.Message, f.Fix = Fail, err.Error(), "start the engine, or set spawner.docker.host in "+o.ConfigPath
		return f
	}
	if st.Mode&0o002 != 0 {
		f.Level, f.Message, f.Fix = Fail, fmt.Sprintf("mode %04o: every local user can use it, and so is root", st.Mode&0o7777), "chmod o-rw "+path
		return f
	}
	group := strconv.Itoa(int(st.Gid))
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	if o.HubUser == "root" {
		f.Message = fmt.Sprintf("mode %04o, group %s; the hub runs as root", st.Mode&0o7777, group)
		return f
	}
	u, err := user.Lookup(o.HubUser)
	if err != nil {
		f.Level, f.Message, f.Fix = Fail, "no hub account "+o.HubUser, o.SetupCommand()
		return f
	}
	in, err := inGroup(u, group)
	if err != nil || !in || st.Mode&0o060 != 0o060 {
		f.Level = Fail
		f.Message = fmt.Sprintf("mode %04o, group %s: the hub account %s cannot use it", st.Mode&0o7777, group, o.HubUser)
		f.Fix = fmt.Sprintf("usermod -aG %s %s && systemctl restart %s (the group is root's equivalent)", group, o.HubUser, o.Unit())
		return f
	}
	f.Message = fmt.Sprintf("mode %04o; the hub account %s is in group %s, which is root's equivalent", st.Mode&0o7777, o.HubUser, group)
	return f
}
