package admin

import (
	"fmt"
	"net/http"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/upgrade"
)

// The running hub's database is always at the newest schema this binary
// knows: serve refuses to start on an older one (or applies the steps at
// start with hub.auto_upgrade_db). So the plan is empty and running it
// changes nothing. Upgrading to a newer hubd means installing it and
// running its `hubd upgrade-db` with the hub stopped; the answer says so.

func (s *Server) upgradePlan(w http.ResponseWriter, r *http.Request, _ identity) error {
	p, err := s.store.Plan(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, planOf(p))
	return nil
}

func (s *Server) upgradeRun(w http.ResponseWriter, r *http.Request, who identity) error {
	p, err := s.store.Plan(r.Context())
	if err != nil {
		return err
	}
	out := planOf(p)
	if p.Pending() {
		// Cannot happen while this hub holds the database; say what to do
		// rather than migrate under live requests.
		s.audit(r.Context(), who, "upgrade.run", fmt.Sprintf("schema %d→%d", p.From, p.To), "refused: the hub is running")
		return errorf(http.StatusConflict, "schema steps are pending (%d → %d): stop the hub and run `hubd upgrade-db` (it takes a backup first)", p.From, p.To)
	}
	s.audit(r.Context(), who, "upgrade.run", fmt.Sprintf("schema %d", p.To), "nothing pending")
	writeJSON(w, http.StatusOK, out)
	return nil
}

func planOf(p upgrade.Plan) wire.UpgradePlan {
	out := wire.UpgradePlan{From: p.From, To: p.To, Pending: p.Pending(), Steps: []wire.UpgradeStep{}}
	for _, st := range p.Steps {
		out.Steps = append(out.Steps, wire.UpgradeStep{Version: st.Version, Name: st.Name})
	}
	if p.Pending() {
		out.Message = fmt.Sprintf("schema version %d → %d: stop the hub and run `hubd upgrade-db`", p.From, p.To)
	} else {
		out.Message = fmt.Sprintf("the database is at schema version %d, the newest this hub knows: nothing to do. To upgrade hubd itself, install the new version, stop the hub, run its `hubd upgrade-db` (it backs up first) and start the hub", p.To)
	}
	return out
}
