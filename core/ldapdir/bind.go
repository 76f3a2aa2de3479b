package ldapdir

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Membership says where a directory records who is in a group.
type Membership string

// The three ways directories record group members.
const (
	// MemberOf: the user's own memberOf attribute lists the groups' DNs
	// (Active Directory; OpenLDAP's memberof overlay).
	MemberOf Membership = "memberOf"
	// Member: groupOfNames (or AD groups) list member DNs.
	Member Membership = "member"
	// MemberUID: posixGroups list member user names in memberUid.
	MemberUID Membership = "memberUid"
)

// Placeholder is what user_dn_template and user_filter put the user name
// in place of, escaped for a DN or a filter.
const Placeholder = "{username}"

// Config is a directory the hub binds to as the user, to check a
// password, then reads the user's name, mail and groups from.
type Config struct {
	Dialer
	// UserDNTemplate binds directly as the DN made by putting the
	// RFC 4514-escaped name in place of Placeholder. Empty: search.
	UserDNTemplate string
	// BindDN and BindPassword are the service account's, which searches
	// for the user (search-then-bind) and for groups.
	BindDN, BindPassword string
	// UserBase and UserFilter find the user: the filter-escaped name
	// goes in place of Placeholder.
	UserBase, UserFilter string
	// NameAttr holds the user name in the entry (uid, sAMAccountName).
	NameAttr string
	// Membership and GroupBase say how groups are found.
	Membership Membership
	GroupBase  string
	// Connections bounds the open connections.
	Connections int
	// Timeout bounds one whole Authenticate (waiting for a connection
	// included); Dialer.Timeout bounds each operation.
	Timeout time.Duration
}

// Group is a group the user is a member of.
type Group struct {
	DN string
	// Name is the group's cn (the value of its first RDN when unread).
	Name string
}

// Entry is a user whose password the directory accepted.
type Entry struct {
	DN, Name, Email string
	Groups          []Group
}

// Errors of Authenticate, for errors.Is; anything else means the
// directory could not be asked or answered unexpectedly.
var (
	// ErrInvalidCredentials: a wrong password, an unknown user, or an
	// empty password (never sent: an empty simple bind is an anonymous
	// one, which servers accept).
	ErrInvalidCredentials = errors.New("wrong user name or password")
	// ErrRefused: the password may be right, but the directory will not
	// let the account bind (disabled, locked, password policy).
	ErrRefused = errors.New("the directory refuses this account")
	// ErrUnavailable: the directory could not be reached or did not
	// answer in time.
	ErrUnavailable = errors.New("the directory did not answer")
)

// Directory authenticates users against one directory.
type Directory struct {
	c      Config
	pool   *pool
	closed atomic.Bool
}

// New checks c and returns a Directory; nothing is dialled yet.
func New(c Config) (*Directory, error) {
	if len(c.URLs) == 0 {
		return nil, errors.New("no directory URL")
	}
	for _, u := range c.URLs {
		if err := CheckURL(u); err != nil {
			return nil, err
		}
	}
	switch {
	case c.UserDNTemplate != "" && !strings.Contains(c.UserDNTemplate, Placeholder):
		return nil, fmt.Errorf("the user DN template %q has no %s", c.UserDNTemplate, Placeholder)
	case c.UserDNTemplate == "" && (c.UserBase == "" || !strings.Contains(c.UserFilter, Placeholder)):
		return nil, fmt.Errorf("without a user DN template, set a user search base and a user filter with %s", Placeholder)
	case c.UserDNTemplate == "" && c.BindDN == "":
		return nil, errors.New("searching for users needs a service account (bind DN and password)")
	case c.BindDN != "" && c.BindPassword == "":
		return nil, errors.New("the service account has an empty password: that would be an anonymous bind")
	case c.Membership != MemberOf && c.Membership != Member && c.Membership != MemberUID:
		return nil, fmt.Errorf("group membership %q is not one of %s, %s, %s", c.Membership, MemberOf, Member, MemberUID)
	case c.Membership != MemberOf && c.GroupBase == "":
		return nil, fmt.Errorf("group membership %s needs a group search base", c.Membership)
	case c.Connections < 1 || c.Timeout <= 0:
		return nil, errors.New("connections must be at least 1 and the timeout positive")
	}
	if c.NameAttr == "" {
		c.NameAttr = "uid"
	}
	return &Directory{c: c, pool: newPool(c.Dialer, c.Connections)}, nil
}

// Close closes the idle connections.
func (d *Directory) Close() {
	d.closed.Store(true)
	d.pool.close()
}

