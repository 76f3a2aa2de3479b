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

const permRWX = posixacl.Read | posixacl.Write | posixacl.Exec

type aclEntry = posixacl.Entry

// acl is a POSIX ACL, in any order; encode sorts it.
type acl []aclEntry

// sharedDefaultACL is what every directory of the environment carries as
// its default ACL: new files and directories get group rwx whatever the
// creator's umask (the kernel then caps the group bits only by the mode
// passed to open/mkdir), others may read. It has no named entries, so new
// files keep plain modes and `ls -l` shows the truth.
var sharedDefaultACL = acl{
	{Tag: tagUserObj, Perm: permRWX, ID: aclUndefined},
	{Tag: tagGroupObj, Perm: permRWX, ID: aclUndefined},
	{Tag: tagOther, Perm: 5, ID: aclUndefined},
}

// encode returns the xattr value of a.
func (a acl) encode() []byte { return posixacl.Encode(a) }

// decodeACL parses an xattr value.
func decodeACL(b []byte) (acl, error) {
	es, err := posixacl.Decode(b)
	return acl(es), err
}

// groupRWX reports whether a default ACL gives the owning group rwx on
// what is created below it. With a mask, the mask caps the group too.
func (a acl) groupRWX() bool {
	group := false
	for _, e := range a {
		switch e.Tag {
		case tagGroupObj:
			group = e.Perm&permRWX == permRWX
		case tagMask:
			if e.Perm&permRWX != permRWX {
				return false
			}
		}
	}
	return group
}

// withGroupRWX returns a copy of a that grants the owning group rwx,
// keeping any named entries an administrator added. An ACL without the
// three required entries is replaced by sharedDefaultACL.
func (a acl) withGroupRWX() acl {
	var required int
	for _, e := range a {
		if e.Tag == tagUserObj || e.Tag == tagGroupObj || e.Tag == tagOther {
			required++
		}
	}
	if required != 3 {
		return sharedDefaultACL
	}
	out := slices.Clone(a)
	for i := range out {
		if out[i].Tag == tagGroupObj || out[i].Tag == tagMask {
			out[i].Perm = permRWX
		}
	}
	return out
}
