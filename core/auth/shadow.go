package auth

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

const shadowFile = "/etc/shadow"

// CanReadShadow reports whether this process can check other users'
// passwords with pam_unix, and a one-line explanation for the log and
// `hubd doctor`. pam_unix needs to read /etc/shadow (root:shadow 0640 on
// Debian); without it, it falls back to unix_chkpwd, which only checks the
// caller's own password, and every other login fails.
func CanReadShadow() (bool, string) {
	uid := os.Geteuid()
	if uid == 0 {
		return true, "hubd runs as root and can check passwords"
	}
	who := strconv.Itoa(uid)
	if u, err := user.LookupId(who); err == nil {
		who = u.Username
	}
	f, err := os.Open(shadowFile)
	if err == nil {
		f.Close()
		return true, fmt.Sprintf("hubd runs as %s, which can read %s and check passwords", who, shadowFile)
	}
	if _, gerr := user.LookupGroup("shadow"); gerr != nil {
		return false, fmt.Sprintf("hubd runs as %s, which cannot read %s (%v), and this system has no shadow group: run hubd as root", who, shadowFile, err)
	}
	return false, fmt.Sprintf("hubd runs as %s, which cannot read %s, so PAM cannot check other users' passwords: run `usermod -aG shadow %s` and restart hubd", who, shadowFile, who)
}