// Authenticate checks name's password by binding as the user and returns
// the user's entry with its groups. It never binds with an empty
// password. It returns within Config.Timeout (or ctx) whatever the
// directory does.
func (d *Directory) Authenticate(ctx context.Context, name, password string) (Entry, error) {
	if password == "" {
		return Entry{}, fmt.Errorf("%w: empty password, not sent", ErrInvalidCredentials)
	}
	ctx, cancel := context.WithTimeout(ctx, d.c.Timeout)
	defer cancel()
	// A connection that sat idle may have been closed by the server
	// since: on a network error with one, the attempt is made once more
	// on a fresh connection.
	for {
		c, err := d.pool.get(ctx)
		if err != nil {
			return Entry{}, d.unavailable(ctx, err)
		}
		e, err := d.authenticate(ctx, c, name, password)
		// A connection that closed itself under an operation lost its
		// transport, whatever error go-ldap made of that.
		network := IsNetwork(err) || (err != nil && c.IsClosing())
		d.pool.put(c, !network && ctx.Err() == nil && !d.closed.Load())
		if network && c.reused && ctx.Err() == nil {
			continue
		}
		if network {
			return Entry{}, d.unavailable(ctx, err)
		}
		return e, err
	}
}

func (d *Directory) unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return fmt.Errorf("%w (%s): %w", ErrUnavailable, strings.Join(d.c.URLs, " "), err)
}

func (d *Directory) authenticate(ctx context.Context, c *conn, name, password string) (Entry, error) {
	var dn string
	var entry *ldap.Entry
	if d.c.UserDNTemplate != "" {
		dn = strings.ReplaceAll(d.c.UserDNTemplate, Placeholder, ldap.EscapeDN(name))
	} else {
		if err := d.bindService(ctx, c); err != nil {
			return Entry{}, err
		}
		var err error
		if entry, err = d.findUser(ctx, c, name); err != nil {
			return Entry{}, err
		}
		dn = entry.DN
	}
	c.service = false
	if err := Run(ctx, c.Conn, func() error { return c.Bind(dn, password) }); err != nil {
		return Entry{}, bindError(err)
	}
	// Read what the user may read, or what the service account may.
	if d.c.BindDN != "" {
		if err := d.bindService(ctx, c); err != nil {
			return Entry{}, err
		}
	}
	if entry == nil {
		var err error
		if entry, err = d.readUser(ctx, c, dn); err != nil {
			return Entry{}, err
		}
	}
	e := Entry{DN: entry.DN, Name: entry.GetAttributeValue(d.c.NameAttr), Email: entry.GetAttributeValue("mail")}
	groups, err := d.groups(ctx, c, entry, e.Name)
	if err != nil {
		return Entry{}, err
	}
	e.Groups = groups
	return e, nil
}

// bindService binds c as the service account unless it already is.
func (d *Directory) bindService(ctx context.Context, c *conn) error {
	if c.service {
		return nil
	}
	if err := Run(ctx, c.Conn, func() error { return c.Bind(d.c.BindDN, d.c.BindPassword) }); err != nil {
		if IsNetwork(err) {
			return err
		}
		return fmt.Errorf("bind as the service account %s: %w (check bind_dn and the password file)", d.c.BindDN, err)
	}
	c.service = true
	return nil
}

func (d *Directory) userAttrs() []string {
	attrs := []string{d.c.NameAttr, "mail"}
	if d.c.Membership == MemberOf {
		attrs = append(attrs, "memberOf")
	}
	return attrs
}

// findUser searches for exactly one user called name.
func (d *Directory) findUser(ctx context.Context, c *conn, name string) (*ldap.Entry, error) {
	filter := strings.ReplaceAll(d.c.UserFilter, Placeholder, ldap.EscapeFilter(name))
	res, err := d.search(ctx, c, d.c.UserBase, ldap.ScopeWholeSubtree, filter, d.userAttrs(), 2)
	if err != nil {
		return nil, err
	}
	switch len(res) {
	case 0:
		return nil, fmt.Errorf("%w: no entry matches %s under %s", ErrInvalidCredentials, filter, d.c.UserBase)
	case 1:
		return res[0], nil
	}
	return nil, fmt.Errorf("%d entries match %s under %s: make user_filter match one user", len(res), filter, d.c.UserBase)
}

func (d *Directory) readUser(ctx context.Context, c *conn, dn string) (*ldap.Entry, error) {
	res, err := d.search(ctx, c, dn, ldap.ScopeBaseObject, "(objectClass=*)", d.userAttrs(), 1)
	if err != nil {
		return nil, fmt.Errorf("read the entry %s after its bind: %w", dn, err)
	}
	if len(res) != 1 {
		return nil, fmt.Errorf("the entry %s cannot be read after its bind", dn)
	}
	return res[0], nil
}

