package admin_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/internal/testutil"
)

// BenchmarkSocket100Clients runs 100 clients at once on the real socket,
// each on its own connection, against a hub with three running servers,
// and reports the latency percentiles of each command (the goal:
// p99 ≤ 50 ms). BenchmarkPublicAPIUnderAdminLoad measures what it does to
// the public API.
func BenchmarkSocket100Clients(b *testing.B) {
	e := newTestEnv(b)
	for _, u := range []string{"alice", "bob", "carol"} {
		e.start(b, u)
	}
	const clients = 100
	ctx := context.Background()
	calls := map[string]func(c *client.Client) error{
		"status": func(c *client.Client) error { _, err := c.Status(ctx); return err },
		"whoami": func(c *client.Client) error { _, err := c.WhoAmI(ctx); return err },
		"sessions": func(c *client.Client) error {
			s, err := c.Sessions(ctx, "")
			if err == nil && len(s.Sessions) != 3 {
				b.Errorf("%d sessions", len(s.Sessions))
			}
			return err
		},
	}
	for _, name := range []string{"whoami", "status", "sessions"} {
		call := calls[name]
		b.Run(name, func(b *testing.B) {
			cs := make([]*client.Client, clients)
			for i := range cs {
				cs[i] = &client.Client{Socket: e.cfg.Admin.Socket}
				if err := call(cs[i]); err != nil { // opens the connection
					b.Fatal(err)
				}
			}
			lat := make([][]time.Duration, clients)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for i := range clients {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						if err := call(cs[i]); err != nil {
							b.Error(err)
							return
						}
						lat[i] = append(lat[i], time.Since(t0))
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			reportLatency(b, lat, true)
		})
	}
}

// reportLatency reports p50 and p99 (and the maximum) of latencies
// gathered by several goroutines, in milliseconds.
func reportLatency(b *testing.B, lat [][]time.Duration, withMax bool) {
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	if withMax {
		b.ReportMetric(pct(1), "max-ms")
	}
}

// BenchmarkUsersAll fetches every user of a hub with 10 000 of them, a
// page of 1000 at a time, over the real socket, as hubtui's Users view
// and hubd user list do.
func BenchmarkUsersAll(b *testing.B) {
	e := newTestEnv(b)
	const n = 10000
	db := testutil.RawDB(b, e.cfg.Data.DB)
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := tx.Exec(`INSERT INTO users (name, admin, admin_rule, created, last_activity, cookie_id) VALUES (?, ?, ?, ?, ?, ?)`,
			fmt.Sprintf("hubtest-u%05d", i), i%50 == 0, map[bool]string{true: "auth.admin_group: lab"}[i%50 == 0],
			"2026-03-01T00:00:00.000000Z", "2026-03-15T12:00:00.000000Z", fmt.Sprintf("c%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	c := &client.Client{Socket: e.cfg.Admin.Socket}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		users, err := c.AllUsers(ctx, "")
		if err != nil || len(users) != n {
			b.Fatalf("%d users, %v", len(users), err)
		}
	}
}
