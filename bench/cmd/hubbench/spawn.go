package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// userModel is the part of GET /hub/api/users/<name> the driver reads.
type userModel struct {
	Servers map[string]struct {
		Ready   bool    `json:"ready"`
		Pending *string `json:"pending"`
	} `json:"servers"`
}

func (a *apiClient) user(name string) (userModel, error) {
	var u userModel
	_, b, err := a.do(http.MethodGet, "/hub/api/users/"+name, nil, http.StatusOK)
	if err != nil {
		return u, err
	}
	if err := json.Unmarshal(b, &u); err != nil {
		return u, fmt.Errorf("user %s: %w", name, err)
	}
	return u, nil
}

// waitUser polls the user until done says so, or the deadline.
func (a *apiClient) waitUser(name string, deadline time.Time, done func(userModel) bool) error {
	for time.Now().Before(deadline) {
		u, err := a.user(name)
		if err != nil {
			return err
		}
		if done(u) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("user %s: timed out", name)
}

// parallel runs f on each name with conc workers and returns the per-call
// durations (sorted) and the wall time.
func parallel(names []string, conc int, f func(string) error) ([]time.Duration, time.Duration, error) {
	var (
		mu    sync.Mutex
		ds    []time.Duration
		first error
		wg    sync.WaitGroup
	)
	jobs := make(chan string)
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				t := time.Now()
				err := f(n)
				mu.Lock()
				ds = append(ds, time.Since(t))
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, n := range names {
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	slices.Sort(ds)
	return ds, time.Since(t0), first
}

// spawnAndStop starts every user's default server through the API from 10
// clients, waits for each to be ready, then stops them all the same way.
func spawnAndStop(a *apiClient, users []string) (spawnDs []time.Duration, spawnWall, stopWall time.Duration, err error) {
	deadline := time.Now().Add(5 * time.Minute)
	spawnDs, spawnWall, err = parallel(users, 10, func(u string) error {
		code, _, err := a.do(http.MethodPost, "/hub/api/users/"+u+"/server", nil, http.StatusCreated, http.StatusAccepted)
		if err != nil || code == http.StatusCreated {
			return err
		}
		return a.waitUser(u, deadline, func(m userModel) bool { return m.Servers[""].Ready })
	})
	_, stopWall, serr := parallel(users, 10, func(u string) error {
		code, _, err := a.do(http.MethodDelete, "/hub/api/users/"+u+"/server", nil, http.StatusNoContent, http.StatusAccepted, http.StatusBadRequest)
		if err != nil || code != http.StatusAccepted {
			return err
		}
		return a.waitUser(u, deadline, func(m userModel) bool { s, ok := m.Servers[""]; return !ok || (!s.Ready && s.Pending == nil) })
	})
	if err == nil {
		err = serr
	}
	return spawnDs, spawnWall, stopWall, err
}

// benchSpawn is P7: 100 spawns from 10 concurrent API clients, each hub
// with its own mock server, then stop-all and an orphan count.
func benchSpawn(ctx context.Context, o *opts, r *report) error {
	n := 100
	if o.quick {
		n = 30
	}
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i+1)
	}
	t := r.table("P7: spawn throughput",
		fmt.Sprintf("%d users' default servers started through `POST /hub/api/users/<u>/server` from 10 concurrent clients, each polled until ready, then all stopped through `DELETE` the same way. hubd: local spawner running bench/cmd/mocksu; JupyterHub 3.0.0: SimpleLocalProcessSpawner running `python3 -m jupyterhub.tests.mocksu`, `concurrent_spawn_limit = 0`, CHP 5.3.0. Orphans: mock servers still alive after stop-all and the hub's exit (then killed). Goal: hubd ≥ 20 spawns/s, zero orphans, ≤ 50 ms per spawn over the server's own start (mocksu started directly the same way, polled every millisecond).", n),
		[]string{"hubd", "JupyterHub 3.0"}, [2]string{"hubd", "JupyterHub 3.0"})
	h, err := newHubd(o, filepath.Join(o.work, "hubd-spawn"))
	if err != nil {
		return err
	}
	if err := h.seedDB(ctx, seed{users: n}); err != nil {
		return err
	}
	jh, err := newJH(o, filepath.Join(o.work, "jh-spawn"), "dummy")
	if err != nil {
		return err
	}
	for run := 0; run < o.runs; run++ {
		p, _, err := h.start(o.hubd, "hubd-spawn")
		if err != nil {
			return err
		}
		ds, wall, stop, err := spawnAndStop(newAPI(h.base(), h.token), users)
		p.stop(30 * time.Second)
		if err != nil {
			return fmt.Errorf("hubd: %w", err)
		}
		record(t, "hubd", n, ds, wall, stop, reapOrphans(o.mocksu))
		own, err := ownStarts(o.mocksu, n)
		if err != nil {
			return fmt.Errorf("mocksu alone: %w", err)
		}
		t.add("mocksu's own start p50 ms (no hub)", "hubd", percentile(own, 0.5))
		t.add("per spawn p50 over the server's own start ms", "hubd", percentile(ds, 0.5)-percentile(own, 0.5))

		p, _, err = jh.start("jupyterhub-spawn")
		if err != nil {
			return err
		}
		a := newAPI(jh.base(), jh.token)
		if run == 0 {
			body, _ := json.Marshal(map[string]any{"usernames": users})
			if _, _, err := a.do(http.MethodPost, "/hub/api/users", body, http.StatusCreated); err != nil {
				jh.stop(p)
				return err
			}
		}
		ds, wall, stop, err = spawnAndStop(a, users)
		jh.stop(p)
		if err != nil {
			return fmt.Errorf("jupyterhub: %w", err)
		}
		record(t, "JupyterHub 3.0", n, ds, wall, stop, reapOrphans("jupyterhub.tests.mocksu"))
	}
	return nil
}

// ownStarts starts n mock servers directly, 10 at a time, each polled
// every millisecond until it answers and then killed: the server's own
// start time, on which a spawn through the hub adds its overhead.
func ownStarts(mocksu string, n int) ([]time.Duration, error) {
	var (
		mu  sync.Mutex
		out []time.Duration
	)
	_, _, err := parallel(make([]string, n), 10, func(string) error {
		port, err := freePort()
		if err != nil {
			return err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		cmd := exec.Command(mocksu)
		cmd.Env = append(os.Environ(), "JUPYTERHUB_SERVICE_URL="+url)
		t := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		c := &http.Client{Timeout: time.Second}
		for deadline := t.Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			if resp, err := c.Get(url); err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("mocksu on port %d did not answer within 30 s", port)
			}
		}
		mu.Lock()
		out = append(out, time.Since(t))
		mu.Unlock()
		return nil
	})
	slices.Sort(out)
	return out, err
}

func record(t *table, arm string, n int, ds []time.Duration, wall, stop time.Duration, orphans int) {
	t.add("spawns/s", arm, float64(n)/wall.Seconds())
	t.add(fmt.Sprintf("wall time for %d spawns s", n), arm, wall.Seconds())
	t.add("per spawn p50 ms", arm, percentile(ds, 0.5))
	t.add("per spawn max ms", arm, float64(ds[len(ds)-1])/1e6)
	t.add("stop-all wall time s", arm, stop.Seconds())
	t.add("orphans after stop-all", arm, float64(orphans))
}
