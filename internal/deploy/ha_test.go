package deploy_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/deploy"
	"flotilla.dev/flotilla/internal/source"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/open"
)

// countingFetcher is the real fetcher, counting fetches.
type countingFetcher struct {
	*source.Fetcher
	n atomic.Int64
}

func (f *countingFetcher) Fetch(ctx context.Context, req source.Request) (*source.Commit, error) {
	f.n.Add(1)
	return f.Fetcher.Fetch(ctx, req)
}

// clock is the wall clock moved forward by what a test adds.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// replica is one controller of several on one store, as each server
// replica runs one.
type replica struct {
	c      *deploy.Controller
	f      *countingFetcher
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t *testing.T, st store.Store, holder string, now func() time.Time, ttl time.Duration) *replica {
	t.Helper()
	sf, err := source.NewFetcher(source.Options{CacheDir: t.TempDir(), AllowLocal: true})
	if err != nil {
		t.Fatal(err)
	}
	f := &countingFetcher{Fetcher: sf}
	c, err := deploy.New(deploy.Options{Store: st, Fetcher: f, WorkDir: t.TempDir(), Secrets: secrets{"hook": []byte("s3cret")},
		Holder: holder, Now: now, LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{c: c, f: f, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() {
	r.cancel()
	select {
	case <-r.done:
		r.done <- nil // later calls return at once
	case <-time.After(30 * time.Second):
		panic("controller did not stop within 30s")
	}
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := open.Open(context.Background(), filepath.Join(t.TempDir(), "flotilla.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Given two controllers on one store, then only the one holding the
// leadership fetches and releases; a webhook taken by the other one makes
// the leader fetch at once; when the leader stops, the other takes over
// and releases the next commit.
func TestOnlyTheLeaderWorks(t *testing.T) {
	repo := webRepo(t)
	st := openStore(t)
	a := startReplica(t, st, "a", time.Now, 0)
	eventually(t, 10*time.Second, "a leads", func() error {
		if !a.c.Leading() {
			return errNotYet
		}
		return nil
	})
	b := startReplica(t, st, "b", time.Now, 0)
	e := &env{t: t, st: st, c: a.c}
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "2"}))
	e.put(gitSource("shop", repo.FileURL()))
	e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))
	rel := e.latest("web", "")
	if b.c.Leading() || b.f.n.Load() != 0 {
		t.Fatalf("the replica that does not lead: leading %v, %d fetches", b.c.Leading(), b.f.n.Load())
	}

	// A webhook served by b: recorded in the source's status, a fetches.
	second := repo.Commit(t, "Version 2", map[string]string{"deploy/web/cm.yaml": webManifest("2")})
	start := time.Now()
	if err := b.c.Trigger(context.Background(), "shop", "refs/heads/main", second); err != nil {
		t.Fatal(err)
	}
	rel2 := e.latest("web", rel.Metadata.Name)
	if rel2.Spec.Commit.SHA != second {
		t.Fatalf("release after the webhook is of %s, want %s", rel2.Spec.Commit.SHA, second)
	}
	t.Logf("webhook on the other replica to release: %v", time.Since(start))
	if n := b.f.n.Load(); n != 0 {
		t.Errorf("the replica that does not lead fetched %d times", n)
	}
	if s := e.source("shop"); s.Status.LastWebhook == nil || s.Status.LastWebhook.Ref != "refs/heads/main" {
		t.Errorf("status.lastWebhook %+v", s.Status.LastWebhook)
	}

	// a stops (giving the leadership up); b takes over and follows the source.
	a.stop()
	eventually(t, 10*time.Second, "b leads", func() error {
		if !b.c.Leading() {
			return errNotYet
		}
		return nil
	})
	third := repo.Commit(t, "Version 3", map[string]string{"deploy/web/cm.yaml": webManifest("3")})
	e.c = b.c
	e.trigger("shop")
	if rel3 := e.latest("web", rel2.Metadata.Name); rel3.Spec.Commit.SHA != third {
		t.Fatalf("release after the fail-over is of %s, want %s", rel3.Spec.Commit.SHA, third)
	}
	if len(e.releases()) != 3 {
		t.Errorf("releases %v, want 3", e.releases())
	}
}

// Given a leader that stops without giving the leadership up (a crash),
// then the other controller takes over once the lease expires.
func TestLeaseExpiryHandsOver(t *testing.T) {
	st := openStore(t)
	const ttl = 2 * time.Second
	// The first holder takes the lease and never renews it: a process that died.
	start := time.Now() // the lease runs from here: b may not lead before start+ttl
	if _, err := st.AcquireLeadership(context.Background(), deploy.LeadershipName, "dead", ttl, start); err != nil {
		t.Fatal(err)
	}
	b := startReplica(t, st, "b", time.Now, ttl)
	time.Sleep(ttl / 2)
	// (Checked only while the lease surely lasts: start-up may take longer on a loaded machine.)
	if b.c.Leading() && time.Since(start) < ttl {
		t.Fatalf("b leads while the dead holder's lease lasts")
	}
	eventually(t, 10*time.Second, "b leads", func() error {
		if !b.c.Leading() {
			return errNotYet
		}
		return nil
	})
	if d := time.Since(start); d < ttl || d > ttl+10*time.Second {
		t.Errorf("b took over after %v; want after the %v lease, and not long after", d, ttl)
	}
}

// Given a source fetched every 10s whose commit does not change, then its
// status is not written by each poll (no audit event) and lastFetched is
// refreshed only after LastFetchedRefresh; a new commit is written at once.
func TestPollingWritesStatusOnlyOnChange(t *testing.T) {
	repo := webRepo(t)
	st := openStore(t)
	clk := &clock{}
	r := startReplica(t, st, "a", clk.now, time.Hour)
	e := &env{t: t, st: st, c: r.c}
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "2"}))
	src := gitSource("shop", repo.FileURL())
	src.Spec.Git.Interval = "10s"
	e.put(src)
	e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))
	rel := e.latest("web", "")
	statusWrites := func() int {
		evs, err := st.Events(context.Background(), 0, 0, store.EventFilter{Kinds: []string{v1.KindSource, v1.KindService}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if ev.Type == store.StatusUpdated {
				n++
			}
		}
		return n
	}
	poll := func() {
		t.Helper()
		n := r.f.n.Load()
		clk.add(11 * time.Second)
		eventually(t, 10*time.Second, "a poll", func() error {
			if r.f.n.Load() == n || !r.c.Idle() {
				return errNotYet
			}
			return nil
		})
	}
	before, fetched := statusWrites(), e.source("shop").Status.LastFetched
	for range 5 {
		poll()
	}
	if n := statusWrites(); n != before {
		t.Errorf("5 polls that found nothing new wrote status %d times", n-before)
	}
	clk.add(deploy.LastFetchedRefresh)
	poll()
	if n := statusWrites(); n != before+1 {
		t.Errorf("a poll after %v wrote status %d times, want once", deploy.LastFetchedRefresh, n-before)
	}
	if f := e.source("shop").Status.LastFetched; f == nil || !f.After(fetched.Add(deploy.LastFetchedRefresh)) {
		t.Errorf("lastFetched %v, want later than %v + %v", f, fetched, deploy.LastFetchedRefresh)
	}
	second := repo.Commit(t, "Version 2", map[string]string{"deploy/web/cm.yaml": webManifest("2")})
	poll()
	if rel2 := e.latest("web", rel.Metadata.Name); rel2.Spec.Commit.SHA != second {
		t.Fatalf("release of %s, want %s", rel2.Spec.Commit.SHA, second)
	}
	if s := e.source("shop"); s.Status.Commit == nil || s.Status.Commit.SHA != second {
		t.Errorf("source status commit %+v, want %s", s.Status.Commit, second)
	}
}
