package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/hubd/hubd/core/identity"
	usernames "github.com/hubd/hubd/core/names"
)

// cmdAccountHelper creates the Linux account of a single sign-on user for
// a hub that does not run as root (account_mode = "create" with the sudo
// spawner). sudo runs it as root through the one rule `hubd setup` adds
// for that mode:
//
//	hub ALL=(root) NOPASSWD: /usr/local/bin/hubd account-helper --config /etc/hubd/hubd.toml
func cmdAccountHelper(ctx context.Context, e *env, args []string) int {
	fs := e.flags("account-helper", "account-helper --config FILE < name", `
Create the Linux account of a single sign-on user: no password, a home
from /etc/skel, in the members group (auth.allowed_group). The hub runs
this as root through sudo, only when auth.oidc.account_mode is "create";
the name comes on stdin, one line.

It creates nothing unless the configuration offers the oidc method with
account_mode "create", and refuses names the hub would refuse (root,
anything the name rules reject). An account that exists already is left as
it is (the hub then checks it is a member and not a system account).`)
	if code, done := parse(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return e.fail("account-helper takes no arguments (the name comes on stdin)")
	}
	if os.Geteuid() != 0 {
		return e.fail("account-helper creates accounts and must run as root (the hub runs it through sudo)")
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return e.fail("%v", err)
	}
	if !cfg.Auth.CreatesAccounts() {
		return e.fail("this hub does not create accounts: %s has no oidc or ldap method with account_mode = \"create\"", cfg.Source)
	}
	name, err := readName(e.stdin)
	if err != nil {
		return e.fail("%v", err)
	}
	if _, err := user.Lookup(name); err == nil {
		return 0
	}
	if err := identity.UserAdd(ctx, name, cfg.Auth.AllowedGroup); err != nil {
		return e.fail("%v", err)
	}
	return 0
}

// readName reads one line of at most usernames.MaxLen bytes: the user name.
func readName(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, usernames.MaxLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	name := strings.TrimSuffix(line, "\n")
	if err := usernames.Check(name); err != nil || name == "root" {
		return "", errors.New("refusing the account name " + usernames.Quote(name) + ": not a user name this hub accepts")
	}
	return name, nil
}
