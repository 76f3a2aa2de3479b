package spawner

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/hubd/hubd/core/names"
)

// Labels every server container carries: they say whose server it is, so
// that a hub never stops or adopts a container that is not the one it
// recorded (a name reused by hand, another hub on the same engine).
const (
	LabelUser   = "org.hubd.user"
	LabelServer = "org.hubd.server"
	// LabelHub is the container name prefix of the hub that made it.
	LabelHub = "org.hubd.hub"
)

// containerPort is where the server listens inside its container; the
// engine publishes it on a free port of the host's loopback.
const containerPort = 8888

// DockerOptions configures the docker spawner (config spawner.docker).
type DockerOptions struct {
	// Host is the engine's address; "" is $DOCKER_HOST, else the
	// engine's default socket.
	Host  string
	Image string
	// Network is the bridge network containers join (default "bridge").
	Network string
	// HubIP is where containers reach the hub's API; "" is the network's
	// gateway, which the hub listens on (see HubAddr). HubPort is the
	// port, the internal listener's.
	HubIP   string
	HubPort int
	// NamePrefix starts every container name (default "hubd").
	NamePrefix      string
	MemoryMax       int64 // bytes; 0 = none
	CPUQuotaPercent int   // 150 = one and a half CPUs; 0 = none
	PidsMax         int   // 0 = none
	ReadOnlyRoot    bool
	// Mounts are further binds, "/host:/container[:ro]".
	Mounts []string
	// SharedEnv is the shared Python environment's directory, mounted at
	// the same path ("" = none).
	SharedEnv string
	// StopTimeout is the SIGTERM grace when Stop is given none.
	StopTimeout time.Duration
	Logger      *slog.Logger
}

// Docker runs each server in its own container through the Docker Engine
// API: as the member's uid and gid with their supplementary groups, the
// home bind-mounted at the same path, no new privileges, every capability
// dropped, with memory, CPU and pids limits. The server's port is
// published on 127.0.0.1 only; the hub never reaches a container by its
// bridge address.
//
// The engine's socket is root's equivalent: the hub that uses this
// spawner runs as root or in the docker group. The API token travels in
// the container's environment, which `docker inspect` shows to whoever
// may use the socket, and to no one else.
type Docker struct {
	o      DockerOptions
	log    *slog.Logger
	api    *client.Client
	mounts []Mount

	mu      sync.Mutex
	hubIP   string
	onHub   func(addr string) error
	follows map[string]context.CancelFunc // container id → its log follower
	cpu     map[string]cpuSample          // container id → its last CPU sample
}

// OnHubAddr registers what HubAddr calls with the address once it knows
// it: the hub opens its listener for containers there.
func (d *Docker) OnHubAddr(f func(addr string) error) {
	d.mu.Lock()
	d.onHub = f
	d.mu.Unlock()
}

var (
	_ Spawner    = (*Docker)(nil)
	_ Reclaimer  = (*Docker)(nil)
	_ Watcher    = (*Docker)(nil)
	_ Reattacher = (*Docker)(nil)
	_ Usager     = (*Docker)(nil)
)

// Mount is one bind mount of spawner.docker.mounts.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// ParseMount reads "/host:/container[:ro|:rw]".
func ParseMount(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Mount{}, fmt.Errorf("mount %q is not /host/path:/container/path[:ro]", s)
	}
	m := Mount{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return Mount{}, fmt.Errorf("mount %q: %q is neither ro nor rw", s, parts[2])
		}
	}
	for _, p := range []string{m.Source, m.Target} {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return Mount{}, fmt.Errorf("mount %q: %q is not a clean absolute path", s, p)
		}
	}
	return m, nil
}

func (m Mount) bind() string {
	b := m.Source + ":" + m.Target
	if m.ReadOnly {
		b += ":ro"
	}
	return b
}

// containerNameRE is the engine's rule for container and network names.
var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidContainerName reports whether s may be (or start) a container name.
func ValidContainerName(s string) bool { return len(s) <= 64 && containerNameRE.MatchString(s) }

