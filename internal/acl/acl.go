// Package acl encodes and decodes Linux POSIX ACLs in the layout of the
// system.posix_acl_access and system.posix_acl_default extended
// attributes: the admin socket is opened to two groups without the hub
// being a member of either, and the shared environment's directories carry
// a default ACL. Hand-rolled on x/sys: the Go ACL libraries are
// unmaintained or need cgo (libacl).
package acl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// Xattr is the attribute that holds a file's access ACL; DefaultXattr a
// directory's default ACL, inherited by what is created in it.
const (
	Xattr        = "system.posix_acl_access"
	DefaultXattr = "system.posix_acl_default"
)

// Entry tags, as the kernel defines them.
const (
	TagUserObj  = 0x01
	TagUser     = 0x02
	TagGroupObj = 0x04
	TagGroup    = 0x08
	TagMask     = 0x10
	TagOther    = 0x20
)

// Permission bits of an entry.
const (
	Read  = 4
	Write = 2
	Exec  = 1
)

const (
	version   = 2
	undefined = 0xFFFFFFFF // id of the entries that name no user or group
	entrySize = 8
)

// Entry is one ACL entry. ID is only meaningful for TagUser and TagGroup.
type Entry struct {
	Tag  uint16
	Perm uint16
	ID   uint32
}

// Encode renders entries in the xattr layout: a little-endian version
// word, then the entries sorted by tag and id, which the kernel requires.
// Duplicate named entries are merged.
func Encode(entries []Entry) []byte {
	es := slices.Clone(entries)
	for i := range es {
		if es[i].Tag != TagUser && es[i].Tag != TagGroup {
			es[i].ID = undefined
		}
	}
	slices.SortFunc(es, func(a, b Entry) int {
		if a.Tag != b.Tag {
			return int(a.Tag) - int(b.Tag)
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	es = slices.CompactFunc(es, func(a, b Entry) bool { return a.Tag == b.Tag && a.ID == b.ID })
	b := make([]byte, 4, 4+entrySize*len(es))
	binary.LittleEndian.PutUint32(b, version)
	for _, e := range es {
		b = binary.LittleEndian.AppendUint16(b, e.Tag)
		b = binary.LittleEndian.AppendUint16(b, e.Perm)
		b = binary.LittleEndian.AppendUint32(b, e.ID)
	}
	return b
}

// ErrMalformed means an xattr value is not a POSIX ACL.
var ErrMalformed = errors.New("malformed POSIX ACL xattr")

// Decode parses an xattr value.
func Decode(b []byte) ([]Entry, error) {
	if len(b) < 4 || (len(b)-4)%entrySize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of entries", ErrMalformed, len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, v, version)
	}
	var out []Entry
	for p := b[4:]; len(p) > 0; p = p[entrySize:] {
		out = append(out, Entry{
			Tag:  binary.LittleEndian.Uint16(p),
			Perm: binary.LittleEndian.Uint16(p[2:]),
			ID:   binary.LittleEndian.Uint32(p[4:]),
		})
	}
	return out, nil
}

// GroupAccess is the access ACL that gives the owner, the owning group
// and each of gids read and write access and others nothing: mode 0660
// with named groups.
func GroupAccess(gids ...uint32) []Entry {
	const rw = Read | Write
	es := []Entry{{Tag: TagUserObj, Perm: rw}, {Tag: TagGroupObj, Perm: rw}, {Tag: TagOther}}
	for _, g := range gids {
		es = append(es, Entry{Tag: TagGroup, Perm: rw, ID: g})
	}
	if len(gids) > 0 {
		// The mask caps every named entry and the owning group; it is
		// mandatory once a named entry exists.
		es = append(es, Entry{Tag: TagMask, Perm: rw})
	}
	return es
}

// ErrUnsupported means the file system does not store POSIX ACLs.
var ErrUnsupported = errors.New("the file system does not support POSIX ACLs")

// Set writes the access ACL of path. The owner of a file may do this
// without belonging to the groups it names.
func Set(path string, entries []Entry) error {
	err := unix.Setxattr(path, Xattr, Encode(entries), 0)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
		return fmt.Errorf("set ACL on %s: %w: %w", path, ErrUnsupported, err)
	}
	if err != nil {
		return fmt.Errorf("set ACL on %s: %w", path, err)
	}
	return nil
}

// Get reads the access ACL of path; nil without error when it has none
// beyond its mode bits.
func Get(path string) ([]Entry, error) {
	buf := make([]byte, 4+entrySize*32)
	n, err := unix.Getxattr(path, Xattr, buf)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil, nil
	}
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Getxattr(path, Xattr, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Getxattr(path, Xattr, buf)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read ACL of %s: %w", path, err)
	}
	return Decode(buf[:n])
}

// NamedGroups lists the gids of the named group entries with write access.
func NamedGroups(entries []Entry) []uint32 {
	var out []uint32
	for _, e := range entries {
		if e.Tag == TagGroup && e.Perm&Write != 0 {
			out = append(out, e.ID)
		}
	}
	return out
}
