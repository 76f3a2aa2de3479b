package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/core/store/storetest"
)

var open = storetest.New

func TestUsersAndDomainErrors(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	u, err := s.CreateUser(ctx, "alice", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "alice", true); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate user: %v; want ErrConflict", err)
	}
	if _, err := s.UserByName(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing user: %v; want ErrNotFound", err)
	}
	if _, err := s.SetAdmin(ctx, "nobody", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetAdmin on missing user: %v", err)
	}
	got, err := s.EnsureUser(ctx, "alice", true)
	if err != nil || got.ID != u.ID || !got.Admin || !got.AdminGrant {
		t.Fatalf("EnsureUser = %+v, %v", got, err)
	}
}

// TestAdminByHandAndByRules: a grant by hand survives logins whose rules
// say nothing; a revocation takes effect at once, and the rules decide
// again at the next login.
func TestAdminByHandAndByRules(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	login := func(rule string) store.User {
		t.Helper()
		u, err := s.BindLogin(ctx, store.Login{Name: "carol", AdminRule: rule, Account: store.AccountLinux, Method: "oidc", Subject: "idp#carol"})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	want := func(u store.User, admin, grant bool, rule string) {
		t.Helper()
		if u.Admin != admin || u.AdminGrant != grant || u.AdminRule != rule {
			t.Errorf("carol: admin %v, grant %v, rule %q; want %v, %v, %q", u.Admin, u.AdminGrant, u.AdminRule, admin, grant, rule)
		}
	}
	byName := func() store.User {
		t.Helper()
		u, err := s.UserByName(ctx, "carol")
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	want(login("auth.oidc.admin_groups: lab-admins"), true, false, "auth.oidc.admin_groups: lab-admins")
	want(login(""), false, false, "")

	before, err := s.SetAdmin(ctx, "carol", true)
	if err != nil {
		t.Fatal(err)
	}
	want(before, false, false, "")
	want(byName(), true, true, "")
	want(login(""), true, true, "")

	want(login("auth.oidc.admin_users"), true, true, "auth.oidc.admin_users")
	before, err = s.SetAdmin(ctx, "carol", false)
	if err != nil {
		t.Fatal(err)
	}
	want(before, true, true, "auth.oidc.admin_users")
	want(byName(), false, false, "")
	want(login("auth.oidc.admin_users"), true, false, "auth.oidc.admin_users")
}

// TestSessionIDToken: a session keeps its ID token until logout hands it
// back.
func TestSessionIDToken(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	u, _ := s.CreateUser(ctx, "dave", false)
	if err := s.CreateSession(ctx, store.Session{ID: "s1", UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour), IDToken: "eyJ.dave.sig"}); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.EndSession(ctx, "s1"); err != nil || tok != "eyJ.dave.sig" {
		t.Errorf("EndSession = %q, %v; want the session's ID token", tok, err)
	}
	if _, err := s.SessionUser(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session survived EndSession: %v", err)
	}
	if tok, err := s.EndSession(ctx, "s1"); err != nil || tok != "" {
		t.Errorf("second EndSession = %q, %v; want nothing", tok, err)
	}
}

func TestServerLifecycleRevokesCredentials(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	u, _ := s.CreateUser(ctx, "bob", false)
	start := store.ServerStart{UserID: u.ID, UserName: "bob", Spawner: "sudo", Port: 4000,
		TokenHash: store.HashToken("tok"), TokenPrefix: "tok", TokenScopes: `[]`,
		ClientID: store.OAuthClientID("bob", ""), RedirectURI: "/user/bob/oauth_callback", Note: "Server at /user/bob/"}
	srv, err := s.BeginStart(ctx, start)
	if err != nil || srv.State != store.StateStarting {
		t.Fatalf("BeginStart = %+v, %v", srv, err)
	}
	if _, err := s.BeginStart(ctx, start); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second start: %v; want ErrConflict", err)
	}
	if _, err := s.TokenByHash(ctx, store.HashToken("tok")); err != nil {
		t.Fatalf("server token missing: %v", err)
	}
	if err := s.CreateOAuthCode(ctx, store.HashToken("code"), store.OAuthCode{ClientID: start.ClientID, UserID: u.ID,
		RedirectURI: start.RedirectURI, Scopes: "[]", ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateToken(ctx, store.Token{UserID: u.ID, Hash: store.HashToken("oauth"), Prefix: "oaut", Kind: store.TokenOAuth,
		ClientID: start.ClientID, Scopes: "[]"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRunning(ctx, srv.ID, "3.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStopped(ctx, srv.ID, store.StateStopped, "idle", "culler"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"tok", "oauth"} {
		if _, err := s.TokenByHash(ctx, store.HashToken(tok)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token %q survived the stop: %v", tok, err)
		}
	}
	if _, err := s.TakeOAuthCode(ctx, store.HashToken("code")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OAuth code survived the stop: %v", err)
	}
	got, _ := s.Server(ctx, u.ID, "")
	if got.State != store.StateStopped || got.StopReason != "idle" || got.StoppedBy != "culler" {
		t.Errorf("stopped server = %+v", got)
	}
	// A stopped server can start again.
	if _, err := s.BeginStart(ctx, start); err != nil {
		t.Fatalf("restart after stop: %v", err)
	}
}

func TestOAuthCodeIsGoodOnce(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	u, _ := s.CreateUser(ctx, "carl", false)
	start := store.ServerStart{UserID: u.ID, UserName: "carl", TokenHash: "h", TokenPrefix: "h", TokenScopes: "[]",
		ClientID: store.OAuthClientID("carl", ""), RedirectURI: "/user/carl/oauth_callback"}
	if _, err := s.BeginStart(ctx, start); err != nil {
		t.Fatal(err)
	}
	code := store.OAuthCode{ClientID: start.ClientID, UserID: u.ID, RedirectURI: start.RedirectURI, Scopes: "[]", ExpiresAt: time.Now().Add(time.Minute)}
	if err := s.CreateOAuthCode(ctx, "c1", code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeOAuthCode(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeOAuthCode(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reused code: %v; want ErrNotFound", err)
	}
	code.ExpiresAt = time.Now().Add(-time.Second)
	if err := s.CreateOAuthCode(ctx, "c2", code); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeOAuthCode(ctx, "c2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired code: %v; want ErrNotFound", err)
	}
}

func TestListUsersFilters(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	for _, n := range []string{"ann", "ben", "a_b", "axb"} {
		if _, err := s.CreateUser(ctx, n, false); err != nil {
			t.Fatal(err)
		}
	}
	ben, _ := s.UserByName(ctx, "ben")
	if _, err := s.BeginStart(ctx, store.ServerStart{UserID: ben.ID, UserName: "ben", TokenHash: "x", TokenPrefix: "x",
		TokenScopes: "[]", ClientID: store.OAuthClientID("ben", ""), RedirectURI: "r"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		f    store.UserFilter
		want []string
	}{
		{store.UserFilter{Limit: 10}, []string{"ann", "ben", "a_b", "axb"}},
		{store.UserFilter{Limit: 2, Offset: 1}, []string{"ben", "a_b"}},
		{store.UserFilter{State: "active", Limit: 10}, []string{"ben"}},
		{store.UserFilter{State: "ready", Limit: 10}, nil},
		{store.UserFilter{State: "inactive", Limit: 10}, []string{"ann", "a_b", "axb"}},
		{store.UserFilter{NameFilter: "_", Limit: 10}, []string{"a_b"}},
	}
	for _, c := range cases {
		users, _, err := s.ListUsers(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range users {
			got = append(got, u.Name)
		}
		if len(got) != len(c.want) {
			t.Errorf("%+v: got %v want %v", c.f, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%+v: got %v want %v", c.f, got, c.want)
			}
		}
	}
}

func TestOpenRefusesMissingDirectory(t *testing.T) {
	_, err := store.Open(context.Background(), "/nonexistent-hubd-dir/hubd.sqlite", store.Options{})
	if err == nil {
		t.Fatal("opened a database in a missing directory")
	}
}

// Each GPU goes to one server at a time; a server that stops frees its
// GPUs, and a start that cannot have enough gets none and learns who
// holds them.
func TestGPUAssignments(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	pool := []store.GPU{{Index: 0, Device: "/dev/nvidia0"}, {Index: 1, Device: "/dev/nvidia1"}, {Index: 2, Device: "/dev/nvidia2"}}
	start := func(name, server string) store.Server {
		t.Helper()
		u, err := s.EnsureUser(ctx, name, false)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := s.BeginStart(ctx, store.ServerStart{UserID: u.ID, UserName: name, Name: server, Spawner: "sudo", Port: 4000,
			TokenHash: store.HashToken("tok-" + name + server), TokenPrefix: "tok", TokenScopes: `[]`,
			ClientID: store.OAuthClientID(name, server), RedirectURI: "/x", UserOptions: "{}"})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	alice, bob, carol := start("alice", ""), start("bob", "train"), start("carol", "")
	if got, err := s.AssignGPUs(ctx, alice.ID, 2, pool); err != nil || len(got) != 2 || got[0].Index != 0 || got[1].Index != 1 {
		t.Fatalf("alice's GPUs: %v %v", got, err)
	}
	if got, err := s.AssignGPUs(ctx, bob.ID, 1, pool); err != nil || len(got) != 1 || got[0].Device != "/dev/nvidia2" {
		t.Fatalf("bob's GPU: %v %v", got, err)
	}
	_, err := s.AssignGPUs(ctx, carol.ID, 1, pool)
	busy, ok := errors.AsType[*store.GPUsBusyError](err)
	if !ok || len(busy.Holders) != 3 || busy.Holders[2].Name() != "bob/train" {
		t.Fatalf("carol with every GPU taken: %v", err)
	}
	for _, want := range []string{"GPU 0: alice", "GPU 2: bob/train", "waiting for 1 of the 3 GPUs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if _, err := s.AssignGPUs(ctx, carol.ID, 4, pool); err == nil || !strings.Contains(err.Error(), "asks for 4 GPUs but the hub has 3") {
		t.Errorf("more GPUs than the pool: %v", err)
	}
	if err := s.SetStopped(ctx, alice.ID, store.StateStopped, "stopped", "alice"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AssignGPUs(ctx, carol.ID, 1, pool); err != nil || got[0].Index != 0 {
		t.Fatalf("carol after alice stopped: %v %v", got, err)
	}
	holders, err := s.GPUHolders(ctx)
	if err != nil || len(holders) != 2 || holders[0].User != "carol" || holders[1].Server != "train" {
		t.Errorf("holders %+v %v", holders, err)
	}
}

// TestUnbindMovesAUserToAnotherMethod: a name bound to a PAM login
// refuses an SSO login of that name until it is unbound; then the SSO
// login binds it, and the user (their id, admin grant) is the same.
func TestUnbindMovesAUserToAnotherMethod(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	pam := store.Login{Name: "dave", Account: store.AccountLinux, Method: "pam", Subject: "dave"}
	sso := store.Login{Name: "dave", Account: store.AccountLinux, Method: "oidc", Subject: "idp#dave"}
	u, err := s.BindLogin(ctx, pam)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAdmin(ctx, "dave", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BindLogin(ctx, sso); !errors.Is(err, store.ErrNameBound) {
		t.Fatalf("an SSO login of a PAM user: %v; want ErrNameBound", err)
	}
	if m, err := s.Unbind(ctx, u.ID); err != nil || m != "pam" {
		t.Fatalf("Unbind = %q, %v; want pam", m, err)
	}
	if _, err := s.Unbind(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a second Unbind: %v; want ErrNotFound", err)
	}
	got, err := s.BindLogin(ctx, sso)
	if err != nil || got.ID != u.ID || !got.Admin || got.Method != "oidc" {
		t.Fatalf("the SSO login after Unbind: %+v, %v; want the same user, still admin, now oidc", got, err)
	}
	if _, err := s.BindLogin(ctx, pam); !errors.Is(err, store.ErrNameBound) {
		t.Errorf("the old PAM login after the move: %v; want ErrNameBound", err)
	}
}
