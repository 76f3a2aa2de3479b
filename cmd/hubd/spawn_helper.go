package main

import "context"

func cmdSpawnHelper(_ context.Context, e *env, _ []string) int {
	return e.fail("spawn-helper is not built yet")
}
