package scopes

import (
	"slices"
	"testing"
)

func TestExpandAndHas(t *testing.T) {
	set := Expand([]string{"self", "admin:servers!group=gpu", "read:services!service", "list:users"}, Owner{User: "ann"})
	cases := []struct {
		name string
		t    Target
		want bool
	}{
		{"servers", Target{User: "ann"}, true},                                       // self
		{"delete:servers", Target{User: "ann", Server: "gpu", IsServer: true}, true}, // self, subscope, a server of hers
		{"access:servers", Target{User: "ann", Server: "", IsServer: true}, true},    // self
		{"admin:server_state", Target{User: "bob", Groups: []string{"gpu"}}, true},   // via the group filter
		{"admin:server_state", Target{User: "bob", Groups: []string{"cpu"}}, false},  // not in the group
		{"read:users:name", Target{User: "zed"}, true},                               // list:users implies it, unfiltered
		{"read:users", Target{User: "zed"}, false},                                   // self is ann's only
		{"read:services", Target{Service: "x"}, false},                               // !service is not ann's to use
		{"tokens", Target{User: "ann"}, true},                                        // self
		{"shutdown", Target{}, false},                                                // never given
	}
	for _, c := range cases {
		if got := set.Has(c.name, c.t); got != c.want {
			t.Errorf("Has(%s, %+v) = %v; want %v", c.name, c.t, got, c.want)
		}
	}
	svc := Expand([]string{"read:services!service", "self"}, Owner{Service: "cull"})
	if !svc.Has("read:services:name", Target{Service: "cull"}) || svc.Has("read:services", Target{Service: "other"}) || svc.HasAny("servers") {
		t.Errorf("service expansion: %v", svc.Strings())
	}
}

func TestIntersectNeverWidens(t *testing.T) {
	owner := Expand([]string{"servers!user=ann", "read:users!group=lab"}, Owner{User: "ann"})
	in := func(user, group string) bool { return user == "bob" && group == "lab" }
	tok := Expand([]string{"servers", "read:users:name!user=bob", "read:users!user=carl", "admin:users"}, Owner{User: "ann"})
	got := tok.Intersect(owner, in).Strings()
	for _, s := range got {
		if s == "servers" || s == "admin:users" || s == "read:users!user=carl" || s == "read:users:name!user=carl" {
			t.Errorf("intersection widened: %v", got)
		}
	}
	for _, want := range []string{"servers!user=ann", "delete:servers!user=ann", "read:users:name!user=bob"} {
		if !slices.Contains(got, want) {
			t.Errorf("intersection %v lacks %s", got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, ok := range []string{"list:users", "servers!user=a", "access:servers!server=a/gpu", "admin:servers!group=g", "read:services!service=x", "self", "inherit", "users!user"} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"root", "servers!host=x", "servers!server=a", "self!user=a", "read:users!user=a/b", ""} {
		if Check(bad) == nil {
			t.Errorf("Check(%q) accepted", bad)
		}
	}
}
