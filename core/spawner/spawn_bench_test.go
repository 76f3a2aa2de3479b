package spawner

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testlab/dockerlab"
	"github.com/hubd/hubd/internal/testutil"
)

// benchServer is the server both spawners start: Python's HTTP server on
// the address JUPYTERHUB_SERVICE_URL names, as jupyterhub-singleuser
// binds, without Jupyter's own start-up time.
const benchServer = `
import http.server, os, urllib.parse
u = urllib.parse.urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
http.server.HTTPServer((u.hostname, u.port), http.server.BaseHTTPRequestHandler).serve_forever()
`

// benchUsers are members of the sudo tests' group, one per client.
func benchUsers(b *testing.B, n int) []string {
	host.get(b) // the sudo rule and helper; its group
	var h testutil.Host
	b.Cleanup(h.Cleanup)
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("hubtest-spb-%d", i)
		if err := h.User(users[i], "", spGroup); err != nil {
			b.Fatal(err)
		}
	}
	return users
}

// spawnOnce starts a server, waits until it answers HTTP (what the hub's
// readiness probe does) and stops it; it returns the time to ready.
func spawnOnce(b *testing.B, sp Spawner, userName, logDir string) time.Duration {
	port, err := FreePort()
	if err != nil {
		b.Fatal(err)
	}
	r := Request{
		User: userName, Command: []string{"/usr/bin/python3"}, Args: []string{"-c", benchServer},
		Env:  map[string]string{"JUPYTERHUB_SERVICE_URL": fmt.Sprintf("http://127.0.0.1:%d/", port), "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api"},
		Path: systemPath, Port: port, LogPath: filepath.Join(logDir, userName+".log"),
	}
	ctx := context.Background()
	t0 := time.Now()
	st, err := sp.Start(ctx, r)
	if err != nil {
		b.Fatal(err)
	}
	if st.Port == 0 {
		st.Port = port
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if code, _, _ := httpGet("http://" + st.Addr() + "/"); code != 0 {
			break // any answer: the server listens
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s's server never answered", userName)
		}
	}
	ready := time.Since(t0)
	if err := sp.Stop(ctx, userName, st, 5*time.Second); err != nil {
		b.Fatal(err)
	}
	return ready
}

func benchSpawners(b *testing.B) map[string]Spawner {
	e := dockerlab.Start(b, dockerlab.Options{})
	d, err := NewDocker(DockerOptions{Host: e.Host, Image: e.SingleuserImage, HubIP: "127.0.0.1", HubPort: 8081, NamePrefix: "hubtest-bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return map[string]Spawner{
		KindSudo:   NewSudo(SudoOptions{HelperPath: host.get(b).helper, Group: spGroup}),
		KindDocker: d,
	}
}

// BenchmarkSpawnToReady is one server at a time, start to answering HTTP
// to stopped, with the docker spawner (a container per server) against
// the sudo spawner (sudo and the helper). ms-to-ready leaves the stop out.
func BenchmarkSpawnToReady(b *testing.B) {
	users := benchUsers(b, 1)
	sps := benchSpawners(b)
	for _, kind := range []string{KindSudo, KindDocker} {
		b.Run(kind, func(b *testing.B) {
			logs := b.TempDir()
			var ready time.Duration
			for b.Loop() {
				ready += spawnOnce(b, sps[kind], users[0], logs)
			}
			b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ms-to-ready")
		})
	}
}

// BenchmarkSpawn10Clients is ten members starting, waiting for and
// stopping their servers over and over at once: spawns per second.
func BenchmarkSpawn10Clients(b *testing.B) {
	const clients = 10
	users := benchUsers(b, clients)
	sps := benchSpawners(b)
	for _, kind := range []string{KindSudo, KindDocker} {
		b.Run(kind, func(b *testing.B) {
			logs := b.TempDir()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for _, u := range users {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						spawnOnce(b, sps[kind], u, logs)
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "spawns/s")
		})
	}
}
