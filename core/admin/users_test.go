package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/store"
)

// TestUsersList: each user's login method, admin flag and where it comes
// from, account kind and default server's state, a page at a time.
func TestUsersList(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.start(t, "alice") // created through the store, never logged in
	if _, err := e.store.BindLogin(ctx, store.Login{Name: "carol", AdminRule: "auth.oidc.admin_groups: lab-admins",
		Account: store.AccountDynamic, Method: "oidc", Subject: "https://idp.example#c-1"}); err != nil {
		t.Fatal(err)
	}
	e.user(t, "dave")
	if _, err := e.store.SetAdmin(ctx, "dave", true); err != nil {
		t.Fatal(err)
	}

	var all wire.Users
	if err := jsonBody(e.do(idRoot, "GET", "/v1/users", ""), &all); err != nil {
		t.Fatal(err)
	}
	if all.Total != 3 || len(all.Users) != 3 || all.NextOffset != 0 {
		t.Fatalf("users: %+v", all)
	}
	alice, carol, dave := all.Users[0], all.Users[1], all.Users[2]
	if alice.Name != "alice" || alice.Method != "" || alice.Admin || alice.Account != "linux" || alice.Server != store.StateRunning ||
		alice.ActiveServers != 1 || alice.LastSeen.IsZero() || alice.Created.IsZero() {
		t.Errorf("alice: %+v", alice)
	}
	if carol.Name != "carol" || carol.Method != "oidc" || !carol.Admin || carol.AdminByHand || carol.AdminRule != "auth.oidc.admin_groups: lab-admins" ||
		carol.Account != "dynamic" || carol.Server != "" || carol.ActiveServers != 0 {
		t.Errorf("carol: %+v", carol)
	}
	if dave.Name != "dave" || !dave.Admin || !dave.AdminByHand || dave.AdminRule != "" {
		t.Errorf("dave: %+v", dave)
	}

	// Pages: limit and offset, the next offset, and the name filter.
	list := func(query string) wire.Users {
		t.Helper()
		var page wire.Users
		if err := jsonBody(e.do(idRoot, "GET", "/v1/users?"+query, ""), &page); err != nil {
			t.Fatal(err)
		}
		return page
	}
	if page := list("limit=2"); len(page.Users) != 2 || page.Total != 3 || page.NextOffset != 2 {
		t.Errorf("first page of 2: %d users, total %d, next %d", len(page.Users), page.Total, page.NextOffset)
	}
	if page := list("limit=2&offset=2"); len(page.Users) != 1 || page.Users[0].Name != "dave" || page.NextOffset != 0 {
		t.Errorf("last page: %+v", page)
	}
	if page := list("name=AR"); len(page.Users) != 1 || page.Users[0].Name != "carol" || page.Total != 1 {
		t.Errorf("name=AR: %+v", page)
	}
	for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "offset=-1"} {
		if rec := e.do(idRoot, "GET", "/v1/users?"+bad, ""); rec.Code != 400 || !strings.Contains(rec.Body.String(), "give a number") {
			t.Errorf("%s: %d %s", bad, rec.Code, rec.Body)
		}
	}
}

// TestSetAdmin: a grant by hand, and a revocation that says what the
// login rules will do at the next login; both audited with the peer's uid.
func TestSetAdmin(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	if _, err := e.store.BindLogin(ctx, store.Login{Name: "carol", AdminRule: "auth.oidc.admin_groups: lab-admins",
		Account: store.AccountLinux, Method: "oidc", Subject: "https://idp.example#c-1"}); err != nil {
		t.Fatal(err)
	}
	e.user(t, "bob")

	var res wire.AdminResult
	if err := jsonBody(e.do(idAdmin, "POST", "/v1/users/bob/admin", `{"admin": true}`), &res); err != nil {
		t.Fatal(err)
	}
	if !res.User.Admin || !res.User.AdminByHand || res.Note != "" {
		t.Errorf("bob made an admin: %+v", res)
	}
	if err := jsonBody(e.do(idAdmin, "POST", "/v1/users/carol/admin", `{"admin": false}`), &res); err != nil {
		t.Fatal(err)
	}
	if res.User.Admin || res.User.AdminRule != "" || !strings.Contains(res.Note, "auth.oidc.admin_groups: lab-admins made carol an admin") ||
		!strings.Contains(res.Note, "next login") {
		t.Errorf("carol unmade: %+v", res)
	}
	if u, _ := e.store.UserByName(ctx, "carol"); u.Admin {
		t.Error("carol is still an admin in the store")
	}
	events := e.adminEvents(t)
	if len(events) != 2 || events[0].Action != "user.admin" || events[0].Target != "carol" || events[0].ActorUID != idAdmin.UID() ||
		!strings.HasPrefix(events[0].Detail, "false") || !strings.Contains(events[0].Detail, "lab-admins") ||
		events[1].Target != "bob" || events[1].Detail != "true" {
		t.Errorf("audit events: %+v", events)
	}
	for path, want := range map[string]int{"/v1/users/nobody-here/admin": 404, "/v1/users/..%2Froot/admin": 400} {
		if rec := e.do(idRoot, "POST", path, `{"admin": true}`); rec.Code != want {
			t.Errorf("%s: %d %s, want %d", path, rec.Code, rec.Body, want)
		}
	}
	if rec := e.do(idRoot, "POST", "/v1/users/bob/admin", `{"admin": "yes"}`); rec.Code != 400 {
		t.Errorf("admin \"yes\": %d %s", rec.Code, rec.Body)
	}
}

// TestDeleteUser: the user's running servers (named ones too) stop
// first, then the user and their tokens go; the delete is audited with
// the peer's uid, the stops with the reason.
func TestDeleteUser(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.start(t, "alice")
	if rec := e.do(idRoot, "POST", "/v1/tokens", `{"user": "alice"}`); rec.Code != 201 {
		t.Fatalf("token for alice: %d %s", rec.Code, rec.Body)
	}

	var res wire.DeletedUser
	if err := jsonBody(e.do(idAdmin, "DELETE", "/v1/users/alice", ""), &res); err != nil {
		t.Fatal(err)
	}
	if res.User.Name != "alice" || res.User.Server != store.StateRunning || len(res.Stopped) != 1 || res.Stopped[0] != "alice" {
		t.Errorf("answer: %+v", res)
	}
	if _, err := e.store.UserByName(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice after the delete: %v", err)
	}
	if left := serverProcs(); len(left) > 0 {
		t.Errorf("alice's server still runs after the delete: pids %v", left)
	}
	if n, err := e.store.ListTokens(ctx, store.TokenFilter{}); err != nil || len(n) != 0 {
		t.Errorf("tokens after the delete: %v, %v", n, err)
	}
	var del, stop *store.Event
	list, _ := e.store.Events(ctx, store.EventFilter{Limit: 100})
	for i, ev := range list {
		switch {
		case ev.Action == "user.delete" && ev.Target == "alice":
			del = &list[i]
		case ev.Action == "server.stop" && ev.Target == "alice":
			stop = &list[i]
		}
	}
	if del == nil || del.ActorUID != idAdmin.UID() || del.Source != "admin" || del.Detail != "stopped 1 server first" {
		t.Errorf("delete event: %+v", del)
	}
	if stop == nil || !strings.Contains(stop.Detail, "user deleted by "+idAdmin.Name()) {
		t.Errorf("stop event: %+v", stop)
	}
	if rec := e.do(idAdmin, "DELETE", "/v1/users/alice", ""); rec.Code != 404 {
		t.Errorf("second delete: %d %s", rec.Code, rec.Body)
	}
}
