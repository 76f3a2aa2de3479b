package main

import "context"

func cmdBackup(_ context.Context, e *env, _ []string) int {
	return e.fail("backup is not built yet")
}
