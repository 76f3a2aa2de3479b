package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/core/web"
)

// BenchmarkPublicAPIUnderAdminLoad measures the hub's public API (GET of a
// user model, the idle culler's and scripts' bread and butter) from 4
// clients, once with the admin socket idle and once with 100 admin clients
// calling status and sessions as fast as they can. Compare the two p99-ms
// figures (the goal: within 10 %).
func BenchmarkPublicAPIUnderAdminLoad(b *testing.B) {
	e := newTestEnv(b)
	for _, u := range []string{"alice", "bob", "carol"} {
		e.start(b, u)
	}
	ctx := context.Background()
	admin, err := e.store.EnsureUser(ctx, "root-api", true)
	if err != nil {
		b.Fatal(err)
	}
	token := web.NewToken()
	scopes, _ := json.Marshal([]string{"inherit"})
	if _, err := e.store.CreateToken(ctx, store.Token{UserID: admin.ID, Hash: store.HashToken(token), Prefix: token[:4],
		Kind: store.TokenAPI, Scopes: string(scopes)}); err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

	// "refreshing": 100 consoles each refreshing once a second (hubtui's
	// default is every 2 s); "flooding": 100 clients calling back to back.
	for _, mode := range []string{"admin-idle", "admin-100-refreshing", "admin-100-flooding"} {
		b.Run(mode, func(b *testing.B) {
			stop := make(chan struct{})
			var load sync.WaitGroup
			if mode != "admin-idle" {
				for i := 0; i < 100; i++ {
					load.Go(func() {
						c := &client.Client{Socket: e.cfg.Admin.Socket}
						for n := 0; ; n++ {
							select {
							case <-stop:
								return
							default:
							}
							if n%2 == 0 {
								_, _ = c.Status(ctx)
							} else {
								_, _ = c.Sessions(ctx, "")
							}
							if mode == "admin-100-refreshing" && n%2 == 1 {
								select {
								case <-stop:
									return
								case <-time.After(time.Second):
								}
							}
						}
					})
				}
			}
			var next atomic.Int64
			lat := make([][]time.Duration, 4)
			var wg sync.WaitGroup
			b.ResetTimer()
			for i := range lat {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						req, _ := http.NewRequest("GET", e.url+"/hub/api/users/alice", nil)
						req.Header.Set("Authorization", "token "+token)
						t0 := time.Now()
						resp, err := hc.Do(req)
						if err != nil || resp.StatusCode != 200 {
							b.Errorf("public API: %v %v", err, resp)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						lat[i] = append(lat[i], time.Since(t0))
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			close(stop)
			load.Wait()
			reportLatency(b, lat, false)
		})
	}
}
