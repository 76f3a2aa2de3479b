package spawner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// mkhomedirHelper is the tool pam_mkhomedir itself runs to create a home.
const mkhomedirHelper = "/usr/sbin/mkhomedir_helper"

// createHome makes acct's home directory when it does not exist, as
// pam_mkhomedir does at a login: a copy of /etc/skel owned by the member
// and private to them (umask 0077). Only root can; the systemd spawner's
// hub runs as root, the sudo spawner's has sudo's PAM session do it.
func createHome(ctx context.Context, acct account) error {
	if !filepath.IsAbs(acct.home) {
		return fmt.Errorf("the home directory of %s is %q, not an absolute path: fix the account", acct.name, acct.home)
	}
	if _, err := os.Stat(acct.home); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out, err := exec.CommandContext(ctx, mkhomedirHelper, acct.name, "0077", "/etc/skel").CombinedOutput()
	if err != nil {
		return fmt.Errorf("create the home directory %s of %s with %s: %w: %s (create it by hand, or set spawner.create_home = false)",
			acct.home, acct.name, mkhomedirHelper, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// missingDir explains a server directory that does not exist: most often
// the home of a directory account that never logged in on this host.
func missingDir(dir, home string) error {
	if dir == home {
		return fmt.Errorf("the home directory %s does not exist: with spawner.create_home = true the hub creates it at the first start "+
			"(kind sudo: through the PAM service `hubd setup` installs for sudo; `hubd doctor` checks it), or create it by hand", dir)
	}
	return fmt.Errorf("the working directory %s does not exist: create it, or change spawner.working_dir", dir)
}