// CheckDockerHost refuses an engine address the client could not use; ""
// is the default.
func CheckDockerHost(h string) error {
	if h == "" {
		return nil
	}
	u, err := client.ParseHostURL(h)
	if err != nil {
		return fmt.Errorf("%q is not an engine address", h)
	}
	switch u.Scheme {
	case "unix", "tcp", "http", "https":
		return nil
	}
	return fmt.Errorf("%q: the scheme %q is not unix, tcp or http(s)", h, u.Scheme)
}

// NewDocker checks the options and makes the engine's client. It does not
// reach the engine: an engine that is down fails the starts of docker
// servers with a clear error, and nothing else.
func NewDocker(o DockerOptions) (*Docker, error) {
	if o.Network == "" {
		o.Network = "bridge"
	}
	if o.NamePrefix == "" {
		o.NamePrefix = "hubd"
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = defaultStopTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Image == "" {
		return nil, errors.New("spawner.docker.image is empty: name the image the servers run")
	}
	if err := CheckDockerHost(o.Host); err != nil {
		return nil, fmt.Errorf("spawner.docker.host: %w", err)
	}
	if !ValidContainerName(o.NamePrefix) {
		return nil, fmt.Errorf("spawner.docker.name_prefix %q is not a container name prefix", o.NamePrefix)
	}
	if o.HubIP != "" {
		if _, err := netip.ParseAddr(o.HubIP); err != nil {
			return nil, fmt.Errorf("spawner.docker.hub_ip %q is not an IP address", o.HubIP)
		}
	}
	var mounts []Mount
	for _, s := range o.Mounts {
		m, err := ParseMount(s)
		if err != nil {
			return nil, fmt.Errorf("spawner.docker.mounts: %w", err)
		}
		mounts = append(mounts, m)
	}
	opts := []client.Opt{client.WithHostFromEnv()}
	if o.Host != "" {
		opts = []client.Opt{client.WithHost(o.Host)}
	}
	api, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Docker{
		o: o, api: api, mounts: mounts, hubIP: o.HubIP,
		log:     o.Logger.With("component", "spawner", "kind", KindDocker),
		follows: map[string]context.CancelFunc{},
		cpu:     map[string]cpuSample{},
	}, nil
}

// Close stops following logs and closes the client. Containers keep
// running.
func (d *Docker) Close() error {
	d.mu.Lock()
	for id, cancel := range d.follows {
		cancel()
		delete(d.follows, id)
	}
	d.mu.Unlock()
	return d.api.Close()
}

// Host is the engine's address as the client uses it.
func (d *Docker) Host() string { return d.api.DaemonHost() }

// engineError explains an engine that cannot be reached.
func (d *Docker) engineError(err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("the Docker Engine at %s does not answer (is dockerd running? `docker version` says more; the hub must be root or in the docker group to use its socket): %w", d.Host(), err)
	}
	return err
}

// Ping checks that the engine answers and returns its version.
func (d *Docker) Ping(ctx context.Context) (string, error) {
	v, err := d.api.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", d.engineError(err)
	}
	return v.Version + " (API " + v.APIVersion + ")", nil
}

// CheckImage fails when the image is not on the engine.
func (d *Docker) CheckImage(ctx context.Context, image string) error {
	if _, err := d.api.ImageInspect(ctx, image); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("image %s is not on the Docker Engine at %s: `docker pull %s` (or build it), or set spawner.docker.image", image, d.Host(), image)
		}
		return fmt.Errorf("image %s: %w", image, d.engineError(err))
	}
	return nil
}

