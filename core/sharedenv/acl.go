package sharedenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// POSIX ACLs are stored by Linux as extended attributes in the layout
// libacl writes (style.md §1.6): a little-endian uint32 version 2, then
// 8-byte entries of uint16 tag, uint16 permissions and uint32 id, sorted
// by tag and then id. Hand-rolled because the Go ACL libraries are either
// unmaintained or need cgo and libacl.
const (
	xattrAccessACL  = "system.posix_acl_access"
	xattrDefaultACL = "system.posix_acl_default"

	aclVersion   = 2
	aclEntrySize = 8
	aclUndefined = 0xFFFFFFFF // id of entries that do not name a user or group
)

// aclTag is the kind of an ACL entry.
type aclTag uint16

const (
	tagUserObj  aclTag = 0x01
	tagUser     aclTag = 0x02
	tagGroupObj aclTag = 0x04
	tagGroup    aclTag = 0x08
	tagMask     aclTag = 0x10
	tagOther    aclTag = 0x20
)

const permRWX = 7

type aclEntry struct {
	Tag  aclTag
	Perm uint16 // rwx as 4|2|1
	ID   uint32
}

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

var errBadACL = errors.New("malformed POSIX ACL xattr")

// encode returns the xattr value of a.
func (a acl) encode() []byte {
	sorted := slices.Clone(a)
	slices.SortFunc(sorted, func(x, y aclEntry) int {
		if x.Tag != y.Tag {
			return int(x.Tag) - int(y.Tag)
		}
		switch {
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
	b := make([]byte, 4, 4+aclEntrySize*len(sorted))
	binary.LittleEndian.PutUint32(b, aclVersion)
	for _, e := range sorted {
		b = binary.LittleEndian.AppendUint16(b, uint16(e.Tag))
		b = binary.LittleEndian.AppendUint16(b, e.Perm)
		b = binary.LittleEndian.AppendUint32(b, e.ID)
	}
	return b
}

// decodeACL parses an xattr value.
func decodeACL(b []byte) (acl, error) {
	if len(b) < 4 || (len(b)-4)%aclEntrySize != 0 {
		return nil, fmt.Errorf("%w: %d bytes", errBadACL, len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != aclVersion {
		return nil, fmt.Errorf("%w: version %d", errBadACL, v)
	}
	a := make(acl, 0, (len(b)-4)/aclEntrySize)
	for p := b[4:]; len(p) > 0; p = p[aclEntrySize:] {
		a = append(a, aclEntry{
			Tag:  aclTag(binary.LittleEndian.Uint16(p)),
			Perm: binary.LittleEndian.Uint16(p[2:]),
			ID:   binary.LittleEndian.Uint32(p[4:]),
		})
	}
	return a, nil
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
