package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
)

// jobStateTimeout bounds the wait for Slurm's word on a session's job.
const jobStateTimeout = 3 * time.Second

// sessions lists the active servers with their process trees' CPU, memory
// and GPU memory. Members see only their own; ?user= narrows the list.
func (s *Server) sessions(w http.ResponseWriter, r *http.Request, who identity) error {
	ctx := r.Context()
	only := r.URL.Query().Get("user")
	if who.role != wire.RoleAdmin {
		if only != "" && only != who.name {
			return errorf(http.StatusForbidden, "members may only see their own sessions; %s is a member", who.actor())
		}
		only = who.name
	}
	servers, err := s.active.get(ctx, s.store.ActiveServers)
	if err != nil {
		return err
	}
	out := wire.Sessions{Sessions: []wire.Session{}}
	var mine []store.Server
	for _, srv := range servers {
		if only == "" || srv.User == only {
			mine = append(mine, srv)
		}
	}
	if len(mine) == 0 {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	snap, err := s.procs.snapshot()
	if err != nil {
		out.Warnings = append(out.Warnings, "process statistics are not available: "+err.Error())
	}
	gpuByPID, gpuFound, warn := s.gpu.usage(ctx)
	out.GPU = gpuFound && warn == ""
	if warn != "" {
		out.Warnings = append(out.Warnings, warn)
	}
	// One deadline for every job's state: a Slurm controller that is down
	// must not stall the list once per job.
	jobCtx, cancel := context.WithTimeout(ctx, jobStateTimeout)
	defer cancel()
	for _, srv := range mine {
		sess := wire.Session{
			User: srv.User, Server: srv.Name, State: srv.State,
			Started: srv.Started.UTC(), LastActivity: srv.LastActivity.UTC(), ProxyActivity: srv.ProxyActivity.UTC(),
			URL:     hub.ServerPrefix(s.cfg.Hub.BaseURL, srv.User, srv.Name),
			Spawner: srv.Spawner, Profile: hub.ProfileOf(srv),
		}
		if op := s.hub.Pending(srv.User, srv.Name); op != nil {
			sess.Pending = op.Kind
		}
		var st spawner.State
		// An unreadable state is a server still starting ("{}"): no pid yet.
		_ = json.Unmarshal([]byte(srv.SpawnerState), &st)
		sess.PID, sess.Unit, sess.Container, sess.ContainerID = st.PID, st.Unit, st.Container, st.ContainerID
		sess.JobID, sess.Node, sess.GPUs = st.JobID, st.Node, st.GPUs
		if st.Port != 0 {
			sess.Address = hub.StateOf(srv).Addr()
		}
		if st.JobID != "" {
			ps, err := s.hub.PollServer(jobCtx, srv)
			if err != nil {
				sess.JobState = "unknown: " + err.Error()
			} else {
				sess.JobState, _, _ = strings.Cut(ps.Detail, " ")
				if !ps.Running {
					sess.JobState = ps.Reason
				}
			}
		}
		if u, ok := s.hub.Spawner(st.Kind).(spawner.Usager); ok && st.Started() {
			s.usage(r, u, srv.User, st, &sess, &out)
		} else if snap != nil && st.PID > 0 {
			tree := snap.tree(st.PID, st.PIDStart)
			sess.Procs, sess.RSSBytes = len(tree.pids), tree.rss
			if len(tree.pids) > 0 {
				sess.CPUPercent = s.procs.cpuPercent(snap, st.PID, tree)
			}
			if out.GPU {
				var gpu int64
				for _, pid := range tree.pids {
					gpu += gpuByPID[pid]
				}
				sess.GPUMemoryBytes = &gpu
			}
		}
		out.Sessions = append(out.Sessions, sess)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// usageTimeout bounds one container's usage read: the list must answer
// even when the engine is slow.
const usageTimeout = 2 * time.Second

// usage fills a session's figures from a spawner that measures its
// servers itself (a container's cgroup).
func (s *Server) usage(r *http.Request, u spawner.Usager, user string, st spawner.State, sess *wire.Session, out *wire.Sessions) {
	ctx, cancel := context.WithTimeout(r.Context(), usageTimeout)
	defer cancel()
	use, err := u.Usage(ctx, user, st)
	if err != nil {
		out.Warnings = append(out.Warnings, sess.User+": "+err.Error())
		return
	}
	sess.ContainerID = use.ID
	sess.Procs, sess.CPUPercent, sess.RSSBytes = int(use.Pids), use.CPUPercent, int64(use.MemoryBytes)
}
