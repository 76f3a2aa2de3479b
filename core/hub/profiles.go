package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
)

// ProfileError is a start refused for its profile: Forbidden when the
// profile exists but is not the user's to use (the API answers 403),
// else the name is wrong (400).
type ProfileError struct {
	Msg       string
	Forbidden bool
}

func (e *ProfileError) Error() string { return e.Msg }

// OptionsError is a user_options object the hub does not take.
type OptionsError struct{ Msg string }

func (e *OptionsError) Error() string { return e.Msg }

// ParseOptions reads user_options (a JSON object, "" for none) as this hub
// understands them: at most a profile name, a string. Anything else is
// refused, so a client never believes an option took effect that no
// spawner reads.
func ParseOptions(js string) (string, error) {
	if strings.TrimSpace(js) == "" {
		return "", nil
	}
	var opts map[string]json.RawMessage
	if err := json.Unmarshal([]byte(js), &opts); err != nil || opts == nil {
		return "", &OptionsError{Msg: "user_options must be a JSON object, like {\"profile\": \"gpu\"}"}
	}
	var profile string
	for k, v := range opts {
		if k != "profile" {
			return "", &OptionsError{Msg: fmt.Sprintf("unknown server option %s: this hub takes only \"profile\"", names.Quote(truncateName(k)))}
		}
		if err := json.Unmarshal(v, &profile); err != nil || string(v) == "null" {
			return "", &OptionsError{Msg: "the option \"profile\" must be a string, the name of a profile"}
		}
	}
	return profile, nil
}

