package main

import (
	"context"
	"fmt"

	"github.com/hubd/hubd/internal/version"
	"github.com/hubd/hubd/upgrade"
)

func cmdVersion(_ context.Context, e *env, args []string) int {
	fs := e.flags("version", "version", "Print the hubd release, the commit it was built from, the database schema version it writes and the Go version.")
	if code, done := parse(fs, args); done {
		return code
	}
	fmt.Fprintf(e.stdout, "hubd %s (commit %s, schema %d, %s)\n", version.Version, version.CommitOrUnknown(), upgrade.Latest(), version.Go())
	return 0
}
