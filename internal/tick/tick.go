// Package tick runs background work at a fixed interval.
package tick

import (
	"context"
	"time"
)

// Every calls f every interval until ctx ends; the first call is one
// interval from now. A call that takes longer than the interval delays
// the next one instead of queueing more.
func Every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
