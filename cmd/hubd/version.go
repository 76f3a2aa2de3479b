package main

import (
	"context"
	"fmt"

	"github.com/hubd/hubd/internal/version"
	"github.com/hubd/hubd/upgrade"
)

func cmdVersion(_ context.Context, e *env, args []string) int {
	fs := e.flags("version", "version", "Print the hubd version and the database schema version it writes.")
	if code, done := parse(fs, args); done {
		return code
	}
	fmt.Fprintf(e.stdout, "hubd %s (schema %d)\n", version.Version, upgrade.Latest())
	return 0
}
