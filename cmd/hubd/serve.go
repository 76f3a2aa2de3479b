package main

import "context"

func cmdServe(_ context.Context, e *env, _ []string) int { return e.fail("serve is not built yet") }