// HubAddr is the host:port containers reach the hub's API at: hub_ip, or
// the gateway of the containers' network, which only the engine knows.
func (d *Docker) HubAddr(ctx context.Context) (string, error) {
	d.mu.Lock()
	ip := d.hubIP
	d.mu.Unlock()
	if ip == "" {
		res, err := d.api.NetworkInspect(ctx, d.o.Network, client.NetworkInspectOptions{})
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				return "", fmt.Errorf("network %s does not exist on the Docker Engine: create it or fix spawner.docker.network", d.o.Network)
			}
			return "", d.engineError(err)
		}
		for _, c := range res.Network.IPAM.Config {
			if c.Gateway.IsValid() && c.Gateway.Is4() {
				ip = c.Gateway.String()
				break
			}
		}
		if ip == "" {
			return "", fmt.Errorf("network %s has no IPv4 gateway for containers to reach the hub at: set spawner.docker.hub_ip", d.o.Network)
		}
		d.mu.Lock()
		d.hubIP = ip
		d.mu.Unlock()
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(d.o.HubPort)).String()
	d.mu.Lock()
	on := d.onHub
	d.mu.Unlock()
	if on != nil {
		if err := on(addr); err != nil {
			return "", err
		}
	}
	return addr, nil
}

// ContainerName is the container of a user's server:
// <prefix>-<escaped user>[-<escaped server>]. Escaping turns every byte
// but letters, digits and '.' into _xx, so the parts never run into
// each other and two users never share a name.
func (d *Docker) ContainerName(userName, server string) (string, error) {
	if err := names.Check(userName); err != nil {
		return "", fmt.Errorf("user %s: %w", names.Quote(userName), err)
	}
	name := d.o.NamePrefix + "-" + escapeContainerName(userName)
	if server != "" {
		name += "-" + escapeContainerName(server)
	}
	return name, nil
}

func escapeContainerName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

// Start implements Spawner: it creates the container (removing one of
// the same name an earlier run left), starts it, and returns with the
// published port once it runs.
func (d *Docker) Start(ctx context.Context, r Request) (State, error) {
	lg, err := beginStart(r, false)
	if err != nil {
		return State{}, err
	}
	defer lg.Close()
	name, err := d.ContainerName(r.User, r.Server)
	if err != nil {
		return State{}, startFailed(err)
	}
	image := cmp.Or(r.Resources.Docker.Image, d.o.Image)
	acct, _, err := memberAccount(r.User)
	if err != nil {
		return State{}, startFailed(err)
	}
	l, err := prepare(startRequest(r), acct)
	if err != nil {
		return State{}, startFailed(err)
	}
	t0 := time.Now()
	hub, err := d.HubAddr(ctx)
	if err != nil {
		return State{}, startFailed(err)
	}
	if err := d.CheckImage(ctx, image); err != nil {
		return State{}, startFailed(err)
	}
	cfg, host, err := d.containerConfig(r, l, acct, image, hub)
	if err != nil {
		return State{}, startFailed(err)
	}
	for _, sh := range r.Shares {
		if sh.Name == publicShare {
			if err := ensurePublicFolder(sh.Path, acct.name, acct.uid); err != nil {
				d.log.Warn("the user's folder in the public area", "user", r.User, "err", err)
			}
		}
	}
	if _, err := d.removeLeftover(ctx, name); err != nil {
		return State{}, startFailed(err)
	}
	created, err := d.api.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: host})
	if err != nil {
		return State{}, startFailed(fmt.Errorf("create container %s from %s: %w", name, image, d.engineError(err)))
	}
	for _, w := range created.Warnings {
		d.log.Warn("the engine warned about the container", "container", name, "warning", w)
	}
	st := State{Kind: KindDocker, Host: DefaultHost, Container: name, ContainerID: created.ID}
	if _, err := d.api.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		d.remove(name)
		return State{}, &StartError{Reason: fmt.Sprintf("start container %s from image %s: %v", name, image, d.engineError(err)), Err: err}
	}
	d.follow(created.ID, r.LogPath, time.Time{})
	ins, err := d.api.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		d.remove(name)
		return State{}, startFailed(fmt.Errorf("inspect container %s: %w", name, d.engineError(err)))
	}
	if !ins.Container.State.Running {
		reason, code := d.failure(ins.Container)
		out := d.output(ctx, created.ID)
		d.remove(name)
		return State{}, &StartError{Reason: reason, ExitCode: code, Output: out}
	}
	st.Port, err = publishedPort(ins.Container)
	if err != nil {
		d.remove(name)
		return State{}, startFailed(fmt.Errorf("container %s: %w", name, err))
	}
	d.log.Info("server started", "user", r.User, "server", r.Server, "container", name, "id", short(created.ID),
		"image", image, "port", st.Port, "took", time.Since(t0))
	return st, nil
}

