package main

import (
	"os"
	"strings"
	"testing"
)

// hubd(8), shipped by the Debian package, describes every command (roff
// writes '-' as '\-'); the bash completion reads them from --help itself.
func TestManPageListsEveryCommand(t *testing.T) {
	page, err := os.ReadFile("../../scripts/deb/man/hubd.8")
	if err != nil {
		t.Fatal(err)
	}
	for name := range commands() {
		if !strings.Contains(string(page), ".B "+strings.ReplaceAll(name, "-", `\-`)) &&
			!strings.Contains(string(page), ".BR "+strings.ReplaceAll(name, "-", `\-`)) {
			t.Errorf("hubd.8 has no entry for %q", name)
		}
	}
}
