package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/notify"
	"flotilla.dev/flotilla/internal/signature"
	"flotilla.dev/flotilla/internal/testfleet"
	"flotilla.dev/flotilla/internal/testhaproxy"
	"flotilla.dev/flotilla/internal/testprom"
)

// rolloutFixture is a server, one agent per cluster of the fleet (labelled so that the first is
// the canary, the second is in region eu and the third in us), a real HAProxy as the traffic
// router "edge", a real Prometheus scraping per-cluster request counters whose error rate follows
// the release each cluster runs, and service web running release r1 everywhere.
type rolloutFixture struct {
	t        *testing.T
	f        *testfleet.Fleet
	ns       string
	s        *server
	dataDir  string
	prom     *testprom.Prometheus
	clusters []*testfleet.Cluster
	names    []string
	tokens   map[string]string // cluster -> bootstrap token
	states   map[string]string // cluster -> agent state dir
	agents   map[string]*process
	seen     *seenReleases
	// notes receives the server's rollout notifications (--notify-webhook), signed with notifyKey.
	notes      *notificationSink
	serverArgs []string

	mu  sync.Mutex
	bad map[string]bool // releases that raise the error rate
}

// notificationSink is a web hook that keeps the rollout notifications it receives with a valid
// signature, and counts the others.
type notificationSink struct {
	key      []byte
	mu       sync.Mutex
	notes    []notify.Notification
	rejected int
}