// output is the last lines a container wrote, from the engine, for the
// error of a server that exited.
func (d *Docker) output(ctx context.Context, id string) string {
	rc, err := d.api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(tailLines)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var b strings.Builder
	_, _ = stdcopy.StdCopy(&limitedWriter{w: &b, n: tailBytes}, &limitedWriter{w: &b, n: tailBytes}, rc)
	return strings.TrimSpace(b.String())
}

func short(id string) string { return id[:min(12, len(id))] }

// publishedPort is the loopback port the engine published the server on.
func publishedPort(c container.InspectResponse) (int, error) {
	if c.NetworkSettings != nil {
		for _, b := range c.NetworkSettings.Ports[network.MustParsePort(strconv.Itoa(containerPort)+"/tcp")] {
			if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 && b.HostIP.IsLoopback() {
				return p, nil
			}
		}
	}
	return 0, fmt.Errorf("the engine did not publish port %d on 127.0.0.1", containerPort)
}

// containerConfig is the container of a request: the server's command
// and environment, the member's identity, the mounts, limits and
// hardening.
func (d *Docker) containerConfig(r Request, l launch, acct account, image, hub string) (*container.Config, *container.HostConfig, error) {
	u, err := user.Lookup(acct.name)
	if err != nil {
		return nil, nil, fmt.Errorf("look up user %s: %w", acct.name, err)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, nil, fmt.Errorf("groups of %s: %w", acct.name, err)
	}
	var groups []string
	for _, g := range gids {
		if g != u.Gid {
			groups = append(groups, g)
		}
	}
	env, err := containerEnv(l.env, hub)
	if err != nil {
		return nil, nil, err
	}
	port := network.MustParsePort(strconv.Itoa(containerPort) + "/tcp")
	labels := map[string]string{LabelUser: r.User, LabelServer: r.Server, LabelHub: d.o.NamePrefix}
	cfg := &container.Config{
		Image:        image,
		User:         u.Uid + ":" + u.Gid,
		Env:          env,
		Entrypoint:   l.argv[:1],
		Cmd:          l.argv[1:],
		WorkingDir:   l.dir,
		Labels:       labels,
		ExposedPorts: network.PortSet{port: {}},
		StopSignal:   "SIGTERM",
	}
	// The engine would create a missing bind source as root: a home
	// must exist, a shared environment that does not is left out.
	if fi, err := os.Stat(acct.home); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("the home directory %s of %s is missing: create it (mkhomedir) before the server starts", acct.home, acct.name)
	}
	binds := []string{acct.home + ":" + acct.home}
	if fi, err := os.Stat(d.o.SharedEnv); d.o.SharedEnv != "" && err == nil && fi.IsDir() {
		binds = append(binds, d.o.SharedEnv+":"+d.o.SharedEnv)
	}
	for _, s := range r.Shares {
		binds = append(binds, s.Path+":"+s.Path)
	}
	for _, m := range d.mounts {
		binds = append(binds, m.bind())
	}
	umask := uint32(0o002)
	// The engine's init (tini) is PID 1: the server gets SIGTERM as on
	// the host (a PID 1 without handlers ignores it, so every stop would
	// wait for the SIGKILL) and its kernels' zombies are reaped.
	initProc := true
	host := &container.HostConfig{
		Init:         &initProc,
		Binds:        binds,
		NetworkMode:  container.NetworkMode(d.o.Network),
		PortBindings: network.PortMap{port: {{HostIP: netip.MustParseAddr(DefaultHost)}}},
		GroupAdd:     groups,
		CapDrop:      []string{"ALL"},
		SecurityOpt:  []string{"no-new-privileges"},
		// The server's files are group-writable, for the shared
		// environment and the shares, as with the other spawners.
		Umask:          &umask,
		ReadonlyRootfs: d.o.ReadOnlyRoot,
	}
	if d.o.ReadOnlyRoot {
		host.Tmpfs = map[string]string{"/tmp": "rw,nosuid,nodev,mode=1777"}
	}
	lim := r.Resources.Docker
	if m := cmp.Or(lim.MemoryMax, d.o.MemoryMax); m > 0 {
		// No swap beyond the limit: over it, the OOM killer ends the
		// server rather than the host swapping for it.
		host.Memory, host.MemorySwap = m, m
	}
	if c := cmp.Or(lim.CPUQuotaPercent, d.o.CPUQuotaPercent); c > 0 {
		host.NanoCPUs = int64(c) * 1e7
	}
	if p := cmp.Or(lim.PidsMax, d.o.PidsMax); p > 0 {
		n := int64(p)
		host.PidsLimit = &n
	}
	host.Devices = gpuDevices(r.Resources)
	return cfg, host, nil
}

