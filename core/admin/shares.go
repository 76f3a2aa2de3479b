package admin

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/shares"
)

// Shares are changed by the hub only when it runs as root (the docker
// and systemd spawners need that anyway). A hub running as its own
// unprivileged account (the sudo spawner) lists and checks them, and
// says to use `sudo hubd share` for the rest: no helper or sudo rule
// lets it create groups or chown files, so the host is no weaker for
// the API.

// sharesReadOnly says why this hub cannot change shares, "" when it can.
func sharesReadOnly() string {
	if os.Geteuid() == 0 {
		return ""
	}
	name := strconv.Itoa(os.Geteuid())
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return fmt.Sprintf("the hub runs as %s, not root, so it cannot create groups or change ownership: change shares with `sudo hubd share ...` on the server", name)
}

func (s *Server) sharesWritable() error {
	if why := sharesReadOnly(); why != "" {
		return errorf(http.StatusForbidden, "%s", why)
	}
	return nil
}

func wireShare(sh shares.Share) wire.Share {
	return wire.Share{Name: sh.Name, Path: sh.Path, Group: sh.Group, Members: sh.Members}
}

// shareError maps the shares package's errors to answers: a share that
// does not exist is 404, a refused name or user 400.
func shareError(err error) error {
	if _, ok := errors.AsType[*shares.NotFoundError](err); ok {
		return errorf(http.StatusNotFound, "%s", err.Error())
	}
	return errorf(http.StatusBadRequest, "%s", err.Error())
}

func (s *Server) listShares(w http.ResponseWriter, r *http.Request, _ identity) error {
	list, err := s.shares.List(r.Context())
	if err != nil {
		return err
	}
	out := wire.Shares{Shares: []wire.Share{}, ReadOnly: sharesReadOnly()}
	for _, sh := range list {
		out.Shares = append(out.Shares, wireShare(sh))
	}
	if fi, err := os.Stat(s.shares.PublicPath()); err == nil && fi.IsDir() {
		out.Public = s.shares.PublicPath()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createShare(w http.ResponseWriter, r *http.Request, who identity) error {
	var req wire.ShareRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := s.sharesWritable(); err != nil {
		return err
	}
	ctx := r.Context()
	if req.Public {
		if req.Name != "" || len(req.Members) > 0 {
			return errorf(http.StatusBadRequest, "the public area takes no name or members: every member has a folder there")
		}
		if err := s.shares.CreatePublic(); err != nil {
			return err
		}
		s.audit(ctx, who, "share.create", shares.Public, s.shares.PublicPath())
		writeJSON(w, http.StatusCreated, wire.Share{Name: shares.Public, Path: s.shares.PublicPath(), Group: s.cfg.Auth.AllowedGroup, Members: []string{}})
		return nil
	}
	sh, err := s.shares.Create(ctx, req.Name, req.Members)
	if err != nil {
		return shareError(err)
	}
	s.audit(ctx, who, "share.create", sh.Name, strings.Join(sh.Members, " "))
	writeJSON(w, http.StatusCreated, wireShare(sh))
	return nil
}

func (s *Server) changeShareMembers(w http.ResponseWriter, r *http.Request, who identity) error {
	var req wire.ShareMembers
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := s.sharesWritable(); err != nil {
		return err
	}
	if len(req.Add)+len(req.Remove) == 0 {
		return errorf(http.StatusBadRequest, "name users to add or remove")
	}
	ctx, name := r.Context(), r.PathValue("name")
	var sh shares.Share
	var err error
	if len(req.Add) > 0 {
		if sh, err = s.shares.Add(ctx, name, req.Add); err != nil {
			return shareError(err)
		}
		s.audit(ctx, who, "share.add", name, strings.Join(req.Add, " "))
	}
	if len(req.Remove) > 0 {
		if sh, err = s.shares.Remove(ctx, name, req.Remove); err != nil {
			return shareError(err)
		}
		s.audit(ctx, who, "share.remove", name, strings.Join(req.Remove, " "))
	}
	writeJSON(w, http.StatusOK, wireShare(sh))
	return nil
}

func (s *Server) deleteShare(w http.ResponseWriter, r *http.Request, who identity) error {
	if err := s.sharesWritable(); err != nil {
		return err
	}
	ctx, name := r.Context(), r.PathValue("name")
	purge := r.URL.Query().Get("purge") == "true"
	if err := s.shares.Delete(ctx, name, purge); err != nil {
		return shareError(err)
	}
	s.audit(ctx, who, "share.delete", name, map[bool]string{true: "purged", false: ""}[purge])
	writeJSON(w, http.StatusOK, wire.Share{Name: name, Members: []string{}})
	return nil
}

// shareExamples bounds the example paths per kind in a check's answer.
const shareExamples = 5

func (s *Server) checkShare(w http.ResponseWriter, r *http.Request, who identity) error {
	return s.walkShare(w, r, who, false)
}

func (s *Server) repairShare(w http.ResponseWriter, r *http.Request, who identity) error {
	if err := s.sharesWritable(); err != nil {
		return err
	}
	return s.walkShare(w, r, who, true)
}

func (s *Server) walkShare(w http.ResponseWriter, r *http.Request, who identity, fix bool) error {
	ctx, name := r.Context(), r.PathValue("name")
	walk := s.shares.Check
	if fix {
		walk = s.shares.Repair
	}
	reps, err := walk(ctx, name, shareExamples)
	if err != nil && len(reps) == 0 {
		return shareError(err)
	}
	out := wire.ShareCheck{Reports: []wire.ShareReport{}}
	fixed := 0
	for _, rep := range reps {
		wr := wire.ShareReport{Path: rep.Path, Group: rep.Group, Files: rep.Files, Dirs: rep.Dirs,
			Problems: map[string]int{}, Errors: rep.Errors, Healthy: rep.Healthy()}
		for k, n := range rep.Problems {
			wr.Problems[k.String()] = n
		}
		for k, ex := range rep.Examples {
			if wr.Examples == nil {
				wr.Examples = map[string][]string{}
			}
			wr.Examples[k.String()] = ex
		}
		for k, n := range rep.Fixed {
			if wr.Fixed == nil {
				wr.Fixed = map[string]int{}
			}
			wr.Fixed[k.String()] = n
			fixed += n
		}
		out.Reports = append(out.Reports, wr)
	}
	if fix {
		s.audit(ctx, who, "share.repair", name, fmt.Sprintf("%d fixed", fixed))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
