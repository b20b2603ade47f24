package runner_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/rollout"
	"flotilla.dev/flotilla/internal/rollout/runner"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/open"
	"flotilla.dev/flotilla/internal/store/postgres/pgtest"
)

var admin = store.Actor{Kind: store.ActorUser, Name: "alice"}

// fleet is a store with clusters, a service, releases and simulated agents: each agent reports
// the release its cluster is assigned, with the health the test chose for that release (Healthy
// by default), unless the test stopped it. The runner under test sees only the store, as it would
// with real agents.
type fleet struct {
	t  *testing.T
	st store.Store

	mu      sync.Mutex
	health  map[string]string // release -> health reported
	stopped map[string]bool   // cluster -> not reporting
	seq     map[string]int64
}

func newFleet(t *testing.T, clusters map[string]map[string]string) *fleet {
	t.Helper()
	return newFleetOn(t, filepath.Join(t.TempDir(), "flotilla.db"), clusters)
}

// newFleetOn is newFleet on the store named by dsn.
func newFleetOn(t *testing.T, dsn string, clusters map[string]map[string]string) *fleet {
	t.Helper()
	ctx := context.Background()
	st, err := open.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fleet{t: t, st: st, health: map[string]string{}, stopped: map[string]bool{}, seq: map[string]int64{}}
	var names []string
	for name, labels := range clusters {
		f.create(v1.KindCluster, name, labels, `{}`)
		names = append(names, name)
	}
	slices.Sort(names)
	f.create(v1.KindService, "web", nil, `{"source":{"name":"shop"},"placement":{"clusterSelector":{}}}`)
	for _, r := range []string{"r1", "r2", "r3"} {
		f.release(r, names)
	}
	var as []store.Assignment
	for _, c := range names {
		as = append(as, store.Assignment{Cluster: c, Service: "web", Release: "r1", Bundle: digest("r1")})
	}
	if _, err := st.SetAssignments(ctx, as, admin); err != nil {
		t.Fatal(err)
	}
	return f
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

func (f *fleet) create(kind, name string, labels map[string]string, spec string) *store.Object {
	f.t.Helper()
	o, err := f.st.Create(context.Background(), &store.Object{Kind: kind, Name: name, Labels: labels, Spec: json.RawMessage(spec)}, admin)
	if err != nil {
		f.t.Fatalf("create %s %s: %v", kind, name, err)
	}
	return o
}

// release stores a release with one bundle for every cluster.
func (f *fleet) release(name string, clusters []string) {
	f.t.Helper()
	ctx := context.Background()
	o := f.create(v1.KindRelease, name, nil, `{"service":"web","commit":{"sha":"0123456789abcdef0123456789abcdef01234567"},"serviceSpec":{"source":{"name":"shop"},"placement":{"clusterSelector":{}}}}`)
	st := v1.ReleaseStatus{Phase: v1.ReleaseRendered, Bundles: []v1.ReleaseBundle{{Digest: digest(name), Clusters: clusters}}}
	o.Status, _ = json.Marshal(st)
	if _, err := f.st.UpdateStatus(ctx, o, admin); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.st.PutBundle(ctx, digest(name), []byte(name), admin); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) setHealth(release, health string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health[release] = health
}

func (f *fleet) stop(cluster string, stopped bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped[cluster] = stopped
}

// agents reports for every cluster every interval until ctx ends.
func (f *fleet) agents(ctx context.Context, interval time.Duration) {
	go func() {
		for ctx.Err() == nil {
			l, err := f.st.List(ctx, v1.KindCluster, store.ListOptions{})
			if err != nil {
				return
			}
			for _, c := range l.Items {
				f.report(ctx, c.Name)
			}
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	}()
}

func (f *fleet) report(ctx context.Context, cluster string) {
	f.mu.Lock()
	if f.stopped[cluster] {
		f.mu.Unlock()
		return
	}
	f.seq[cluster]++
	seq := f.seq[cluster]
	f.mu.Unlock()
	ds, err := f.st.Desired(ctx, cluster)
	if err != nil {
		return
	}
	type svc struct {
		Service string `json:"service"`
		Release string `json:"release"`
		Health  string `json:"health"`
	}
	var sum struct {
		Health   string `json:"health"`
		Services []svc  `json:"services"`
	}
	sum.Health = v1.HealthHealthy
	f.mu.Lock()
	for _, a := range ds.Assignments {
		h := f.health[a.Release]
		if h == "" {
			h = v1.HealthHealthy
		}
		sum.Services = append(sum.Services, svc{a.Service, a.Release, h})
	}
	f.mu.Unlock()
	data, _ := json.Marshal(sum)
	_, _ = f.st.RecordAgentStatus(ctx, store.AgentStatus{Cluster: cluster, Seq: seq, Epoch: 1, Health: sum.Health,
		Summary: data, Report: data})
}

// run starts a runner and returns a function that stops it.
func (f *fleet) run(holder string, tune ...func(*runner.Options)) (*runner.Runner, func()) {
	f.t.Helper()
	opts := runner.Options{Store: f.st, Holder: holder, PollInterval: 50 * time.Millisecond, LeaseTTL: 3 * time.Second,
		DisconnectAfter: 600 * time.Millisecond, ProgressInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(f.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for _, fn := range tune {
		fn(&opts)
	}
	r, err := runner.New(opts)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	return r, func() { cancel(); <-done }
}

func (f *fleet) rollout(name, release, strategy string) {
	f.t.Helper()
	spec, _ := json.Marshal(v1.RolloutSpec{Service: "web", Release: release, Strategy: strategy})
	f.create(v1.KindRollout, name, nil, string(spec))
}

func (f *fleet) strategy(name string, spec v1.RolloutStrategySpec) {
	f.t.Helper()
	data, _ := json.Marshal(spec)
	f.create(v1.KindRolloutStrategy, name, nil, string(data))
}

func (f *fleet) status(name string) v1.RolloutStatus {
	f.t.Helper()
	o, err := f.st.Get(context.Background(), v1.KindRollout, name)
	if err != nil {
		f.t.Fatal(err)
	}
	var st v1.RolloutStatus
	if len(o.Status) > 0 {
		if err := json.Unmarshal(o.Status, &st); err != nil {
			f.t.Fatal(err)
		}
	}
	return st
}

// waitPhase waits for the rollout to reach one of phases.
func (f *fleet) waitPhase(name string, timeout time.Duration, phases ...v1.RolloutPhase) v1.RolloutStatus {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	var st v1.RolloutStatus
	for time.Now().Before(deadline) {
		st = f.status(name)
		if slices.Contains(phases, st.Phase) {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("rollout %s is %s (%s) after %s; want %v", name, st.Phase, st.Message, timeout, phases)
	return st
}

// assigned returns each cluster's assigned release of web.
func (f *fleet) assigned() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	l, err := f.st.List(context.Background(), v1.KindCluster, store.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, c := range l.Items {
		ds, err := f.st.Desired(context.Background(), c.Name)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, a := range ds.Assignments {
			if a.Service == "web" {
				out[c.Name] = a.Release
			}
		}
	}
	return out
}

// everAssigned returns, per release, the clusters that some Assignments event ever gave it.
func (f *fleet) everAssigned() map[string][]string {
	f.t.Helper()
	evs, err := f.st.Events(context.Background(), 0, 100000, store.EventFilter{Kinds: []string{store.KindAssignments}})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, ev := range evs {
		var ch store.AssignmentsChange
		if err := json.Unmarshal(ev.Object.Spec, &ch); err != nil {
			f.t.Fatal(err)
		}
		for _, ds := range ch.Changed {
			for _, a := range ds.Assignments {
				if a.Service == "web" && !slices.Contains(out[a.Release], ds.Cluster) {
					out[a.Release] = append(out[a.Release], ds.Cluster)
				}
			}
		}
	}
	for r := range out {
		slices.Sort(out[r])
	}
	return out
}

func sel(k, v string) *v1.LabelSelector {
	return &v1.LabelSelector{MatchLabels: map[string]string{k: v}}
}

var threeClusters = map[string]map[string]string{
	"canary-1": {"ring": "canary", "region": "eu"},
	"eu-1":     {"region": "eu"},
	"us-1":     {"region": "us"},
}

func waves(extra ...func(*v1.Wave)) v1.RolloutStrategySpec {
	ws := []v1.Wave{{Name: "canary", Clusters: sel("ring", "canary")}, {Name: "eu", Clusters: sel("region", "eu")},
		{Name: "rest", Clusters: &v1.LabelSelector{}, MaxParallel: "100%"}}
	for i := range ws {
		for _, fn := range extra {
			fn(&ws[i])
		}
	}
	return v1.RolloutStrategySpec{Type: v1.StrategyRolling, Waves: ws}
}

func TestGoodRolloutReachesEveryWave(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.agents(ctx, 20*time.Millisecond)
	f.strategy("waves", waves())
	_, stop := f.run("a")
	defer stop()
	f.rollout("r2", "r2", "waves")
	st := f.waitPhase("r2", 20*time.Second, v1.RolloutSucceeded, v1.RolloutRolledBack, v1.RolloutFailed)
	if st.Phase != v1.RolloutSucceeded {
		t.Fatalf("phase %s (%s), want Succeeded", st.Phase, st.Message)
	}
	for c, r := range f.assigned() {
		if r != "r2" {
			t.Errorf("cluster %s is assigned %s, want r2", c, r)
		}
	}
	// The service follows the rollout's end right after it.
	var svc v1.ServiceStatus
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		o, _ := f.st.Get(ctx, v1.KindService, "web")
		_ = json.Unmarshal(o.Status, &svc)
		if svc.CurrentRelease == "r2" && svc.ActiveRollout == "" {
			break
		}
	}
	if svc.CurrentRelease != "r2" || svc.ActiveRollout != "" {
		t.Errorf("service status %+v; want currentRelease r2 and no active rollout", svc)
	}
	// Each cluster was assigned r2 exactly once.
	evs, _ := f.st.Events(ctx, 0, 100000, store.EventFilter{Kinds: []string{store.KindAssignments}})
	count := map[string]int{}
	for _, ev := range evs {
		var ch store.AssignmentsChange
		_ = json.Unmarshal(ev.Object.Spec, &ch)
		for _, ds := range ch.Changed {
			for _, a := range ds.Assignments {
				if a.Release == "r2" {
					count[ds.Cluster]++
				}
			}
		}
	}
	for c, n := range count {
		if n != 1 {
			t.Errorf("cluster %s was assigned r2 %d times, want once", c, n)
		}
	}
}

func TestFailedAnalysisRollsBackAutomatically(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.agents(ctx, 20*time.Millisecond)
	f.create(v1.KindAnalysisTemplate, "error-rate", nil, `{"metrics":[{"name":"errors","provider":{"health":{}}}]}`)
	spec := waves()
	spec.Type, spec.TrafficRouter = v1.StrategyCanary, "edge"
	spec.Waves[0].Steps = []v1.CanaryStep{{Weight: 10, Analysis: []v1.AnalysisRef{{Template: "error-rate"}}}}
	f.strategy("canary", spec)
	var mu sync.Mutex
	var asked []runner.AnalysisRequest
	_, stop := f.run("a", func(o *runner.Options) {
		o.Analyzer = runner.AnalyzerFunc(func(ctx context.Context, req runner.AnalysisRequest, progress func(v1.AnalysisRun)) v1.AnalysisRun {
			mu.Lock()
			asked = append(asked, req)
			mu.Unlock()
			v := 0.5
			run := v1.AnalysisRun{ID: req.ID, Phase: v1.GateRunning, Metrics: []v1.MetricResult{{Name: "errors", Cluster: "canary-1",
				Phase: v1.GateRunning, Measurements: []v1.Measurement{{Time: time.Now(), Value: &v, Phase: v1.MeasurementFailed}}}}}
			progress(run)
			run.Phase, run.Metrics[0].Phase = v1.GateFailed, v1.GateFailed
			return run
		})
	})
	defer stop()
	f.rollout("r2", "r2", "canary")
	st := f.waitPhase("r2", 20*time.Second, v1.RolloutSucceeded, v1.RolloutRolledBack, v1.RolloutFailed)
	if st.Phase != v1.RolloutRolledBack {
		t.Fatalf("phase %s (%s), want RolledBack", st.Phase, st.Message)
	}
	if got := f.everAssigned()["r2"]; !slices.Equal(got, []string{"canary-1"}) {
		t.Errorf("clusters ever assigned r2: %v; want only the canary", got)
	}
	for c, r := range f.assigned() {
		if r != "r1" {
			t.Errorf("cluster %s is assigned %s after the rollback, want r1", c, r)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for st.RestoredAt == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		st = f.status("r2")
	}
	if st.FailedAt == nil || st.RestoredAt == nil || st.RestoredAt.Before(*st.FailedAt) {
		t.Fatalf("failedAt %v restoredAt %v; want both, restored after failed", st.FailedAt, st.RestoredAt)
	}
	if len(st.Analyses) != 1 || st.Analyses[0].Phase != v1.GateFailed || len(st.Analyses[0].Metrics) != 1 {
		t.Errorf("analyses %+v; want one failed run with its metric", st.Analyses)
	}
	if !strings.Contains(st.TrafficMessage, "skipped") {
		t.Errorf("traffic message %q; want it to say the weights were skipped", st.TrafficMessage)
	}
	mu.Lock()
	if len(asked) != 1 || asked[0].Spec.Metrics[0].Name != "errors" || asked[0].Args["canary-1"] == nil {
		t.Errorf("analyzer asked %+v; want one request for the canary with the template's spec", asked)
	}
	mu.Unlock()
	var rs v1.ReleaseStatus
	o, _ := f.st.Get(ctx, v1.KindRelease, "r2")
	_ = json.Unmarshal(o.Status, &rs)
	if rs.Failed == nil || rs.Failed.Rollout != "r2" {
		t.Errorf("release r2 status.failed = %+v; want marked by rollout r2", rs.Failed)
	}
}

// TestApprovalSurvivesRunnerRestart stops the leading runner while a rollout waits for approval,
// approves through Act (as a replica that does not lead would), and checks that a second runner
// resumes it to the end with no cluster assigned twice.
func TestApprovalSurvivesRunnerRestart(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testApprovalSurvivesRunnerRestart(t, newFleet(t, threeClusters)) })
	t.Run("postgres", func(t *testing.T) {
		testApprovalSurvivesRunnerRestart(t, newFleetOn(t, pgtest.NewDatabase(t), threeClusters))
	})
}

// gated starts the fleet's agents until the test ends and defines the strategy "gated": the
// waves of waves() with an approval by sre before the second. It returns the agents' context.
func (f *fleet) gated(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.agents(ctx, 20*time.Millisecond)
	spec := waves()
	spec.Waves[1].Before = []v1.Gate{{Approval: &v1.ApprovalGate{Roles: []string{"sre"}}}}
	f.strategy("gated", spec)
	return ctx
}

func testApprovalSurvivesRunnerRestart(t *testing.T, f *fleet) {
	ctx := f.gated(t)
	a, stopA := f.run("a")
	f.rollout("r2", "r2", "gated")
	st := f.waitPhase("r2", 20*time.Second, v1.RolloutWaitingApproval)
	if st.WaitingFor == nil || !slices.Equal(st.WaitingFor.Roles, []string{"sre"}) {
		t.Errorf("waitingFor %+v; want the gate and role sre", st.WaitingFor)
	}
	if !a.Leading() {
		t.Error("the only runner does not lead")
	}
	stopA()
	_, err := runner.Act(ctx, f.st, "r2", rollout.Approval{User: "user:bob", Roles: []string{"viewer"}}, admin, time.Now)
	if err == nil || !strings.Contains(err.Error(), "not permitted") {
		t.Fatalf("approval by a viewer: %v; want not permitted", err)
	}
	if _, err := runner.Act(ctx, f.st, "r2", rollout.Approval{User: "user:carol", Roles: []string{"sre"}}, admin, time.Now); err != nil {
		t.Fatalf("approval by sre: %v", err)
	}
	b, stopB := f.run("b")
	defer stopB()
	st = f.waitPhase("r2", 20*time.Second, v1.RolloutSucceeded, v1.RolloutRolledBack, v1.RolloutFailed)
	if st.Phase != v1.RolloutSucceeded {
		t.Fatalf("phase %s (%s), want Succeeded", st.Phase, st.Message)
	}
	if !b.Leading() {
		t.Error("runner b does not lead after a gave up")
	}
	got := f.everAssigned()["r2"]
	if want := []string{"canary-1", "eu-1", "us-1"}; !slices.Equal(got, want) {
		t.Errorf("clusters assigned r2: %v, want %v", got, want)
	}
}

// TestSilentAgentHoldsTheWave stops one agent while its cluster updates: the wave waits with the
// cluster Unknown and nothing rolls back; once the agent reports again the rollout completes.
func TestSilentAgentHoldsTheWave(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.agents(ctx, 20*time.Millisecond)
	f.strategy("waves", waves())
	f.stop("eu-1", true)
	_, stop := f.run("a")
	defer stop()
	f.rollout("r2", "r2", "waves")
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := f.status("r2")
		c := clusterOf(st, "eu-1")
		if st.CurrentWaveName == "eu" && c.Phase == v1.ClusterRolloutUpdating && c.Health == rollout.HealthUnknown {
			break
		}
		if time.Now().After(deadline) || st.Phase.Terminal() {
			t.Fatalf("rollout %s at wave %s, eu-1 %+v; want eu-1 Updating and Unknown", st.Phase, st.CurrentWaveName, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if st := f.status("r2"); st.Phase != v1.RolloutProgressing || st.CurrentWaveName != "eu" {
		t.Fatalf("with eu-1 silent: %s at wave %s (%s); want Progressing at eu", st.Phase, st.CurrentWaveName, st.Message)
	}
	f.stop("eu-1", false)
	st := f.waitPhase("r2", 20*time.Second, v1.RolloutSucceeded, v1.RolloutRolledBack, v1.RolloutFailed)
	if st.Phase != v1.RolloutSucceeded {
		t.Fatalf("phase %s (%s), want Succeeded", st.Phase, st.Message)
	}
}

func clusterOf(st v1.RolloutStatus, name string) v1.RolloutCluster {
	for _, c := range st.Clusters {
		if c.Name == name {
			return c
		}
	}
	return v1.RolloutCluster{}
}

// TestNewerReleaseSupersedes starts a rollout held at an approval, then a newer one: the older ends
// Superseded, the newer runs to the end.
func TestNewerReleaseSupersedes(t *testing.T) {
	f := newFleet(t, threeClusters)
	f.gated(t)
	f.strategy("waves", waves())
	_, stop := f.run("a")
	defer stop()
	f.rollout("r2", "r2", "gated")
	f.waitPhase("r2", 20*time.Second, v1.RolloutWaitingApproval)
	f.rollout("r3", "r3", "waves")
	if st := f.waitPhase("r2", 20*time.Second, v1.RolloutSuperseded); !strings.Contains(st.Message, "r3") {
		t.Errorf("superseded message %q should name r3", st.Message)
	}
	f.waitPhase("r3", 20*time.Second, v1.RolloutSucceeded)
	for c, r := range f.assigned() {
		if r != "r3" {
			t.Errorf("cluster %s is assigned %s, want r3", c, r)
		}
	}
}

// TestOneLeader runs two runners on one store: exactly one leads.
func TestOneLeader(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testOneLeader(t, newFleet(t, threeClusters)) })
	t.Run("postgres", func(t *testing.T) { testOneLeader(t, newFleetOn(t, pgtest.NewDatabase(t), threeClusters)) })
}

func testOneLeader(t *testing.T, f *fleet) {
	a, stopA := f.run("a")
	defer stopA()
	b, stopB := f.run("b")
	defer stopB()
	deadline := time.Now().Add(5 * time.Second)
	for !a.Leading() && !b.Leading() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if a.Leading() == b.Leading() {
		t.Fatalf("a leads %v, b leads %v; want exactly one", a.Leading(), b.Leading())
	}
}

// TestFailedClusterSpendsTheBudget makes the release fail on every cluster that runs it: the canary
// reports Failed, the wave's budget (0) is spent and the rollout rolls back by itself.
func TestFailedClusterSpendsTheBudget(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.setHealth("r2", rollout.HealthFailed)
	f.agents(ctx, 20*time.Millisecond)
	f.strategy("waves", waves())
	_, stop := f.run("a")
	defer stop()
	f.rollout("r2", "r2", "waves")
	st := f.waitPhase("r2", 20*time.Second, v1.RolloutSucceeded, v1.RolloutRolledBack, v1.RolloutFailed)
	if st.Phase != v1.RolloutRolledBack || !strings.Contains(st.Message, "budget 0") {
		t.Fatalf("phase %s (%s), want RolledBack for the spent budget", st.Phase, st.Message)
	}
	if got := f.everAssigned()["r2"]; !slices.Equal(got, []string{"canary-1"}) {
		t.Errorf("clusters ever assigned r2: %v; want only the canary", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st.RestoredAt == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		st = f.status("r2")
	}
	if st.RestoredAt == nil || st.FailedAt == nil {
		t.Errorf("failedAt %v restoredAt %v; want both", st.FailedAt, st.RestoredAt)
	}
}

// TestTakeoverFencesTheOldLeader has a second runner take the leadership while the first still
// runs (its lease looks expired to the second, whose clock is an hour ahead): the first notices at
// its next renewal and stops leading, and the second carries the rollout to the end with no
// cluster assigned twice.
func TestTakeoverFencesTheOldLeader(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx := f.gated(t)
	a, stopA := f.run("a")
	defer stopA()
	f.rollout("r2", "r2", "gated")
	f.waitPhase("r2", 20*time.Second, v1.RolloutWaitingApproval)
	later := func() time.Time { return time.Now().Add(time.Hour) }
	b, stopB := f.run("b", func(o *runner.Options) { o.Now, o.DisconnectAfter = later, 2*time.Hour })
	defer stopB()
	deadline := time.Now().Add(10 * time.Second)
	for (a.Leading() || !b.Leading()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if a.Leading() || !b.Leading() {
		t.Fatalf("after the takeover a leads %v, b leads %v; want only b", a.Leading(), b.Leading())
	}
	// The replica that serves the approval keeps time with b (clocks of replicas agree; deadlines
	// set an hour apart would expire at once).
	if _, err := runner.Act(ctx, f.st, "r2", rollout.Approval{User: "user:carol", Roles: []string{"sre"}}, admin, later); err != nil {
		t.Fatalf("approve: %v", err)
	}
	st := f.waitPhase("r2", 20*time.Second, v1.RolloutSucceeded, v1.RolloutRolledBack, v1.RolloutFailed)
	if st.Phase != v1.RolloutSucceeded {
		t.Fatalf("phase %s (%s), want Succeeded", st.Phase, st.Message)
	}
	evs, _ := f.st.Events(ctx, 0, 100000, store.EventFilter{Kinds: []string{store.KindAssignments}})
	count := map[string]int{}
	for _, ev := range evs {
		var ch store.AssignmentsChange
		_ = json.Unmarshal(ev.Object.Spec, &ch)
		for _, ds := range ch.Changed {
			for _, as := range ds.Assignments {
				if as.Release == "r2" {
					count[ds.Cluster]++
				}
			}
		}
	}
	for _, c := range []string{"canary-1", "eu-1", "us-1"} {
		if count[c] != 1 {
			t.Errorf("cluster %s was assigned r2 %d times, want once", c, count[c])
		}
	}
}

// TestStuckRolloutSaysWhy gives a rollout a release whose bundle is not stored: the runner cannot
// write the first assignment, says so in the rollout's status, and carries on once the bundle is
// there.
func TestStuckRolloutSaysWhy(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.agents(ctx, 20*time.Millisecond)
	o := f.create(v1.KindRelease, "r4", nil, `{"service":"web","commit":{"sha":"0123456789abcdef0123456789abcdef01234567"},"serviceSpec":{"source":{"name":"shop"},"placement":{"clusterSelector":{}}}}`)
	o.Status, _ = json.Marshal(v1.ReleaseStatus{Phase: v1.ReleaseRendered,
		Bundles: []v1.ReleaseBundle{{Digest: digest("r4"), Clusters: []string{"canary-1", "eu-1", "us-1"}}}})
	if _, err := f.st.UpdateStatus(ctx, o, admin); err != nil {
		t.Fatal(err)
	}
	f.strategy("waves", waves())
	_, stop := f.run("a")
	defer stop()
	f.rollout("r4", "r4", "waves")
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := f.status("r4")
		if strings.Contains(st.Message, "cannot carry out the next step") && strings.Contains(st.Message, "not stored") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %s %q; want it to say why the rollout does not move", st.Phase, st.Message)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := f.st.PutBundle(ctx, digest("r4"), []byte("r4"), admin); err != nil {
		t.Fatal(err)
	}
	st := f.waitPhase("r4", 60*time.Second, v1.RolloutSucceeded, v1.RolloutRolledBack, v1.RolloutFailed)
	if st.Phase != v1.RolloutSucceeded || strings.Contains(st.Message, "cannot carry out") {
		t.Fatalf("phase %s %q; want Succeeded without the stuck message", st.Phase, st.Message)
	}
}
