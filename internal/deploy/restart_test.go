package deploy_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/deploy"
	"flotilla.dev/flotilla/internal/source"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/open"
)

// Given a release made and handed over by one controller, when the rollout
// runner moves a cluster elsewhere and another cluster joins while no
// controller runs, and a new controller (a restart, with an empty fetch
// cache) starts on the same store, then it finds the release of the same
// commit, makes no other and does not hand it over again, but places it on
// the cluster that joined.
func TestRestartDoesNotReleaseAgain(t *testing.T) {
	repo := webRepo(t)
	ctx := context.Background()
	st, err := open.Open(ctx, filepath.Join(t.TempDir(), "flotilla.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var f *countingFetcher
	run := func() (stop func(), c *deploy.Controller) {
		sf, err := source.NewFetcher(source.Options{CacheDir: t.TempDir(), AllowLocal: true})
		if err != nil {
			t.Fatal(err)
		}
		f = &countingFetcher{Fetcher: sf}
		c, err = deploy.New(deploy.Options{Store: st, Fetcher: f, WorkDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = c.Run(cctx)
		}()
		return func() { cancel(); <-done }, c
	}
	e := &env{t: t, st: st}
	stop, c := run()
	e.c = c
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
	e.put(gitSource("shop", repo.FileURL()))
	e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))
	rel := e.latest("web", "")
	stop()

	// The rollout runner (or a person) takes prod-1 off the release, and
	// prod-2 joins, while no controller runs.
	if _, err := st.SetAssignments(ctx, []store.Assignment{{Cluster: "prod-1", Service: "web"}}, tester); err != nil {
		t.Fatal(err)
	}
	e.put(cluster("prod-2", map[string]string{"env": "prod"}, map[string]string{"replicas": "5"}))
	stop, c = run()
	defer stop()
	e.c = c
	eventually(t, 20*time.Second, "the restarted controller fetched the source", func() error {
		if f.n.Load() == 0 {
			return fmt.Errorf("no fetch yet")
		}
		if !c.Idle() {
			return errNotYet
		}
		return nil
	})
	if got := e.releases(); len(got) != 1 || got[0] != rel.Metadata.Name {
		t.Errorf("releases after restart %v, want only %s", got, rel.Metadata.Name)
	}
	if r, _ := e.assigned("prod-1", "web"); r != "" {
		t.Errorf("the restart handed %s over again to prod-1", r)
	}
	if r, _ := e.assigned("prod-2", "web"); r != rel.Metadata.Name {
		t.Errorf("prod-2, which joined while no controller ran, runs %q, want %s", r, rel.Metadata.Name)
	}
}