// gpuDevices are the device nodes a container gets for its GPUs: its own
// GPUs of the hub's pool and the driver's shared nodes, at the same
// paths. The engine allows the container's device cgroup only these (and
// the standard pseudo devices), so a server never opens another's GPU.
func gpuDevices(r Resources) []container.DeviceMapping {
	if len(r.GPUs) == 0 {
		return nil
	}
	var out []container.DeviceMapping
	for _, g := range r.GPUs {
		out = append(out, container.DeviceMapping{PathOnHost: g.Device, PathInContainer: g.Device, CgroupPermissions: "rwm"})
	}
	for _, p := range r.SharedDevices {
		out = append(out, container.DeviceMapping{PathOnHost: p, PathInContainer: p, CgroupPermissions: "rwm"})
	}
	return out
}

// containerEnv is the server's environment as a container needs it: it
// listens on every address of its own network namespace (the engine
// forwards the published port there), and reaches the hub's API at hub
// instead of the host's loopback.
func containerEnv(env []string, hub string) ([]string, error) {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "JUPYTERHUB_SERVICE_URL":
			u, err := url.Parse(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			u.Host = "0.0.0.0:" + strconv.Itoa(containerPort)
			v = u.String()
		case "JUPYTERHUB_API_URL", "JUPYTERHUB_ACTIVITY_URL":
			u, err := url.Parse(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.IsLoopback() {
				u.Host = hub
			}
			v = u.String()
		}
		out = append(out, k+"="+v)
	}
	return out, nil
}

// follow copies a container's output into the server's log until the
// container ends or the hub stops.
func (d *Docker) follow(id, logPath string, since time.Time) {
	d.mu.Lock()
	if _, ok := d.follows[id]; ok {
		d.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.follows[id] = cancel
	d.mu.Unlock()
	go func() {
		defer func() {
			d.mu.Lock()
			delete(d.follows, id)
			d.mu.Unlock()
			cancel()
		}()
		lg, err := openLog(logPath)
		if err != nil {
			d.log.Warn("cannot open the server's log", "container", short(id), "err", err)
			return
		}
		defer lg.Close()
		opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true}
		if !since.IsZero() {
			opts.Since = strconv.FormatInt(since.Unix(), 10)
		}
		rc, err := d.api.ContainerLogs(ctx, id, opts)
		if err != nil {
			d.log.Debug("follow the container's output", "container", short(id), "err", err)
			return
		}
		defer rc.Close()
		if _, err := stdcopy.StdCopy(lg.f, lg.f, rc); err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
			d.log.Debug("follow the container's output", "container", short(id), "err", err)
		}
	}()
}

