package host

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hubd/hubd/core/auth"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/ldapdir"
)

// checkLDAPLogin: with the LDAP login method configured, may the hub read
// the service account's password, does the directory answer, and does
// the service account bind? Nothing when auth.methods lacks "ldap".
func (o Options) checkLDAPLogin(ctx context.Context) []Finding {
	l := o.Config.Auth.LDAP
	if !o.Config.Auth.HasMethod(config.MethodLDAP) {
		return nil
	}
	var out []Finding
	if l.BindDN != "" {
		secret := o.checkSecretFile("auth.ldap.bind_password_file", l.BindPasswordFile)
		if secret.Level != OK {
			// The hub would not start: the directory can wait.
			return []Finding{secret}
		}
		out = append(out, secret)
	}
	f := Finding{Check: "LDAP login directory " + strings.Join(l.URLs, " "), Level: OK}
	dc, err := auth.LDAPDirectoryConfig(l)
	var dir *ldapdir.Directory
	if err == nil {
		dir, err = ldapdir.New(dc)
	}
	if err != nil {
		f.Level, f.Message, f.Fix = Fail, err.Error(), "fix [auth.ldap] in "+o.ConfigPath+" (`hubd config check"+o.configFlag()+"`)"
		return append(out, f)
	}
	defer dir.Close()
	took, err := dir.Check(ctx)
	switch {
	case err == nil && l.BindDN != "":
		f.Message = fmt.Sprintf("the service account %s binds (%s)", l.BindDN, roundDuration(took))
	case err == nil:
		f.Message = fmt.Sprintf("answers (%s)", roundDuration(took))
	case errors.Is(err, ldapdir.ErrUnavailable):
		f.Level, f.Message = Fail, err.Error()+": LDAP logins fail until it answers"
		f.Fix = "start the directory server, or correct auth.ldap.urls (and start_tls, ca_file) in " + o.ConfigPath
	default:
		f.Level, f.Message = Fail, err.Error()
		f.Fix = "check auth.ldap.bind_dn and the password in " + l.BindPasswordFile
	}
	out = append(out, f)
	if f.Level != OK {
		return out
	}
	if g, ok := o.checkLDAPGroups(ctx, dir); ok {
		out = append(out, g)
	}
	return out
}

// checkLDAPGroups: every group auth.ldap.allowed_groups and admin_groups
// name is in the directory; a misspelt one lets nobody in or makes nobody
// admin, silently. Nothing when neither lists a group.
func (o Options) checkLDAPGroups(ctx context.Context, dir *ldapdir.Directory) (Finding, bool) {
	l := o.Config.Auth.LDAP
	groups := append(slices.Clone(l.AllowedGroups), l.AdminGroups...)
	if len(groups) == 0 {
		return Finding{}, false
	}
	f := Finding{Check: "LDAP groups of auth.ldap.allowed_groups and admin_groups", Level: OK}
	missing, unchecked, err := dir.MissingGroups(ctx, groups)
	switch {
	case err != nil:
		f.Level, f.Message = Warn, "not checked: "+err.Error()
	case len(missing) > 0:
		f.Level = Fail
		f.Message = "not in the directory: " + strings.Join(missing, ", ") + " (nobody gets in or becomes admin through them)"
		f.Fix = "correct auth.ldap.allowed_groups and admin_groups in " + o.ConfigPath + ": a group's cn under " + cmp.Or(l.GroupSearchBase, "auth.ldap.group_search_base") + ", or its DN"
	default:
		f.Message = fmt.Sprintf("%d of %d found", len(groups)-len(unchecked), len(groups))
	}
	if len(unchecked) > 0 && err == nil {
		f.Message += "; not checked without auth.ldap.group_search_base: " + strings.Join(unchecked, ", ")
		if f.Level == OK {
			f.Level = Warn
		}
	}
	return f, true
}

// checkSecretFile: the hub's account reads a secret the configuration
// names, and nobody else may.
func (o Options) checkSecretFile(key, path string) Finding {
	f := Finding{Check: key + " " + path, Level: OK}
	fix := "chown " + o.HubUser + " " + path + " && chmod 600 " + path
	fi, err := os.Stat(path)
	if err != nil {
		f.Level, f.Message, f.Fix = Fail, err.Error(), "write the secret to "+path+", then `"+fix+"`"
		return f
	}
	owner, _, _ := strings.Cut(ownerOf(fi), ":")
	switch {
	case fi.Mode().Perm()&0o077 != 0:
		f.Level, f.Message, f.Fix = Fail, fmt.Sprintf("mode %04o: others may read the secret", fi.Mode().Perm()), fix
	case owner != o.HubUser:
		f.Level, f.Message, f.Fix = Fail, "owned by "+owner+", so the hub ("+o.HubUser+") cannot read it", fix
	default:
		f.Message = fmt.Sprintf("%04o, owned by %s", fi.Mode().Perm(), owner)
	}
	return f
}
