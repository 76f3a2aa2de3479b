package sharedenv

import (
	"slices"

	posixacl "github.com/hubd/hubd/internal/acl"
)

// The xattr layout lives in internal/acl; this file holds what the shared
// environment wants of a default ACL.
const (
	xattrDefaultACL = posixacl.DefaultXattr
	aclUndefined    = 0xFFFFFFFF // id of entries that do not name a user or group

	tagUserObj  = posixacl.TagUserObj
	tagUser     = posixacl.TagUser
	tagGroupObj = posixacl.TagGroupObj
	tagGroup    = posixacl.TagGroup
	tagMask     = posixacl.TagMask
	tagOther    = posixacl.TagOther
)

const (
	permRWX = posixacl.Read | posixacl.Write | posixacl.Exec
	permRX  = posixacl.Read | posixacl.Exec
)

type aclEntry = posixacl.Entry

// acl is a POSIX ACL, in any order; encode sorts it.
type acl []aclEntry

// sharedDefaultACL is what every directory of the environment carries as
// its default ACL: new files and directories get group rwx whatever the
// creator's umask (the kernel then caps the group bits only by the mode
// passed to open/mkdir), others may read. It has no named entries, so new
// files keep plain modes and `ls -l` shows the truth.
var sharedDefaultACL = defaultACL(permRWX, permRX)

// defaultACL is a default ACL without named entries that gives the owning
// group and others the permissions given.
func defaultACL(group, other uint16) acl {
	return acl{
		{Tag: tagUserObj, Perm: permRWX, ID: aclUndefined},
		{Tag: tagGroupObj, Perm: group, ID: aclUndefined},
		{Tag: tagOther, Perm: other, ID: aclUndefined},
	}
}

// encode returns the xattr value of a.
func (a acl) encode() []byte { return posixacl.Encode(a) }

// decodeACL parses an xattr value.
func decodeACL(b []byte) (acl, error) {
	es, err := posixacl.Decode(b)
	return acl(es), err
}

// groupHas reports whether a default ACL gives the owning group at least
// perm on what is created below it. With a mask, the mask caps the group
// too.
func (a acl) groupHas(perm uint16) bool {
	group := false
	for _, e := range a {
		switch e.Tag {
		case tagGroupObj:
			group = e.Perm&perm == perm
		case tagMask:
			if e.Perm&perm != perm {
				return false
			}
		}
	}
	return group
}

// withGroup returns a copy of a that grants the owning group perm,
// keeping any named entries an administrator added. An ACL without the
// three required entries is replaced by the plain one for perm.
func (a acl) withGroup(perm uint16) acl {
	var required int
	for _, e := range a {
		if e.Tag == tagUserObj || e.Tag == tagGroupObj || e.Tag == tagOther {
			required++
		}
	}
	if required != 3 {
		return defaultACL(perm, permRX)
	}
	out := slices.Clone(a)
	for i := range out {
		if out[i].Tag == tagGroupObj || out[i].Tag == tagMask {
			out[i].Perm |= perm
		}
	}
	return out
}
