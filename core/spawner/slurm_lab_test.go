package spawner

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testlab/slurmlab"
	"github.com/hubd/hubd/internal/testutil"
)

// fakeHubAPI is the hub's side of an address report: it checks the
// server's token and hands the report to Place, as the hub does.
type fakeHubAPI struct {
	srv     *httptest.Server
	token   string
	reports chan AddressReport
	// hold, when set, answers every report 200 without passing it on: a
	// server that "reported" to the wrong hub.
	hold bool
}

func newFakeHubAPI(t *testing.T) *fakeHubAPI {
	f := &fakeHubAPI{token: "tok-" + strconv.FormatInt(time.Now().UnixNano(), 36), reports: make(chan AddressReport)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "token "+f.token {
			http.Error(w, "bad token", http.StatusForbidden)
			return
		}
		var body struct {
			IP   string `json:"ip"`
			Port int    `json:"port"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if f.hold {
			return
		}
		reply := make(chan error, 1)
		select {
		case f.reports <- AddressReport{Host: body.IP, Port: body.Port, Reply: reply}:
		case <-r.Context().Done():
			return
		}
		if err := <-reply; err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// request is a start of user's server running the tiny test server in a
// job that also leaves a setsid'd, double-forked sleeper behind (which a
// stop must still end).
func (f *fakeHubAPI) request(t *testing.T, h *sudoHost, userName string, job SlurmJob) Request {
	prefix := "/user/" + userName + "/"
	return Request{
		User: userName, LogPath: filepath.Join(t.TempDir(), userName+".log"),
		Command: []string{"/bin/sh", "-c", "( setsid sleep 600 & ) ; exec " + h.testBin},
		Env: map[string]string{
			"JUPYTERHUB_API_TOKEN": f.token, AddressURLEnv: f.srv.URL + "/users/" + userName + "/server/address",
			"JUPYTERHUB_SERVICE_PREFIX": prefix, envRole: "server",
		},
		Resources: Resources{Profile: "test", Slurm: job},
	}
}

// userProcs lists the processes of a user.
func userProcs(t *testing.T, userName string) []int {
	u, err := user.Lookup(userName)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.Procs(func(p testutil.Proc) bool {
		uid, _, _, ok := p.IDs()
		return ok && uid == u.Uid
	})
}

func TestSlurm(t *testing.T) {
	testutil.NeedRoot(t)
	h := host.get(t)
	c := slurmlab.Start(t, slurmlab.Options{})
	sudo := NewSudo(SudoOptions{HelperPath: h.helper, Group: spGroup, Logger: testLogger(t)})
	newSlurm := func(submit string) *Slurm {
		s, err := NewSlurm(SlurmOptions{Submit: submit, Sudo: sudo, Logger: testLogger(t), PollEvery: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	api := newFakeHubAPI(t)
	onNode2 := SlurmJob{Extra: []string{"--nodelist=node2"}}

	// place runs Start and Place as the hub does, with the fake API's
	// reports, and returns the placed state and the progress seen.
	place := func(t *testing.T, sp *Slurm, r Request, budget time.Duration) (State, []string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), budget)
		defer cancel()
		st, err := sp.Start(ctx, r)
		if err != nil {
			return st, nil, err
		}
		t.Cleanup(func() {
			if err := sp.Stop(context.Background(), r.User, st, 5*time.Second); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		var mu sync.Mutex
		var said []string
		placed, err := sp.Place(ctx, r.User, st, api.reports, func(m string) { mu.Lock(); said = append(said, m); mu.Unlock() })
		if err != nil {
			return st, said, err
		}
		return placed, said, nil
	}

	for _, submit := range []string{SlurmSubmitSudo, SlurmSubmitRoot} {
		t.Run("Server/"+submit, func(t *testing.T) {
			sp := newSlurm(submit)
			t0 := time.Now()
			st, said, err := place(t, sp, api.request(t, h, spAlice, onNode2), time.Minute)
			if err != nil {
				t.Fatalf("%v (progress %q)", err, said)
			}
			t.Logf("submitted to placed in %s: %q", time.Since(t0).Round(time.Millisecond), said)
			if st.Host != c.Node("node2").Addr || st.Node != "node2" || st.Port == 0 || st.JobID == "" {
				t.Fatalf("placed at %+v, want node2 at %s", st, c.Node("node2").Addr)
			}
			if len(said) == 0 || !strings.Contains(strings.Join(said, "\n"), "on node2") {
				t.Errorf("progress %q does not say where the job runs", said)
			}
			var body []byte
			waitFor(t, "the server answers at its reported address", 20*time.Second, func() (bool, error) {
				code, b, err := httpGet("http://" + st.Addr() + "/user/" + spAlice + "/api")
				body = b
				return code == 200, err
			})
			if string(body) != "/user/"+spAlice+"/api" {
				t.Errorf("server answered %q", body)
			}
			procs := userProcs(t, spAlice)
			if len(procs) < 2 {
				t.Errorf("the job's processes of %s: %v", spAlice, procs)
			}
			if ps, err := sp.Poll(t.Context(), spAlice, st); err != nil || !ps.Running || ps.Detail != "RUNNING on node2" {
				t.Errorf("poll: %+v %v", ps, err)
			}
			// Another user's name with this job: not theirs to poll or stop.
			if ps, err := sp.Poll(t.Context(), spBob, st); err != nil || ps.Running {
				t.Errorf("poll as %s: %+v %v", spBob, ps, err)
			}
			if err := sp.Stop(t.Context(), spBob, st, time.Second); err != nil {
				t.Errorf("stop as %s: %v", spBob, err)
			}
			if ps, _ := sp.Poll(t.Context(), spAlice, st); !ps.Running {
				t.Fatal("the job ended when another user's name stopped it")
			}
			if err := sp.Stop(t.Context(), spAlice, st, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if job := c.WaitJobState(st.JobID, "CANCELLED", 5*time.Second); job["JobState"] != "CANCELLED" {
				t.Errorf("job %s is %s after Stop", st.JobID, job["JobState"])
			}
			if left := userProcs(t, spAlice); len(left) > 0 {
				t.Errorf("processes of %s outlived the stop (proctrack/%s): %v", spAlice, c.Proctrack, left)
			}
			ps, err := sp.Poll(t.Context(), spAlice, st)
			if err != nil || ps.Running || !strings.Contains(ps.Reason, "CANCELLED") {
				t.Errorf("poll after stop: %+v %v", ps, err)
			}
		})
	}

	sp := newSlurm(SlurmSubmitSudo)
	t.Run("WrongAddressRefused", func(t *testing.T) {
		st, err := sp.Start(t.Context(), api.request(t, h, spBob, onNode2))
		if err != nil {
			t.Fatal(err)
		}
		defer sp.Stop(context.Background(), spBob, st, 5*time.Second)
		reports := make(chan AddressReport)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		type result struct {
			st  State
			err error
		}
		done := make(chan result, 1)
		go func() {
			p, err := sp.Place(ctx, spBob, st, reports, func(string) {})
			done <- result{p, err}
		}()
		// The hub's API is not where the job reports here: the test
		// speaks for it, first with an address of another node.
		for _, bad := range []AddressReport{{Host: "127.0.0.1", Port: 8888}, {Host: "127.0.0.2", Port: 0}, {Host: "example.org", Port: 80}} {
			reply := make(chan error, 1)
			bad.Reply = reply
			reports <- bad
			if err := <-reply; err == nil {
				t.Errorf("report %s:%d accepted for a job on node2", bad.Host, bad.Port)
			}
		}
		reply := make(chan error, 1)
		reports <- AddressReport{Host: "127.0.0.2", Port: 4242, Reply: reply}
		if err := <-reply; err != nil {
			t.Fatalf("the node's own address refused: %v", err)
		}
		if r := <-done; r.err != nil || r.st.Host != "127.0.0.2" || r.st.Port != 4242 {
			t.Errorf("placed %+v, %v", r.st, r.err)
		}
	})

	t.Run("PendingForResourcesThenRunning", func(t *testing.T) {
		// A job that holds node2 whole keeps the server's job waiting for
		// resources until it is cancelled.
		blocker, err := slurmlab.Submit("#!/bin/sh\nexec sleep 600\n", "/usr/bin/sbatch", "--exclusive", "--nodelist=node2", "--output=/dev/null")
		if err != nil {
			t.Fatal(err)
		}
		c.WaitJobState(blocker, "RUNNING", 30*time.Second)
		progress := make(chan string, 16)
		type result struct {
			st  State
			err error
		}
		done := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			st, err := sp.Start(ctx, api.request(t, h, spBob, onNode2))
			if err == nil {
				defer func() { progress <- "" }()
				st, err = sp.Place(ctx, spBob, st, api.reports, func(m string) { progress <- m })
			}
			done <- result{st, err}
		}()
		for msg := range progress {
			if strings.Contains(msg, "pending (Resources)") {
				break
			}
			if msg == "" {
				t.Fatal("placed without waiting for the node")
			}
		}
		if _, err := testlab.Run(nil, "scancel", blocker); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || r.st.Node != "node2" {
			t.Fatalf("after the blocker left: %+v %v", r.st, r.err)
		}
		if err := sp.Stop(t.Context(), spBob, r.st, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("BadPartition", func(t *testing.T) {
		_, err := sp.Start(t.Context(), api.request(t, h, spAlice, SlurmJob{Partition: "nosuch"}))
		if _, ok := errors.AsType[*StartError](err); !ok || !strings.Contains(err.Error(), "invalid partition specified: nosuch") {
			t.Errorf("start in a partition that does not exist: %v", err)
		}
	})

	t.Run("PendingTooLong", func(t *testing.T) {
		_, said, err := place(t, sp, api.request(t, h, spAlice, SlurmJob{Extra: []string{"--begin=now+1hour"}}), 3*time.Second)
		if err == nil || !strings.Contains(err.Error(), "still pending (BeginTime)") {
			t.Errorf("a job that cannot start yet: %v", err)
		}
		if !strings.Contains(strings.Join(said, "\n"), "pending (BeginTime)") {
			t.Errorf("progress %q does not give the queue's reason", said)
		}
	})

	t.Run("NeverReports", func(t *testing.T) {
		silent := newFakeHubAPI(t)
		silent.hold = true
		r := silent.request(t, h, spAlice, onNode2)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		st, err := sp.Start(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sp.Place(ctx, spAlice, st, make(chan AddressReport), func(string) {})
		if err == nil || !strings.Contains(err.Error(), "did not report its address") || !strings.Contains(err.Error(), "node2") {
			t.Errorf("a job that never reports: %v", err)
		}
		if err := sp.Stop(t.Context(), spAlice, st, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		c.WaitJobState(st.JobID, "CANCELLED", 10*time.Second)
	})

	t.Run("TimeLimitNoticed", func(t *testing.T) {
		st, _, err := place(t, sp, api.request(t, h, spBob, SlurmJob{Partition: c.ShortPartition}), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		c.ExpireJob(st.JobID)
		var ps Status
		waitFor(t, "the time limit is noticed", 60*time.Second, func() (bool, error) {
			var err error
			ps, err = sp.Poll(t.Context(), spBob, st)
			return err == nil && !ps.Running, err
		})
		mustContain(t, "reason", ps.Reason, "reached its time limit", "TIMEOUT", "TimeLimit")
	})

	t.Run("ControllerDown", func(t *testing.T) {
		st, _, err := place(t, sp, api.request(t, h, spBob, onNode2), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		c.StopController()
		_, err = sp.Start(t.Context(), api.request(t, h, spAlice, onNode2))
		if err == nil || !strings.Contains(err.Error(), "Unable to contact slurm controller") || !strings.Contains(err.Error(), "slurmctld running") {
			t.Errorf("start with the controller down: %v", err)
		}
		// A running server is not taken for dead while Slurm cannot say.
		if ps, err := sp.Poll(t.Context(), spBob, st); err == nil {
			t.Errorf("poll with the controller down: %+v, want an error", ps)
		}
		c.StartController()
		if ps, err := sp.Poll(t.Context(), spBob, st); err != nil || !ps.Running {
			t.Errorf("poll with the controller back: %+v %v", ps, err)
		}
		if code, _, err := httpGet("http://" + st.Addr() + "/"); code != 200 {
			t.Errorf("the server after the controller came back: %d %v", code, err)
		}
	})
}
