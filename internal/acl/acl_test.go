package acl

import (
	"bytes"
	"encoding/hex"
	"slices"
	"testing"
)

// TestEncodeGolden pins the byte layout (version 2, then tag, perm,
// id per entry, little-endian, sorted by tag then id) of
// u::rw-,g::rw-,g:1001:rw-,g:1002:rw-,m::rw-,o::---, with the groups
// given out of order and one twice.
func TestEncodeGolden(t *testing.T) {
	got := Encode(GroupAccess(1002, 1001, 1002))
	want, _ := hex.DecodeString("02000000" +
		"01000600ffffffff" + // USER_OBJ rw
		"04000600ffffffff" + // GROUP_OBJ rw
		"08000600e9030000" + // GROUP 1001 rw
		"08000600ea030000" + // GROUP 1002 rw
		"10000600ffffffff" + // MASK rw
		"20000000ffffffff") // OTHER ---
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want)
	}
	back, err := Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if g := NamedGroups(back); !slices.Equal(g, []uint32{1001, 1002}) {
		t.Fatalf("named groups %v", g)
	}
}

func TestGroupAccessWithoutGroupsHasNoMask(t *testing.T) {
	for _, e := range GroupAccess() {
		if e.Tag == TagMask {
			t.Fatal("a mask without named entries changes nothing and getfacl would show it")
		}
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {2, 0, 0}, {1, 0, 0, 0}, {2, 0, 0, 0, 1}} {
		if _, err := Decode(b); err == nil {
			t.Errorf("Decode(%x) accepted", b)
		}
	}
}