// Profiles lists the profiles u may choose from, in the configured order.
func (h *Hub) Profiles(ctx context.Context, u store.User) ([]config.Profile, error) {
	var out []config.Profile
	for _, p := range h.cfg.Spawner.Profiles {
		ok, err := h.mayUse(ctx, u, p)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// Profile returns the configured profile of that name.
func (h *Hub) Profile(name string) (config.Profile, bool) {
	i := slices.IndexFunc(h.cfg.Spawner.Profiles, func(p config.Profile) bool { return p.Name == name })
	if i < 0 {
		return config.Profile{}, false
	}
	return h.cfg.Spawner.Profiles[i], true
}

// mayUse reports whether u is in one of the profile's hub groups or Linux
// groups (or the profile is open to everyone).
func (h *Hub) mayUse(ctx context.Context, u store.User, p config.Profile) (bool, error) {
	if len(p.Groups) == 0 && len(p.LinuxGroups) == 0 {
		return true, nil
	}
	if len(p.Groups) > 0 {
		groups, err := h.store.GroupsOf(ctx, u.ID)
		if err != nil {
			return false, err
		}
		if slices.ContainsFunc(p.Groups, func(g string) bool { return slices.Contains(groups, g) }) {
			return true, nil
		}
	}
	if len(p.LinuxGroups) > 0 {
		groups, err := h.linuxGroups(u.Name)
		if err != nil {
			h.log.Warn("cannot read a user's Linux groups for a profile", "user", u.Name, "profile", p.Name, "err", err)
			return false, nil
		}
		if slices.ContainsFunc(p.LinuxGroups, func(g string) bool { return slices.Contains(groups, g) }) {
			return true, nil
		}
	}
	return false, nil
}

// linuxGroupsOf lists the names of a user's Linux groups (through NSS).
func linuxGroupsOf(name string) ([]string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		if g, err := user.LookupGroupId(id); err == nil {
			out = append(out, g.Name)
		}
	}
	return out, nil
}

// resolveProfile picks the profile of a start: the one named, which must
// exist and be u's to use, or with no name the default (else the first u
// may use). With no profiles configured there is nothing to pick.
func (h *Hub) resolveProfile(ctx context.Context, u store.User, name string) (config.Profile, error) {
	if len(h.cfg.Spawner.Profiles) == 0 {
		if name != "" {
			return config.Profile{}, &ProfileError{Msg: fmt.Sprintf("no profile named %s: this hub has no profiles", names.Quote(truncateName(name)))}
		}
		return config.Profile{}, nil
	}
	mine, err := h.Profiles(ctx, u)
	if err != nil {
		return config.Profile{}, err
	}
	if name == "" {
		if len(mine) == 0 {
			return config.Profile{}, &ProfileError{Msg: "no profile is available to you; ask an admin to add you to a profile's group", Forbidden: true}
		}
		if i := slices.IndexFunc(mine, func(p config.Profile) bool { return p.Default }); i >= 0 {
			return mine[i], nil
		}
		return mine[0], nil
	}
	if i := slices.IndexFunc(mine, func(p config.Profile) bool { return p.Name == name }); i >= 0 {
		return mine[i], nil
	}
	if _, ok := h.Profile(name); ok {
		return config.Profile{}, &ProfileError{Msg: fmt.Sprintf("profile %s is not available to you (it is for the members of some groups)", names.Quote(name)), Forbidden: true}
	}
	known := make([]string, len(mine))
	for i, p := range mine {
		known[i] = p.Name
	}
	return config.Profile{}, &ProfileError{Msg: fmt.Sprintf("no profile named %s; choose one of: %s", names.Quote(truncateName(name)), strings.Join(known, ", "))}
}

// GPUCount is the size of the GPU pool.
func (h *Hub) GPUCount() int { return len(h.gpuPool) }

// ProfileOf is the profile a server was started with ("" for none), as
// its user_options record it.
func ProfileOf(srv store.Server) string {
	var opts struct {
		Profile string `json:"profile"`
	}
	_ = json.Unmarshal([]byte(srv.UserOptions), &opts)
	return opts.Profile
}

// kindOf is the spawner kind that starts a profile's servers.
func (h *Hub) kindOf(p config.Profile) string { return h.cfg.Spawner.ProfileKind(p) }

// resources turns a profile into what the spawner reads.
func (h *Hub) resources(p config.Profile, gpus []store.GPU) spawner.Resources {
	r := spawner.Resources{
		Profile:       p.Name,
		Restrict:      len(h.gpuPool) > 0,
		SharedDevices: h.sharedDevices,
		Systemd: spawner.SystemdLimits{MemoryMax: int64(p.Systemd.MemoryMax), CPUQuotaPercent: p.Systemd.CPUQuotaPercent,
			TasksMax: p.Systemd.TasksMax, DeviceAllow: p.Systemd.DeviceAllow},
		Docker: spawner.DockerLimits{Image: p.Docker.Image, MemoryMax: int64(p.Docker.MemoryMax),
			CPUQuotaPercent: p.Docker.CPUQuotaPercent, PidsMax: p.Docker.PidsMax},
		Slurm: spawner.SlurmJob{Partition: p.Slurm.Partition, Time: p.Slurm.Time, Memory: p.Slurm.Memory,
			CPUs: p.Slurm.CPUs, GPUs: p.Slurm.GPUs, Extra: p.Slurm.Extra},
	}
	for _, g := range gpus {
		r.GPUs = append(r.GPUs, spawner.GPU{Index: g.Index, Device: g.Device})
	}
	return r
}

// UsesGPUPool reports whether any profile hands out GPUs of the pool:
// only then does the hub look for GPUs and keep servers to their own.
func UsesGPUPool(cfg config.Config) bool {
	return slices.ContainsFunc(cfg.Spawner.Profiles, func(p config.Profile) bool { return p.GPUs > 0 })
}

// GPUPool is the pool profiles draw from: the configured GPUs, else the
// ones nvidia-smi lists; nothing when no profile asks for GPUs.
func GPUPool(ctx context.Context, cfg config.Config) ([]store.GPU, error) {
	if !UsesGPUPool(cfg) {
		return nil, nil
	}
	var pool []store.GPU
	for _, g := range cfg.Spawner.GPUs {
		pool = append(pool, store.GPU{Index: g.Index, Device: g.Device})
	}
	if len(pool) > 0 {
		return pool, nil
	}
	found, err := spawner.DetectGPUs(ctx, cfg.Spawner.NvidiaSMI)
	for _, g := range found {
		pool = append(pool, store.GPU(g))
	}
	return pool, err
}

// existing keeps the device nodes that exist on this machine.
func existing(paths []string) []string {
	var out []string
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// gpuRetry is how often a start waiting for GPUs looks again.
const gpuRetry = 500 * time.Millisecond

// takeGPUs hands want GPUs of the pool to the server, waiting (until ctx
// ends) while others hold them and telling the spawn page who does.
func (h *Hub) takeGPUs(ctx context.Context, op *Op, srv store.Server, want int) ([]store.GPU, error) {
	if want == 0 {
		return nil, nil
	}
	if len(h.gpuPool) == 0 {
		return nil, errors.New("the profile asks for GPUs but this hub has none to hand out: list them as [[spawner.gpus]] tables or install nvidia-smi")
	}
	said := ""
	for {
		got, err := h.store.AssignGPUs(ctx, srv.ID, want, h.gpuPool)
		busy, ok := errors.AsType[*store.GPUsBusyError](err)
		if !ok || busy.Want > busy.Pool {
			return got, err
		}
		if msg := "Waiting for a GPU: " + busy.Error(); msg != said {
			said = msg
			op.add(Event{Progress: 5, Message: msg})
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no GPU became free before spawner.start_timeout ran out (%s): %w", busy, ctx.Err())
		case <-time.After(gpuRetry):
		}
	}
}

// cudaDevices is CUDA_VISIBLE_DEVICES for the GPUs a server holds.
func cudaDevices(gpus []store.GPU) string {
	ids := make([]string, len(gpus))
	for i, g := range gpus {
		ids[i] = strconv.Itoa(g.Index)
	}
	return strings.Join(ids, ",")
}
