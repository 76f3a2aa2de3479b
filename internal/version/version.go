// Package version identifies a hubd build: the release, the commit it was
// built from and the Go toolchain. `make build` sets Version and Commit with
// -ldflags "-X github.com/hubd/hubd/internal/version.Version=... -X ...Commit=...",
// from scripts/version.sh.
package version

import (
	"runtime"
	"runtime/debug"
)

// Base is the release being worked on. scripts/version.sh reads it: builds
// between tags are Base~dev.<commits since the last tag>+g<commit>, which
// sort before Base itself, so raise it right after tagging a release.
const Base = "0.2.0"

// Version is the release, set at build time; a plain `go build` is Base~dev.
var Version = Base + "~dev"

// Commit is the abbreviated commit the binary was built from, set at build
// time; a plain `go build` in a git checkout gets it from the build info.
var Commit = ""

// CommitOrUnknown is Commit, else the VCS revision Go recorded, else
// "unknown".
func CommitOrUnknown() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "unknown"
}

// Go is the toolchain the binary was built with.
func Go() string { return runtime.Version() }
