package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/rollout"
	"flotilla.dev/flotilla/internal/rollout/runner"
)

// router is an in-memory traffic router for the runner's tests: it
// checks, at every change, that no cluster losing its traffic already has
// the new release assigned (the drain must be in force first).
type router struct {
	f       *fleet
	release string

	mu      sync.Mutex
	weights map[string]int
	log     []string
	broken  error // SetWeights fails with it
	unread  bool  // Weights fails (a webhook router before its first change)
	late    []string
}

func (r *router) SetWeights(ctx context.Context, name string, ws []v1.TrafficWeight) ([]v1.TrafficWeight, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.broken != nil {
		return nil, r.broken
	}
	assigned := r.f.assigned()
	var out []v1.TrafficWeight
	for _, w := range ws {
		if w.Weight == 0 && r.weights[w.Cluster] > 0 && assigned[w.Cluster] == r.release {
			r.late = append(r.late, fmt.Sprintf("%s drained while already assigned %s", w.Cluster, r.release))
		}
		r.weights[w.Cluster] = w.Weight
		r.log = append(r.log, fmt.Sprintf("%s=%d", w.Cluster, w.Weight))
		out = append(out, v1.TrafficWeight{Router: name, Cluster: w.Cluster, Weight: w.Weight})
	}
	return out, nil
}

func (r *router) Weights(ctx context.Context, name string, clusters []string) ([]v1.TrafficWeight, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unread {
		return nil, errors.New("no weights known yet")
	}
	var out []v1.TrafficWeight
	for _, c := range clusters {
		out = append(out, v1.TrafficWeight{Router: name, Cluster: c, Weight: r.weights[c]})
	}
	return out, nil
}

func (r *router) weight(c string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.weights[c]
}

// routed gives every cluster of the fleet a backend in router edge with
// capacity 100 and returns a router where each has weight w.
func routed(t *testing.T, f *fleet, w int) *router {
	t.Helper()
	ctx := context.Background()
	r := &router{f: f, release: "r2", weights: map[string]int{}}
	for c := range f.assigned() {
		o, err := f.st.Get(ctx, v1.KindCluster, c)
		if err != nil {
			t.Fatal(err)
		}
		o.Spec, _ = json.Marshal(v1.ClusterSpec{Traffic: []v1.ClusterTraffic{{Router: "edge", Backend: c}}})
		if _, err := f.st.Update(ctx, o, admin); err != nil {
			t.Fatal(err)
		}
		r.weights[c] = w
	}
	return r
}

func drainStrategy() v1.RolloutStrategySpec {
	return v1.RolloutStrategySpec{Type: v1.StrategyRolling, TrafficRouter: "edge",
		Waves: []v1.Wave{{Name: "all", Clusters: &v1.LabelSelector{}, Drain: true}}}
}

// Every drain is in force before its cluster is assigned the release.
func TestDrainBeforeAssign(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := routed(t, f, 30)
	f.agents(ctx, 10*time.Millisecond)
	f.strategy("drain", drainStrategy())
	_, stop := f.run("a", func(o *runner.Options) { o.Traffic = r })
	defer stop()
	f.rollout("r2", "r2", "drain")
	st := f.waitPhase("r2", 20*time.Second, v1.RolloutSucceeded, v1.RolloutRolledBack, v1.RolloutFailed)
	if st.Phase != v1.RolloutSucceeded {
		t.Fatalf("phase %s (%s), want Succeeded", st.Phase, st.Message)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.late) > 0 {
		t.Fatalf("assignments visible before their drain: %s (changes %v)", strings.Join(r.late, "; "), r.log)
	}
	for c := range threeClusters {
		if !strings.Contains(strings.Join(r.log, " "), c+"=0") || r.weights[c] != 30 {
			t.Errorf("%s: changes %v, weight now %d; want drained, then 30 again", c, r.log, r.weights[c])
		}
	}
	if !strings.Contains(st.TrafficMessage, "weights at planning read from router edge") {
		t.Errorf("traffic message %q does not say the weights were read from the router", st.TrafficMessage)
	}
}

// A drain the router refuses pauses the rollout with the reason and
// assigns nothing; once the router works, resume drains, then assigns.
func TestBrokenRouterAssignsNothing(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := routed(t, f, 30)
	r.broken = errors.New("router down")
	f.agents(ctx, 10*time.Millisecond)
	f.strategy("drain", drainStrategy())
	_, stop := f.run("a", func(o *runner.Options) { o.Traffic = r })
	defer stop()
	f.rollout("r2", "r2", "drain")
	st := f.waitPhase("r2", 20*time.Second, v1.RolloutPaused)
	if !strings.Contains(st.Message, "router down") || !strings.Contains(st.Message, "nothing was assigned") {
		t.Errorf("paused with %q; want the router's error", st.Message)
	}
	time.Sleep(300 * time.Millisecond)
	for c, rel := range f.assigned() {
		if rel != "r1" {
			t.Errorf("%s assigned %s while its drain failed", c, rel)
		}
	}
	r.mu.Lock()
	r.broken = nil
	r.mu.Unlock()
	// Act cannot set weights: the leader carries the resume out.
	if _, err := runner.Act(ctx, f.st, "r2", rollout.Resume{}, admin, time.Now); err != nil {
		t.Fatal(err)
	}
	st = f.waitPhase("r2", 20*time.Second, v1.RolloutSucceeded, v1.RolloutRolledBack, v1.RolloutFailed)
	if st.Phase != v1.RolloutSucceeded {
		t.Fatalf("phase %s (%s), want Succeeded", st.Phase, st.Message)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.late) > 0 {
		t.Fatalf("assignments visible before their drain: %s", strings.Join(r.late, "; "))
	}
}

