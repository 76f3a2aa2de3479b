package sharedenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	posixacl "github.com/hubd/hubd/internal/acl"

	"golang.org/x/sys/unix"
)

// styleACL is a default ACL given deliberately out of order:
// u::rwx,u:1234:r-x,g::r-x,m::r-x,o::---.
var styleACL = acl{
	{Tag: tagOther, Perm: 0, ID: aclUndefined},
	{Tag: tagMask, Perm: 5, ID: aclUndefined},
	{Tag: tagUser, Perm: 5, ID: 1234},
	{Tag: tagGroupObj, Perm: 5, ID: aclUndefined},
	{Tag: tagUserObj, Perm: 7, ID: aclUndefined},
}

var styleACLBytes = []byte{
	0x02, 0x00, 0x00, 0x00, // version 2
	0x01, 0x00, 0x07, 0x00, 0xff, 0xff, 0xff, 0xff, // user::rwx
	0x02, 0x00, 0x05, 0x00, 0xd2, 0x04, 0x00, 0x00, // user:1234:r-x
	0x04, 0x00, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff, // group::r-x
	0x10, 0x00, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff, // mask::r-x
	0x20, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, // other::---
}

var sharedACLBytes = []byte{
	0x02, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x07, 0x00, 0xff, 0xff, 0xff, 0xff, // user::rwx
	0x04, 0x00, 0x07, 0x00, 0xff, 0xff, 0xff, 0xff, // group::rwx
	0x20, 0x00, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff, // other::r-x
}

func TestEnvACLEncodeGolden(t *testing.T) {
	for name, c := range map[string]struct {
		a    acl
		want []byte
	}{
		"style example sorted": {styleACL, styleACLBytes},
		"shared default":       {sharedDefaultACL, sharedACLBytes},
		"named entries by id": {acl{
			{Tag: tagGroup, Perm: 7, ID: 300}, {Tag: tagGroup, Perm: 6, ID: 20},
		}, []byte{
			2, 0, 0, 0,
			0x08, 0, 6, 0, 20, 0, 0, 0,
			0x08, 0, 7, 0, 0x2c, 0x01, 0, 0,
		}},
	} {
		if got := c.a.encode(); !bytes.Equal(got, c.want) {
			t.Errorf("%s: encode = % x, want % x", name, got, c.want)
		}
	}
}

func TestEnvACLDecode(t *testing.T) {
	got, err := decodeACL(styleACLBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.encode(), styleACLBytes) || len(got) != 5 || got[1] != (aclEntry{Tag: tagUser, Perm: 5, ID: 1234}) {
		t.Errorf("decode = %+v", got)
	}
	for name, b := range map[string][]byte{
		"empty":       {},
		"short entry": styleACLBytes[:10],
		"version 1":   append([]byte{1, 0, 0, 0}, styleACLBytes[4:]...),
	} {
		if _, err := decodeACL(b); !errors.Is(err, posixacl.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestEnvACLGroupRWX(t *testing.T) {
	if !sharedDefaultACL.groupHas(permRWX) {
		t.Error("shared default ACL does not grant group rwx")
	}
	if styleACL.groupHas(permRWX) {
		t.Error("g::r-x counted as group rwx")
	}
	maskCaps := acl{{Tag: tagUserObj, Perm: 7, ID: aclUndefined}, {Tag: tagGroupObj, Perm: 7, ID: aclUndefined}, {Tag: tagMask, Perm: 5, ID: aclUndefined}, {Tag: tagOther, Perm: 5, ID: aclUndefined}}
	if maskCaps.groupHas(permRWX) {
		t.Error("g::rwx under m::r-x counted as group rwx")
	}

	fixed := styleACL.withGroup(permRWX)
	if !fixed.groupHas(permRWX) {
		t.Errorf("withGroup = %+v: group still lacks rwx", fixed)
	}
	if !bytes.Contains(fixed.encode(), []byte{0x02, 0x00, 0x05, 0x00, 0xd2, 0x04}) {
		t.Error("withGroup dropped the named user entry")
	}
	if styleACL[3].Perm != 5 {
		t.Error("withGroup changed its receiver")
	}
	if got := (acl{{Tag: tagGroupObj, Perm: 5, ID: aclUndefined}}).withGroup(permRWX); !bytes.Equal(got.encode(), sharedACLBytes) {
		t.Errorf("incomplete ACL not replaced: % x", got.encode())
	}
}

// TestEnvACLMatchesLibacl cross-checks the encoding with libacl both ways:
// what setfacl writes decodes to the expected entries, and what we write
// getfacl prints as intended.
func TestEnvACLMatchesLibacl(t *testing.T) {
	if _, err := exec.LookPath("setfacl"); err != nil {
		t.Fatal("setfacl and getfacl are needed: apt-get install acl")
	}
	dir := t.TempDir()
	byLibacl := filepath.Join(dir, "libacl")
	byUs := filepath.Join(dir, "ours")
	for _, d := range []string{byLibacl, byUs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("setfacl", "-d", "-m", "u::rwx,u:1234:r-x,g::r-x,m::r-x,o::---", byLibacl).CombinedOutput(); err != nil {
		t.Fatalf("setfacl: %v: %s", err, out)
	}
	buf := make([]byte, 256)
	n, err := unix.Getxattr(byLibacl, xattrDefaultACL, buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], styleACLBytes) {
		t.Errorf("setfacl wrote % x, we encode % x", buf[:n], styleACLBytes)
	}

	if err := unix.Setxattr(byUs, xattrDefaultACL, styleACL.encode(), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(byUs, posixacl.Xattr, acl{
		{Tag: tagUserObj, Perm: 7, ID: aclUndefined}, {Tag: tagGroupObj, Perm: 5, ID: aclUndefined}, {Tag: tagGroup, Perm: 7, ID: 4321},
		{Tag: tagMask, Perm: 7, ID: aclUndefined}, {Tag: tagOther, Perm: 0, ID: aclUndefined},
	}.encode(), 0); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("getfacl", "-pn", byUs).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"user::rwx", "group::r-x", "group:4321:rwx", "mask::rwx", "other::---",
		"default:user::rwx", "default:user:1234:r-x", "default:group::r-x", "default:mask::r-x", "default:other::---",
	} {
		if !strings.Contains("\n"+string(out), "\n"+line+"\n") {
			t.Errorf("getfacl lacks %q:\n%s", line, out)
		}
	}
}