// Watch implements Watcher with the engine's wait API, which answers the
// moment the container exits.
func (d *Docker) Watch(st State) (<-chan Status, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan Status, 1)
	go func() {
		w := d.api.ContainerWait(ctx, st.ContainerID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		select {
		case <-w.Result:
		case err := <-w.Error:
			if ctx.Err() != nil {
				return
			}
			d.log.Debug("wait for the container", "container", st.Container, "err", err)
		case <-ctx.Done():
			return
		}
		bg := context.WithoutCancel(ctx)
		ins, err := d.api.ContainerInspect(bg, st.ContainerID, client.ContainerInspectOptions{})
		if err != nil {
			exited <- Status{ExitCode: -1, Reason: "container " + st.Container + " is gone"}
			return
		}
		reason, code := d.failure(ins.Container)
		exited <- Status{ExitCode: code, Reason: reason, Output: d.output(bg, st.ContainerID)}
	}()
	return exited, cancel
}

// failure explains a container that is not running, with its exit code
// and image.
func (d *Docker) failure(c container.InspectResponse) (string, int) {
	name, s := strings.TrimPrefix(c.Name, "/"), c.State
	if c.Config != nil {
		name += " (image " + c.Config.Image + ")"
	}
	if s == nil {
		return "container " + name + " has no state", -1
	}
	switch {
	case s.OOMKilled:
		limit := "its memory limit"
		if d.o.MemoryMax > 0 {
			limit = fmt.Sprintf("its memory limit of %d MiB (raise spawner.docker.memory_max)", d.o.MemoryMax>>20)
		}
		return fmt.Sprintf("container %s was killed by the OOM killer for going over %s (exit code %d)", name, limit, s.ExitCode), s.ExitCode
	case s.Error != "":
		return fmt.Sprintf("container %s could not run: %s", name, s.Error), s.ExitCode
	case s.Status == container.StateCreated:
		return fmt.Sprintf("container %s was created but never ran", name), -1
	}
	return fmt.Sprintf("container %s exited with code %d", name, s.ExitCode), s.ExitCode
}

// inspect finds the recorded container and checks it is the user's
// server: a container of that name made for someone else is not.
func (d *Docker) inspect(ctx context.Context, userName string, st State) (*container.InspectResponse, error) {
	if st.Kind != KindDocker {
		return nil, fmt.Errorf("server state of kind %q given to the docker spawner", st.Kind)
	}
	if !ValidContainerName(st.Container) {
		return nil, fmt.Errorf("server state names container %s, which is not a container name", names.Quote(st.Container))
	}
	res, err := d.api.ContainerInspect(ctx, st.Container, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, d.engineError(err)
	}
	c := res.Container
	if c.Config == nil || c.Config.Labels[LabelUser] != userName {
		d.log.Warn("the recorded container is not the user's server", "user", userName, "container", st.Container)
		return nil, nil
	}
	return &c, nil
}

// Poll implements Spawner with one inspect. A container that ended is
// reported with its exit code and OOM flag, then removed: its record is
// the hub's from then on.
func (d *Docker) Poll(ctx context.Context, userName string, st State) (Status, error) {
	c, err := d.inspect(ctx, userName, st)
	if err != nil {
		return Status{}, err
	}
	if c == nil {
		return Status{ExitCode: -1, Reason: "container " + st.Container + " is gone"}, nil
	}
	if c.State != nil && c.State.Running {
		return Status{Running: true, ExitCode: -1}, nil
	}
	reason, code := d.failure(*c)
	d.remove(st.Container)
	return Status{ExitCode: code, Reason: reason}, nil
}

// Reattach resumes copying the output of a server this process did not
// start into its log (after a hub restart).
func (d *Docker) Reattach(st State, logPath string) {
	if st.ContainerID != "" {
		d.follow(st.ContainerID, logPath, time.Now())
	}
}

// Stop implements Spawner: SIGTERM, SIGKILL after timeout, then the
// container is removed. A container that is gone is success.
func (d *Docker) Stop(ctx context.Context, userName string, st State, timeout time.Duration) error {
	c, err := d.inspect(ctx, userName, st)
	if err != nil || c == nil {
		return err
	}
	if timeout <= 0 {
		timeout = d.o.StopTimeout
	}
	secs := int((timeout + time.Second - 1) / time.Second)
	if _, err := d.api.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", st.Container, d.engineError(err))
	}
	if _, err := d.api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", st.Container, d.engineError(err))
	}
	d.mu.Lock()
	delete(d.cpu, c.ID)
	d.mu.Unlock()
	d.log.Info("server stopped", "user", userName, "container", st.Container)
	return nil
}

