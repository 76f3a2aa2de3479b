package admin

import (
	"net/http"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/sharedenv"
)

// sharedEnvExamples is how many paths per kind of drift the answer names.
const sharedEnvExamples = 5

// sharedEnv answers GET /v1/sharedenv: the environment's state and a
// check of its whole tree, walked as the hub's account (directories it
// cannot read are reported as such). Repairing needs root and is done by
// `hubd env repair` or a root hubtui, not by the hub.
func (s *Server) sharedEnv(w http.ResponseWriter, r *http.Request, _ identity) error {
	cfg := s.cfg.SharedEnv
	out := wire.SharedEnv{Enabled: cfg.Enabled, Path: cfg.Path, Group: s.cfg.Auth.AllowedGroup}
	if !cfg.Enabled {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	st, err := sharedenv.New(sharedenv.OptionsFromConfig(s.cfg, s.log)).Status(r.Context(), sharedEnvExamples)
	if err != nil {
		return errorf(http.StatusInternalServerError, "check the shared environment %s: %v", cfg.Path, err)
	}
	out.Exists, out.PythonVersion, out.IPyKernel, out.Packages = st.Exists, st.PythonVersion, st.IPyKernel, st.Packages
	out.KernelSpec, out.KernelRegistered, out.Health, out.Checked = st.KernelSpec, st.KernelRegistered, st.Health.Wire(), s.now()
	writeJSON(w, http.StatusOK, out)
	return nil
}
