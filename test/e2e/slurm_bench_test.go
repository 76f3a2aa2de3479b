package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testlab/slurmlab"
)

// benchUsers is how many servers BenchmarkSpawn starts at once.
const benchUsers = 20

// BenchmarkSpawn measures the time from the start request to the server
// answering through the proxy, for a server beside the hub (the sudo
// spawner) and for a Slurm job, one at a time and twenty at once. Each
// start asks the API for the server with a profile and waits for its
// answer (201 once the server is ready), as the spawn page's click does.
func BenchmarkSpawn(b *testing.B) {
	if !env.ready {
		b.Fatalf("end-to-end setup failed: %v", env.setupErr)
	}
	// Twenty jobs share the two cores of the lab's nodes.
	slurmlab.Start(b, slurmlab.Options{OverSubscribe: benchUsers})
	h := startSlurmHub(b)
	users := make([]string, benchUsers)
	for i := range users {
		users[i] = fmt.Sprintf("hubtest-e2e-b%02d", i+1)
		if err := env.host.User(users[i], "", group); err != nil {
			b.Fatal(err)
		}
	}
	if code, body := h.api(b, http.MethodPost, "/users", h.admin, map[string]any{"usernames": users}); code != http.StatusCreated {
		b.Fatalf("create the users: %d %s", code, body)
	}
	start := func(name, profile string) (time.Duration, error) {
		t0 := time.Now()
		code, body := h.api(b, http.MethodPost, "/users/"+name+"/server", h.admin, map[string]string{"profile": profile})
		// 202: still starting after the API's wait; follow the user model.
		for code == http.StatusAccepted {
			time.Sleep(50 * time.Millisecond)
			var m struct {
				Pending *string
				Server  *string
			}
			_, model := h.api(b, http.MethodGet, "/users/"+name, h.admin, nil)
			if json.Unmarshal(model, &m) == nil && m.Pending == nil {
				code = http.StatusCreated
				if m.Server == nil {
					return 0, fmt.Errorf("start %s (%s) failed: %s", name, profile, model)
				}
			}
		}
		if code != http.StatusCreated {
			return 0, fmt.Errorf("start %s (%s): %d %s", name, profile, code, body)
		}
		resp, err := http.Get(h.public + "/user/" + name + "/api")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s's server through the proxy: %d", name, resp.StatusCode)
		}
		return time.Since(t0), nil
	}
	stop := func(name string) {
		if code, body := h.api(b, http.MethodDelete, "/users/"+name+"/server", h.admin, nil); code != http.StatusNoContent {
			b.Fatalf("stop %s: %d %s", name, code, body)
		}
	}
	for _, profile := range []string{"local", "anywhere"} {
		kind := map[string]string{"local": "sudo", "anywhere": "slurm"}[profile]
		b.Run(kind, func(b *testing.B) {
			for range b.N {
				if _, err := start(users[0], profile); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				stop(users[0])
				b.StartTimer()
			}
		})
		// Twenty at once: on a small machine the servers' own start-up
		// (Python importing Jupyter) dominates, so the sudo spawner's run
		// is the measure of what Slurm adds.
		b.Run(fmt.Sprintf("%s-%d-at-once", kind, benchUsers), func(b *testing.B) {
			var lat []time.Duration
			for range b.N {
				var mu sync.Mutex
				var wg sync.WaitGroup
				errs := make(chan error, len(users))
				for _, u := range users {
					wg.Go(func() {
						d, err := start(u, profile)
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.StopTimer()
				for _, u := range users {
					stop(u)
				}
				b.StartTimer()
			}
			slices.Sort(lat)
			b.ReportMetric(lat[len(lat)/2].Seconds(), "s-median-ready")
			b.ReportMetric(lat[len(lat)-1].Seconds(), "s-last-ready")
		})
	}
}