// remove force-removes a container whose start failed or that ended.
func (d *Docker) remove(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), d.o.StopTimeout+killWait)
	defer cancel()
	if _, err := d.api.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		d.log.Warn("remove container", "container", name, "err", err)
	}
}

// removeLeftover removes a container of the same name an earlier run
// left (a hub that crashed mid-start, a server that died while the hub
// was down), but only one that is a hubd server: anything else of that
// name is the admin's, and the start fails instead.
func (d *Docker) removeLeftover(ctx context.Context, name string) (bool, error) {
	res, err := d.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, d.engineError(err)
	}
	if res.Container.Config == nil || res.Container.Config.Labels[LabelUser] == "" {
		return false, fmt.Errorf("a container named %s exists and is not a hubd server: remove or rename it, or change spawner.docker.name_prefix", name)
	}
	d.log.Warn("a container of the same name exists from an earlier run; removing it", "container", name)
	d.remove(name)
	return true, nil
}

// Reclaim implements Reclaimer: the server's container, found by its
// name, removed.
func (d *Docker) Reclaim(ctx context.Context, o Orphan, _ time.Duration) (int, error) {
	name, err := d.ContainerName(o.User, o.Server)
	if err != nil {
		return 0, err
	}
	removed, err := d.removeLeftover(ctx, name)
	if !removed {
		return 0, err
	}
	return 1, nil
}

// Usage is a server's resource use, as its container's cgroup has it.
type Usage struct {
	// ID is the container's full id.
	ID          string
	MemoryBytes uint64 // in use, without the page cache the kernel may drop
	MemoryLimit uint64
	// CPUPercent is the CPU used since the previous Usage call for this
	// container (the lifetime average on the first); 100 = one core.
	CPUPercent float64
	Pids       uint64
}

// cpuSample is a container's CPU time at one moment.
type cpuSample struct {
	ns uint64
	at time.Time
}

// Usage reads one sample of a server container's cgroup: memory, pids,
// and the CPU since the last sample (one-shot reads answer at once, where
// the engine's own CPU figure waits a second for a second sample).
func (d *Docker) Usage(ctx context.Context, userName string, st State) (Usage, error) {
	c, err := d.inspect(ctx, userName, st)
	if err != nil {
		return Usage{}, err
	}
	if c == nil {
		return Usage{}, fmt.Errorf("container %s is gone", st.Container)
	}
	res, err := d.api.ContainerStats(ctx, c.ID, client.ContainerStatsOptions{})
	if err != nil {
		return Usage{}, d.engineError(err)
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return Usage{}, fmt.Errorf("read the usage of %s: %w", st.Container, err)
	}
	mem := s.MemoryStats.Usage
	// What `docker stats` shows: the page cache is not the server's.
	for _, k := range []string{"inactive_file", "total_inactive_file"} {
		if v, ok := s.MemoryStats.Stats[k]; ok && v < mem {
			mem -= v
			break
		}
	}
	out := Usage{ID: c.ID, MemoryBytes: mem, MemoryLimit: s.MemoryStats.Limit, Pids: s.PidsStats.Current}
	now := cpuSample{ns: s.CPUStats.CPUUsage.TotalUsage, at: time.Now()}
	d.mu.Lock()
	prev, ok := d.cpu[c.ID]
	d.cpu[c.ID] = now
	d.mu.Unlock()
	if !ok && c.State != nil {
		// The first sample: the average since the container started.
		if started, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil {
			prev, ok = cpuSample{at: started}, true
		}
	}
	if ok && now.at.After(prev.at) && now.ns >= prev.ns {
		out.CPUPercent = float64(now.ns-prev.ns) / float64(now.at.Sub(prev.at).Nanoseconds()) * 100
	}
	return out, nil
}
