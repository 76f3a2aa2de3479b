// Package version holds the hubd release string, set at build time with
// -ldflags "-X github.com/hubd/hubd/internal/version.Version=...".
package version

// Version is the hubd release; "dev" builds carry a -dev suffix.
var Version = "0.1.0-dev"