// groups are the user's groups by d.c.Membership.
func (d *Directory) groups(ctx context.Context, c *conn, user *ldap.Entry, name string) ([]Group, error) {
	var filter string
	switch d.c.Membership {
	case MemberOf:
		var out []Group
		for _, dn := range user.GetAttributeValues("memberOf") {
			out = append(out, Group{DN: dn, Name: firstRDNValue(dn)})
		}
		return out, nil
	case Member:
		filter = "(member=" + ldap.EscapeFilter(user.DN) + ")"
	default:
		filter = "(memberUid=" + ldap.EscapeFilter(name) + ")"
	}
	res, err := d.search(ctx, c, d.c.GroupBase, ldap.ScopeWholeSubtree, filter, []string{"cn"}, 0)
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", user.DN, err)
	}
	out := make([]Group, 0, len(res))
	for _, g := range res {
		name := g.GetAttributeValue("cn")
		if name == "" {
			name = firstRDNValue(g.DN)
		}
		out = append(out, Group{DN: g.DN, Name: name})
	}
	return out, nil
}

func (d *Directory) search(ctx context.Context, c *conn, base string, scope int, filter string, attrs []string, limit int) ([]*ldap.Entry, error) {
	// The server's own time limit, in whole seconds, a little inside ours.
	secs := max(1, int(time.Until(deadline(ctx, d.c.Timeout)).Seconds()))
	req := ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, limit, secs, false, filter, attrs, nil)
	var res *ldap.SearchResult
	err := Run(ctx, c.Conn, func() error {
		var err error
		res, err = c.Search(req)
		return err
	})
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}

func deadline(ctx context.Context, fallback time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(fallback)
}

// bindError sorts a failed user bind.
func bindError(err error) error {
	switch {
	case IsNetwork(err):
		return err
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
		return fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultConstraintViolation,
		ldap.LDAPResultInappropriateAuthentication, ldap.LDAPResultInsufficientAccessRights):
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return fmt.Errorf("bind: %w", err)
}

// firstRDNValue is "admins" for "cn=admins,ou=groups,dc=example,dc=org".
func firstRDNValue(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 || len(parsed.RDNs[0].Attributes) == 0 {
		return dn
	}
	return parsed.RDNs[0].Attributes[0].Value
}

// MissingGroups looks up groups the way logins name them (a cn under the
// group base, or a DN) and lists those the directory does not have.
// Names it cannot look up (a cn without a group base) come back as
// unchecked.
func (d *Directory) MissingGroups(ctx context.Context, names []string) (missing, unchecked []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, d.c.Timeout)
	defer cancel()
	c, err := d.pool.get(ctx)
	if err != nil {
		return nil, nil, d.unavailable(ctx, err)
	}
	good := false
	defer func() { d.pool.put(c, good) }()
	if d.c.BindDN != "" {
		if err := d.bindService(ctx, c); err != nil {
			return nil, nil, err
		}
	}
	for _, name := range names {
		base, scope, filter := d.c.GroupBase, ldap.ScopeWholeSubtree, "(cn="+ldap.EscapeFilter(name)+")"
		if _, err := ldap.ParseDN(name); err == nil && strings.Contains(name, "=") {
			base, scope, filter = name, ldap.ScopeBaseObject, "(objectClass=*)"
		} else if base == "" {
			unchecked = append(unchecked, name)
			continue
		}
		res, err := d.search(ctx, c, base, scope, filter, []string{"cn"}, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("look up group %s: %w", name, err)
		}
		if len(res) == 0 {
			missing = append(missing, name)
		}
	}
	good = true
	return missing, unchecked, nil
}

// Check connects as the hub will for a login and binds as the service
// account (without one, reads the root DSE anonymously), saying how long
// that took: whether the directory answers, and whether the service
// account's password is right.
func (d *Directory) Check(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d.c.Timeout)
	defer cancel()
	if d.c.BindDN == "" {
		return d.c.Probe(ctx)
	}
	c, err := d.pool.get(ctx)
	if err != nil {
		return time.Since(start), d.unavailable(ctx, err)
	}
	err = d.bindService(ctx, c)
	network := IsNetwork(err) || (err != nil && c.IsClosing())
	d.pool.put(c, err == nil)
	if network {
		err = d.unavailable(ctx, err)
	}
	return time.Since(start), err
}