// A rolled back cluster stays at weight 0 until it is healthy on the
// release it went back to; RestoredAt comes after its weight is back.
func TestRollbackRestoresWeightWhenHealthy(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := routed(t, f, 30)
	r.unread = true // weights from capacities: 100 each
	// canary-1's agent is silent: it fails its progress deadline, and it
	// reports r1 only once the test lets it.
	f.stop("canary-1", true)
	f.agents(ctx, 10*time.Millisecond)
	spec := v1.RolloutStrategySpec{Type: v1.StrategyRolling, TrafficRouter: "edge", Waves: []v1.Wave{
		{Name: "canary", Clusters: sel("ring", "canary"), Drain: true, ProgressDeadline: "1s"},
		{Name: "rest", Clusters: &v1.LabelSelector{}}}}
	f.strategy("s", spec)
	_, stop := f.run("a", func(o *runner.Options) { o.Traffic = r })
	defer stop()
	f.rollout("r2", "r2", "s")
	f.waitPhase("r2", 20*time.Second, v1.RolloutRolledBack)
	time.Sleep(300 * time.Millisecond)
	if w := r.weight("canary-1"); w != 0 {
		t.Fatalf("canary-1 has weight %d before it is back on r1", w)
	}
	if st := f.status("r2"); st.RestoredAt != nil {
		t.Fatalf("restored at %s before canary-1 is back", st.RestoredAt)
	}
	if r.weight("eu-1") != 100 || r.weight("us-1") != 100 {
		t.Fatalf("untouched clusters have %d and %d, want 100", r.weight("eu-1"), r.weight("us-1"))
	}
	f.stop("canary-1", false)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (r.weight("canary-1") != 100 || f.status("r2").RestoredAt == nil) {
		time.Sleep(20 * time.Millisecond)
	}
	st := f.status("r2")
	if r.weight("canary-1") != 100 || st.RestoredAt == nil {
		t.Fatalf("canary-1 weight %d, restoredAt %v; want 100 and set", r.weight("canary-1"), st.RestoredAt)
	}
	if st.Phase != v1.RolloutRolledBack || !strings.Contains(st.TrafficMessage, "from capacities: router edge cannot say") {
		t.Errorf("phase %s, traffic message %q", st.Phase, st.TrafficMessage)
	}
}

// A runner that stops after the router drained a cluster but before the
// assignment was written leaves a record with the old weights: the next
// runner puts them back, then drains again and assigns, and no cluster is
// ever assigned while it has traffic.
func TestRestartBetweenDrainAndCommit(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := routed(t, f, 30)
	f.agents(ctx, 10*time.Millisecond)
	f.strategy("drain", drainStrategy())
	var (
		once    sync.Once
		stopped = make(chan struct{})
		stopA   func()
	)
	hook := &hookRouter{router: r, before: func(ctx context.Context, ws []v1.TrafficWeight) {
		if len(ws) != 1 || ws[0].Weight != 0 {
			return
		}
		once.Do(func() {
			// Stop runner a while it is inside this call: the change goes
			// through, the transition that needed it is never written.
			go func() { stopA(); close(stopped) }()
			<-ctx.Done()
		})
	}}
	_, stopA = f.run("a", func(o *runner.Options) { o.Traffic = hook })
	f.rollout("r2", "r2", "drain")
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("runner a never drained a cluster")
	}
	for c, rel := range f.assigned() {
		if rel != "r1" {
			t.Fatalf("%s assigned %s by a transition that was never written", c, rel)
		}
	}
	_, stopB := f.run("b", func(o *runner.Options) { o.Traffic = r })
	defer stopB()
	st := f.waitPhase("r2", 30*time.Second, v1.RolloutSucceeded, v1.RolloutRolledBack, v1.RolloutFailed)
	if st.Phase != v1.RolloutSucceeded {
		t.Fatalf("phase %s (%s), want Succeeded", st.Phase, st.Message)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.late) > 0 {
		t.Fatalf("assignments visible before their drain: %s (changes %v)", strings.Join(r.late, "; "), r.log)
	}
	t.Logf("changes %v", r.log)
	// The first drain (runner a), its undoing (runner b re-asserting the
	// record), the drain again.
	if first := r.log[0]; !strings.HasSuffix(first, "=0") || len(r.log) < 3 || r.log[1] != strings.TrimSuffix(first, "=0")+"=30" {
		t.Errorf("changes %v; want %s, then its weight 30 back, then the rest", r.log, first)
	}
}

// hookRouter calls before ahead of every change of the router it wraps.
type hookRouter struct {
	*router
	before func(context.Context, []v1.TrafficWeight)
}

func (h *hookRouter) SetWeights(ctx context.Context, name string, ws []v1.TrafficWeight) ([]v1.TrafficWeight, error) {
	h.before(ctx, ws)
	return h.router.SetWeights(ctx, name, ws)
}