func (n *notificationSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := signature.Verify(r, n.key, time.Now(), time.Minute, 1<<20)
	n.mu.Lock()
	defer n.mu.Unlock()
	var note notify.Notification
	if err == nil {
		err = json.Unmarshal(body, &note)
	}
	if err != nil {
		n.rejected++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	n.notes = append(n.notes, note)
}

// phases lists the phases of the notifications received for rollout, in order.
func (n *notificationSink) phases(rollout string) (phases []string, rejected int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, note := range n.notes {
		if note.Rollout == rollout {
			phases = append(phases, note.Phase)
		}
	}
	return phases, n.rejected
}

// seenReleases records every release each cluster's ConfigMap web-config was seen saying.
type seenReleases struct {
	mu   sync.Mutex
	seen map[string][]string
	now  map[string]string
	// since is when each cluster's ConfigMap was first seen saying what it says now.
	since map[string]time.Time
}

func (s *seenReleases) get(cluster string) (now string, ever []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now[cluster], slices.Clone(s.seen[cluster])
}

var clusterLabels = [][]string{{"ring=canary", "region=eu"}, {"region=eu"}, {"region=us"}}

func newRolloutFixture(t *testing.T) *rolloutFixture {
	t.Helper()
	testhaproxy.Binary(t)
	prom := testprom.Start(t)
	f := testfleet.Get(t)
	if len(f.Clusters) < 3 {
		t.Fatalf("need 3 clusters, the fleet has %d", len(f.Clusters))
	}
	x := &rolloutFixture{t: t, f: f, ns: f.Namespace(t), dataDir: t.TempDir(), prom: prom, clusters: f.Clusters[:3],
		tokens: map[string]string{}, states: map[string]string{}, agents: map[string]*process{},
		seen: &seenReleases{seen: map[string][]string{}, now: map[string]string{}, since: map[string]time.Time{}}, bad: map[string]bool{}}
	x.notes = &notificationSink{key: []byte("notify-key")}
	hook := httptest.NewServer(x.notes)
	t.Cleanup(hook.Close)
	keyFile := filepath.Join(t.TempDir(), "notify-key")
	if err := os.WriteFile(keyFile, x.notes.key, 0o600); err != nil {
		t.Fatal(err)
	}
	x.serverArgs = []string{"--notify-webhook", hook.URL, "--notify-webhook-secret-file", keyFile}
	x.s = startServerIn(t, x.dataDir, "127.0.0.1:0", x.serverArgs...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	var servers []testhaproxy.Server
	for i, c := range x.clusters {
		x.names = append(x.names, c.Name)
		x.tokens[c.Name] = x.s.register(t, c.Name, append([]string{"env=e2e"}, clusterLabels[i]...)...)
		x.states[c.Name] = t.TempDir()
		x.startAgent(c)
		b := testhaproxy.StartBackend(t, c.Name, func() string { return "ok" })
		servers = append(servers, testhaproxy.Server{Name: c.Name, Addr: b.Addr})
		patch := fmt.Sprintf(`{"spec":{"traffic":[{"router":"edge","backend":%q}]}}`, c.Name)
		if _, err := x.s.Admin.Patch(ctx, "clusters", c.Name, []byte(patch)); err != nil {
			t.Fatalf("cluster %s: traffic: %v", c.Name, err)
		}
		prom.SetErrorRate(c.Name, 0)
		go x.follow(ctx, c)
	}
	hap := testhaproxy.Start(t, testhaproxy.Config{Backend: "web", Servers: servers})
	x.apply(`apiVersion: flotilla.dev/v1alpha1
kind: TrafficRouter
metadata: {name: edge}
spec:
  haproxy: {runtimeAPI: "` + hap.RuntimeAPI + `", backend: web}
---
apiVersion: flotilla.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics:
  - name: error-rate
    interval: 2s
    count: 4
    failureLimit: 0
    successCondition: "result < 0.05"
    provider:
      prometheus:
        address: ` + prom.URL + `
        query: |
          sum(rate(http_requests_total{cluster="{{ .Cluster.Name }}",code="500"}[10s]))
          / sum(rate(http_requests_total{cluster="{{ .Cluster.Name }}"}[10s]))
---
apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: web-canary}
spec:
  type: canary
  trafficRouter: edge
  onFailure: rollback
  waves:
  - name: canary
    clusters: {matchLabels: {ring: canary}}
    steps:
    - {weight: 10, analysis: [{template: error-rate}]}
  - name: eu
    clusters: {matchLabels: {region: eu}}
  - name: rest
    clusters: {}
    maxParallel: "100%"
---
apiVersion: flotilla.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  source: {name: shop, path: deploy/web}
  namespace: ` + x.ns + `
  placement: {clusterSelector: {matchLabels: {env: e2e}}}
  strategy: web-canary
`)
	x.release("web-r1")
	if _, err := x.s.Admin.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-r1", Clusters: x.names}); err != nil {
		t.Fatalf("assign web-r1: %v", err)
	}
	for _, c := range x.clusters {
		eventually(t, 2*time.Minute, c.Name+" runs web-r1, healthy", func(ctx context.Context) error {
			return x.runsHealthy(ctx, c.Name, "web-r1")
		})
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := prom.WaitForScrapes(wctx, 6); err != nil {
		t.Fatalf("prometheus: %v", err)
	}
	return x
}

func (x *rolloutFixture) startAgent(c *testfleet.Cluster) {
	x.agents[c.Name] = runAgentWith(x.t, x.s, c, x.tokens[c.Name], "--state-dir", x.states[c.Name])
}

// follow records what release cluster c runs, and sets its error rate to what that release
// causes, as a real workload would.
func (x *rolloutFixture) follow(ctx context.Context, c *testfleet.Cluster) {
	for ctx.Err() == nil {
		if cm, err := c.Client.CoreV1().ConfigMaps(x.ns).Get(ctx, "web-config", metav1.GetOptions{}); err == nil {
			rel := cm.Data["release"]
			x.seen.mu.Lock()
			if x.seen.now[c.Name] != rel {
				x.seen.since[c.Name] = time.Now()
			}
			x.seen.now[c.Name] = rel
			if !slices.Contains(x.seen.seen[c.Name], rel) {
				x.seen.seen[c.Name] = append(x.seen.seen[c.Name], rel)
			}
			x.seen.mu.Unlock()
			x.mu.Lock()
			bad := x.bad[rel]
			x.mu.Unlock()
			if bad {
				x.prom.SetErrorRate(c.Name, 0.5)
			} else {
				x.prom.SetErrorRate(c.Name, 0)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (x *rolloutFixture) apply(objs string) {
	x.t.Helper()
	loaded, err := v1.LoadYAML("objects.yaml", []byte(objs))
	if err != nil {
		x.t.Fatal(err)
	}
	if _, err := x.s.Admin.Apply(context.Background(), loaded); err != nil {
		x.t.Fatalf("apply: %v", err)
	}
}

// release creates release name of web: a ConfigMap saying its name, for every cluster.
func (x *rolloutFixture) release(name string) {
	x.t.Helper()
	x.s.releaseOf(x.t, "web", name, []map[string]any{configMap(x.ns, "web-config", name)}, x.names, false)
}

// rollout creates a rollout of release with the named strategy ("" for the service's).
func (x *rolloutFixture) rollout(release, strategy string) {
	x.t.Helper()
	ro := &v1.Rollout{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRollout},
		Metadata: v1.ObjectMeta{Name: release}, Spec: v1.RolloutSpec{Service: "web", Release: release, Strategy: strategy}}
	if _, err := x.s.Admin.Create(context.Background(), ro); err != nil {
		x.t.Fatalf("create rollout %s: %v", release, err)
	}
}

func (x *rolloutFixture) status(ctx context.Context, name string) (v1.RolloutStatus, error) {
	o, err := x.s.Admin.Get(ctx, "rollouts", name)
	if err != nil {
		return v1.RolloutStatus{}, err
	}
	return o.(*v1.Rollout).Status, nil
}

// waitPhase waits for the rollout to be in phase and returns its status.
func (x *rolloutFixture) waitPhase(name string, limit time.Duration, phase v1.RolloutPhase) v1.RolloutStatus {
	x.t.Helper()
	var st v1.RolloutStatus
	eventually(x.t, limit, fmt.Sprintf("rollout %s is %s", name, phase), func(ctx context.Context) error {
		var err error
		if st, err = x.status(ctx, name); err != nil {
			return err
		}
		if st.Phase != phase {
			return fmt.Errorf("phase %s (%s) at wave %s: %s", st.Phase, st.Message, st.CurrentWaveName, clustersLine(st))
		}
		return nil
	})
	return st
}

func clustersLine(st v1.RolloutStatus) string {
	var parts []string
	for _, c := range st.Clusters {
		parts = append(parts, fmt.Sprintf("%s=%s/%s/%s", c.Name, c.Phase, c.Release, c.Health))
	}
	return strings.Join(parts, " ")
}

// runsHealthy checks that cluster runs release and its agent reports it healthy.
func (x *rolloutFixture) runsHealthy(ctx context.Context, cluster, release string) error {
	if now, _ := x.seen.get(cluster); now != "" && now != release {
		return fmt.Errorf("%s: configmap says %s", cluster, now)
	}
	rep, err := x.s.Admin.AgentReport(ctx, cluster)
	if err != nil {
		return err
	}
	for _, sr := range rep.Report.Services {
		if sr.Service == "web" {
			if sr.Release != release || sr.Health != v1.HealthHealthy {
				return fmt.Errorf("%s reports web %s %s", cluster, sr.Release, sr.Health)
			}
			return nil
		}
	}
	return fmt.Errorf("%s reports no web", cluster)
}

// assignedByRollout returns the clusters the rollout's transitions assigned release to, from its
// audit trail, in order (a cluster assigned twice appears twice).
func (x *rolloutFixture) assignedByRollout(ctx context.Context, rollout, release string) []string {
	x.t.Helper()
	evs, err := x.s.Admin.Audit(ctx, client.AuditOptions{Kind: "RolloutAudit", Name: rollout, Limit: 10000})
	if err != nil {
		x.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs.Items {
		var o struct {
			Spec struct {
				Actions []string `json:"actions"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(ev.Object, &o); err != nil {
			x.t.Fatal(err)
		}
		for _, a := range o.Spec.Actions {
			if rest, ok := strings.CutPrefix(a, "assign "+release+" "); ok {
				out = append(out, strings.Split(rest, ",")...)
			}
		}
	}
	return out
}

func (x *rolloutFixture) cliAs(token string, args ...string) (string, error) {
	cmd := exec.Command(flotillaBinary(x.t), append(args, "--server", x.s.URL, "--token", token)...)
	cmd.Env = append(cmd.Environ(), "FLOTILLA_CONFIG="+filepath.Join(x.t.TempDir(), "config.yaml"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Given the fleet on web-r1 and a canary strategy (canary, eu, rest), when web-r2 is planned and
// rolled out and its error rate stays low, then the plan shows each cluster in its wave before
// anything starts, the canary's analysis passes on Prometheus' numbers, every wave gets it, every
// cluster runs it healthy, the service's current release is web-r2, and each cluster was
// assigned it exactly once.
func TestRolloutGoodReleaseReachesEveryWave(t *testing.T) {
	x := newRolloutFixture(t)
	ctx := context.Background()
	x.release("web-r2")
	plan := x.s.cli(t, "rollout", "plan", "web", "--release", "web-r2")
	for _, want := range []string{"Wave 1: canary", x.names[0], "Wave 2: eu", x.names[1], "Wave 3: rest", x.names[2], "analysis error-rate",
		"Weights: read from router edge"} {
		if !strings.Contains(plan, want) {
			t.Errorf("rollout plan does not show %q:\n%s", want, plan)
		}
	}
	x.rollout("web-r2", "")
	// A person follows it with the CLI; not on a terminal, it prints a line per change and ends
	// with the rollout.
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	watch := exec.CommandContext(wctx, flotillaBinary(t), "rollout", "status", "web-r2", "--watch", "--server", x.s.URL, "--token", x.s.Token)
	watch.Env = append(watch.Environ(), "FLOTILLA_CONFIG="+filepath.Join(t.TempDir(), "config.yaml"))
	watched := make(chan string, 1)
	go func() {
		out, err := watch.CombinedOutput()
		if err != nil {
			out = append(out, []byte("\nerror: "+err.Error())...)
		}
		watched <- string(out)
	}()
	st := x.waitPhase("web-r2", 4*time.Minute, v1.RolloutSucceeded)
	for _, c := range x.names {
		eventually(t, time.Minute, c+" runs web-r2", func(ctx context.Context) error { return x.runsHealthy(ctx, c, "web-r2") })
	}
	select {
	case out := <-watched:
		for _, want := range []string{"rollout web-r2 Progressing", "wave eu", "gate canary/step 0 analysis Passed",
			"cluster " + x.names[2] + " Healthy release web-r2", "rollout web-r2 Succeeded"} {
			if !strings.Contains(out, want) {
				t.Errorf("rollout status --watch did not print %q:\n%s", want, out)
			}
		}
	case <-time.After(time.Minute):
		t.Errorf("rollout status --watch did not end with the rollout")
	}
	if len(st.Analyses) != 1 || st.Analyses[0].Phase != v1.GatePassed {
		t.Errorf("analyses %+v; want one passed run", st.Analyses)
	}
	got := x.assignedByRollout(ctx, "web-r2", "web-r2")
	slices.Sort(got)
	if !slices.Equal(got, x.names) {
		t.Errorf("assignments of web-r2 by the rollout: %v; want each cluster once: %v", got, x.names)
	}
	eventually(t, 30*time.Second, "the service's current release is web-r2", func(ctx context.Context) error {
		svc, err := x.s.Admin.Get(ctx, "services", "web")
		if err != nil {
			return err
		}
		if ss := svc.(*v1.Service).Status; ss.CurrentRelease != "web-r2" || ss.ActiveRollout != "" {
			return fmt.Errorf("service status %+v", ss)
		}
		return nil
	})
	out := x.s.cli(t, "rollout", "status", "web-r2")
	if !strings.Contains(out, "Phase: Succeeded") || !strings.Contains(out, "Wave rest: 1/1 healthy") {
		t.Errorf("rollout status:\n%s", out)
	}
}

// Given the fleet on web-r1, when web-r2 raises the error rate of every cluster that runs it, then
// the canary's analysis fails and the rollout rolls back by itself: no cluster outside the canary
// wave ever receives web-r2, and every touched cluster is back on web-r1 and healthy. The release
// is marked failed.
func TestRolloutBadReleaseRollsBackAutomatically(t *testing.T) {
	x := newRolloutFixture(t)
	ctx := context.Background()
	x.mu.Lock()
	x.bad["web-r2"] = true
	x.mu.Unlock()
	x.release("web-r2")
	x.rollout("web-r2", "")
	st := x.waitPhase("web-r2", 4*time.Minute, v1.RolloutRolledBack)
	if len(st.Analyses) != 1 || st.Analyses[0].Phase != v1.GateFailed {
		t.Errorf("analyses %+v; want one failed run", st.Analyses)
	}
	for _, c := range x.names {
		eventually(t, time.Minute, c+" runs web-r1 again, healthy", func(ctx context.Context) error { return x.runsHealthy(ctx, c, "web-r1") })
	}
	eventually(t, time.Minute, "the rollout records the restore", func(ctx context.Context) error {
		var err error
		if st, err = x.status(ctx, "web-r2"); err != nil {
			return err
		}
		if st.RestoredAt == nil || st.FailedAt == nil {
			return fmt.Errorf("failedAt %v restoredAt %v", st.FailedAt, st.RestoredAt)
		}
		return nil
	})
	x.seen.mu.Lock()
	back := x.seen.since[x.names[0]]
	x.seen.mu.Unlock()
	t.Logf("failed analysis to every touched cluster healthy on web-r1 (as the server saw the agents' reports): %s; "+
		"to the canary's ConfigMap saying web-r1 again (as the test saw it, polling every 50ms): %s",
		st.RestoredAt.Sub(*st.FailedAt).Round(time.Millisecond), back.Sub(*st.FailedAt).Round(time.Millisecond))
	if got := x.assignedByRollout(ctx, "web-r2", "web-r2"); !slices.Equal(got, x.names[:1]) {
		t.Errorf("clusters assigned web-r2: %v; want only the canary %s", got, x.names[0])
	}
	for _, c := range x.names[1:] {
		if _, ever := x.seen.get(c); slices.Contains(ever, "web-r2") {
			t.Errorf("cluster %s outside the canary ran web-r2 (seen %v)", c, ever)
		}
	}
	rel, err := x.s.Admin.Get(ctx, "releases", "web-r2")
	if err != nil {
		t.Fatal(err)
	}
	if f := rel.(*v1.Release).Status.Failed; f == nil || f.Rollout != "web-r2" {
		t.Errorf("release web-r2 failed mark %+v; want set by rollout web-r2", f)
	}
	// The web hook heard, signed, that the rollout started and was rolled back.
	eventually(t, time.Minute, "the rollback is notified", func(context.Context) error {
		phases, rejected := x.notes.phases("web-r2")
		if rejected != 0 || !slices.Contains(phases, string(v1.RolloutRolledBack)) {
			return fmt.Errorf("notified phases %v, %d refused for their signature", phases, rejected)
		}
		return nil
	})
}

// Given a strategy whose eu wave waits for an approval by a deployer, when the rollout reaches it,
// then get shows it waiting, a viewer's approval is refused with the reason and changes nothing,
// and a deployer's approval lets it run to the end.
func TestRolloutApprovalGateHoldsUntilApproved(t *testing.T) {
	x := newRolloutFixture(t)
	ctx := context.Background()
	x.apply(`apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: web-gated}
spec:
  type: rolling
  waves:
  - name: canary
    clusters: {matchLabels: {ring: canary}}
  - name: eu
    clusters: {matchLabels: {region: eu}}
    before: [{approval: {roles: [deployer]}}]
  - name: rest
    clusters: {}
`)
	viewer, err := x.s.Admin.CreateToken(ctx, v1.TokenRequest{Name: "viewer", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	deployer, err := x.s.Admin.CreateToken(ctx, v1.TokenRequest{Name: "deployer", Role: "deployer"})
	if err != nil {
		t.Fatal(err)
	}
	x.release("web-r2")
	x.rollout("web-r2", "web-gated")
	x.waitPhase("web-r2", 3*time.Minute, v1.RolloutWaitingApproval)
	if out := x.s.cli(t, "get", "rollouts"); !strings.Contains(out, "approval by deployer") {
		t.Errorf("get rollouts does not show the pending approval:\n%s", out)
	}
	out, err := x.cliAs(viewer.Secret, "rollout", "approve", "web-r2")
	if err == nil || !strings.Contains(out, "may not update rollouts") {
		t.Errorf("approve as viewer: err %v, output %q; want a refusal saying why", err, out)
	}
	time.Sleep(3 * time.Second)
	st, err := x.status(ctx, "web-r2")
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != v1.RolloutWaitingApproval {
		t.Fatalf("after the viewer's approval: %s; want still WaitingApproval", st.Phase)
	}
	if _, ever := x.seen.get(x.names[1]); slices.Contains(ever, "web-r2") {
		t.Errorf("the eu cluster got web-r2 before the approval")
	}
	if out, err := x.cliAs(deployer.Secret, "rollout", "approve", "web-r2"); err != nil {
		t.Fatalf("approve as deployer: %v\n%s", err, out)
	}
	st = x.waitPhase("web-r2", 3*time.Minute, v1.RolloutSucceeded)
	approved := ""
	for _, g := range st.Gates {
		if g.Type == "approval" {
			approved = g.ApprovedBy
		}
	}
	if approved != "token:deployer" {
		t.Errorf("approval gate approved by %q, want token:deployer", approved)
	}
}

// Given a rollout waiting at the eu wave's approval, when the eu cluster's agent is stopped and the
// wave approved, then the wave waits for it (nothing is rolled back, nothing further is assigned);
// when the agent returns, the rollout completes.
func TestRolloutWaitsForAStoppedAgent(t *testing.T) {
	x := newRolloutFixture(t)
	x.apply(`apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: web-gated}
spec:
  type: rolling
  waves:
  - name: canary
    clusters: {matchLabels: {ring: canary}}
  - name: eu
    clusters: {matchLabels: {region: eu}}
    before: [{approval: {roles: [admin]}}]
  - name: rest
    clusters: {}
`)
	ctx := context.Background()
	eu := x.clusters[1]
	x.release("web-r2")
	x.rollout("web-r2", "web-gated")
	x.waitPhase("web-r2", 3*time.Minute, v1.RolloutWaitingApproval)
	x.agents[eu.Name].Kill(t)
	if _, err := x.s.Admin.RolloutAction(ctx, "web-r2", "approve", ""); err != nil {
		t.Fatalf("approve: %v", err)
	}
	eventually(t, time.Minute, "the eu cluster is assigned web-r2", func(ctx context.Context) error {
		ds, err := x.s.Admin.Assignments(ctx, eu.Name)
		if err != nil {
			return err
		}
		for _, a := range ds.Assignments {
			if a.Service == "web" && a.Release == "web-r2" {
				return nil
			}
		}
		return fmt.Errorf("assignments %+v", ds.Assignments)
	})
	time.Sleep(10 * time.Second)
	st, err := x.status(ctx, "web-r2")
	if err != nil {
		t.Fatal(err)
	}
	var euState v1.RolloutCluster
	for _, c := range st.Clusters {
		if c.Name == eu.Name {
			euState = c
		}
	}
	if st.Phase != v1.RolloutProgressing || st.CurrentWaveName != "eu" || euState.Phase != v1.ClusterRolloutUpdating {
		t.Fatalf("with the eu agent stopped: %s at wave %s, %s %+v; want Progressing, waiting at eu with the cluster Updating",
			st.Phase, st.CurrentWaveName, eu.Name, euState)
	}
	if _, ever := x.seen.get(x.names[2]); slices.Contains(ever, "web-r2") {
		t.Errorf("the next wave's cluster got web-r2 while eu waited")
	}
	x.startAgent(eu)
	x.waitPhase("web-r2", 3*time.Minute, v1.RolloutSucceeded)
	for _, c := range x.names {
		eventually(t, time.Minute, c+" runs web-r2", func(ctx context.Context) error { return x.runsHealthy(ctx, c, "web-r2") })
	}
}

// Given a rollout in the middle of its canary analysis, when the server is killed with SIGKILL
// and started again on the same data, then the rollout resumes where it was: the analysis runs
// again, the rollout completes, and no cluster is assigned web-r2 twice.
func TestRolloutResumesAfterServerKill(t *testing.T) {
	x := newRolloutFixture(t)
	ctx := context.Background()
	x.apply(`apiVersion: flotilla.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: slow-error-rate}
spec:
  metrics:
  - name: error-rate
    interval: 2s
    count: 8
    failureLimit: 0
    successCondition: "result < 0.05"
    provider:
      prometheus:
        address: ` + x.prom.URL + `
        query: |
          sum(rate(http_requests_total{cluster="{{ .Cluster.Name }}",code="500"}[10s]))
          / sum(rate(http_requests_total{cluster="{{ .Cluster.Name }}"}[10s]))
---
apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: web-slow}
spec:
  type: canary
  trafficRouter: edge
  waves:
  - name: canary
    clusters: {matchLabels: {ring: canary}}
    steps:
    - {weight: 10, analysis: [{template: slow-error-rate}]}
  - name: eu
    clusters: {matchLabels: {region: eu}}
    after: [{bake: 5s}]
  - name: rest
    clusters: {}
`)
	x.release("web-r2")
	x.rollout("web-r2", "web-slow")
	eventually(t, 3*time.Minute, "the canary analysis runs", func(ctx context.Context) error {
		st, err := x.status(ctx, "web-r2")
		if err != nil {
			return err
		}
		if len(st.Analyses) == 0 || st.Analyses[0].Phase != v1.GateRunning {
			return fmt.Errorf("phase %s, analyses %+v", st.Phase, st.Analyses)
		}
		return nil
	})
	addr := strings.TrimPrefix(x.s.URL, "http://")
	x.s.Proc.Kill(t)
	x.s = startServerIn(t, x.dataDir, addr, x.serverArgs...)
	st := x.waitPhase("web-r2", 4*time.Minute, v1.RolloutSucceeded)
	if len(st.Analyses) < 1 || st.Analyses[len(st.Analyses)-1].Phase != v1.GatePassed {
		t.Errorf("analyses after the restart %+v; want the canary's run passed", st.Analyses)
	}
	got := x.assignedByRollout(ctx, "web-r2", "web-r2")
	slices.Sort(got)
	if !slices.Equal(got, x.names) {
		t.Errorf("assignments of web-r2: %v; want each cluster exactly once: %v", got, x.names)
	}
	for _, c := range x.names {
		eventually(t, time.Minute, c+" runs web-r2", func(ctx context.Context) error { return x.runsHealthy(ctx, c, "web-r2") })
	}
}
