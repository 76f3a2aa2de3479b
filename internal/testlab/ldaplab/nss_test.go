package ldaplab

import (
	"bytes"
	"testing"
)

func TestWithLDAP(t *testing.T) {
	conf := []byte("# comment: passwd: files\npasswd:         files systemd\ngroup:          files systemd  \n" +
		"shadow:\tfiles\ngshadow:        files systemd\nhosts:          files dns\nnetgroup: nis ldap\n")
	orig := bytes.Clone(conf)
	want := "# comment: passwd: files\npasswd:         files systemd ldap\ngroup:          files systemd ldap\n" +
		"shadow:\tfiles ldap\ngshadow:        files systemd\nhosts:          files dns\nnetgroup: nis ldap\n"
	got := withLDAP(conf)
	if string(got) != want {
		t.Errorf("withLDAP:\n%s\nwant:\n%s", got, want)
	}
	if !bytes.Equal(conf, orig) {
		t.Errorf("withLDAP changed its input:\n%s", conf)
	}
	if again := withLDAP(got); !bytes.Equal(again, got) {
		t.Errorf("withLDAP twice:\n%s", again)
	}
}
