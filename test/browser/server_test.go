package browser_test

import (
	"context"
	"crypto/sha1"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/open"
	"flotilla.dev/flotilla/internal/testproc"
)

// server is a running `flotilla server` on a SQLite file.
type server struct {
	url    string
	db     string
	admin  *client.Client
	tokens map[string]string // role -> secret
}

// startServer runs the server until the test ends, with a deployer's and a viewer's token.
func startServer(t *testing.T) *server {
	t.Helper()
	ts := testproc.StartServer(t, testproc.Build(t, "flotilla.dev/flotilla/cmd/flotilla"),
		"--allow-local-sources") // the release test's repository is a file:// URL
	s := &server{url: ts.URL, db: filepath.Join(ts.DataDir, "flotilla.db"), admin: ts.Admin, tokens: map[string]string{"admin": ts.Token}}
	for _, role := range []string{"deployer", "viewer"} {
		tk, err := s.admin.CreateToken(context.Background(), v1.TokenRequest{Name: role, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[role] = tk.Secret
	}
	return s
}

func (s *server) client(t *testing.T, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Server: s.url, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hostile is text that would run script if a page used it as markup.
const hostile = `<img src=x onerror="document.body.dataset.pwned=1"><script>document.body.dataset.pwned=2</script><a href="javascript:document.body.dataset.pwned=3">x</a>`

func tp(t time.Time) *time.Time { return &t }

func fp(f float64) *float64 { return &f }

// seed creates a fleet of clusters with agent reports, a service with releases and rollouts
// (finished ones for the KPIs, one in flight with analysis and traffic), through the API.
// agentConn is a registered agent holding its cluster's lease.
type agentConn struct {
	client *client.Client
	epoch  int64
}

func seed(t *testing.T, s *server, clusters []string) map[string]agentConn {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	var objs []v1.Object
	for _, name := range clusters {
		region, ring := "eu", "main"
		if strings.HasPrefix(name, "us") {
			region = "us"
		}
		if strings.HasSuffix(name, "canary") {
			ring = "canary"
		}
		objs = append(objs, &v1.Cluster{Metadata: v1.ObjectMeta{Name: name, Labels: map[string]string{"region": region, "ring": ring, "env": "prod"},
			Annotations: map[string]string{"owner": hostile}}})
	}
	objs = append(objs,
		&v1.Source{Metadata: v1.ObjectMeta{Name: "shop"}, Spec: v1.SourceSpec{Git: &v1.GitSource{URL: "https://git.example.com/shop.git", Ref: v1.GitRef{Branch: "main"}}}},
		&v1.Service{Metadata: v1.ObjectMeta{Name: "web", Labels: map[string]string{"team": "storefront"}}, Spec: v1.ServiceSpec{Source: v1.ServiceSource{Name: "shop", Path: "deploy/web"},
			Placement: v1.Placement{ClusterSelector: &v1.LabelSelector{}}}})
	for i := 1; i <= 6; i++ {
		msg := fmt.Sprintf("web: change %d\n\nwith a longer body", i)
		if i == 6 {
			msg = "web: " + hostile
		}
		objs = append(objs, &v1.Release{Metadata: v1.ObjectMeta{Name: fmt.Sprintf("web-%d", i)}, Spec: v1.ReleaseSpec{Service: "web",
			Commit:      v1.Commit{SHA: fmt.Sprintf("%x", sha1.Sum([]byte(msg))), Message: msg, Author: "Ada <ada@example.com>", Time: tp(now.Add(-time.Duration(7-i)*24*time.Hour - 3*time.Hour))},
			ServiceSpec: v1.ServiceSpec{Source: v1.ServiceSource{Name: "shop", Path: "deploy/web"}, Placement: v1.Placement{ClusterSelector: &v1.LabelSelector{}}}}})
	}
	for _, o := range objs {
		o.Default()
	}
	if _, err := s.admin.Apply(ctx, objs); err != nil {
		t.Fatalf("apply the fleet: %v", err)
	}
	// Agent reports: canary and eu run web-6, the rest web-5; one cluster reports an error.
	anon := s.client(t, "")
	agents := map[string]agentConn{}
	for i, name := range clusters {
		bt, err := s.admin.CreateBootstrapToken(ctx, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		reg, err := anon.Register(ctx, v1.RegisterRequest{Token: bt.Token})
		if err != nil {
			t.Fatal(err)
		}
		agent := s.client(t, reg.Credential)
		lease, err := agent.AcquireLease(ctx, "test-"+name)
		if err != nil {
			t.Fatal(err)
		}
		rel, health := "web-5", v1.HealthHealthy
		if !strings.HasPrefix(name, "us") {
			rel = "web-6"
		}
		sv := v1.ServiceReport{Service: "web", Release: rel, Health: health, Objects: []v1.ObjectReport{
			{Group: "apps", Kind: "Deployment", Namespace: "web", Name: "web", Health: health},
			{Kind: "Service", Namespace: "web", Name: "web", Health: v1.HealthHealthy},
			{Kind: "ConfigMap", Namespace: "web", Name: "web-config", Health: v1.HealthHealthy, Drifted: i%4 == 1}}}
		if i == 2 {
			sv.Health = v1.HealthDegraded
			sv.Objects[0].Health, sv.Objects[0].Message = v1.HealthDegraded, "1 of 3 replicas unavailable: "+hostile
			sv.Errors = []v1.AgentError{{Object: "apps/Deployment/web/web", Message: "apply: " + hostile}}
			health = v1.HealthDegraded
		}
		agents[name] = agentConn{agent, lease.Epoch}
		if _, err := agent.PostStatus(ctx, lease.Epoch, v1.AgentStatusReport{Seq: 1, AgentVersion: "v0.1.0", KubernetesVersion: "v1.36.3",
			Health: health, Services: []v1.ServiceReport{sv}}); err != nil {
			t.Fatal(err)
		}
	}
	// Finished rollouts for the KPIs: web-1..5, web-3 rolled back and restored.
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("web-%d", i)
		fin := now.Add(-time.Duration(7-i) * 24 * time.Hour)
		st := v1.RolloutStatus{Phase: v1.RolloutSucceeded, CurrentWave: 2, CurrentStep: -1, StartedAt: tp(fin.Add(-40 * time.Minute)), FinishedAt: tp(fin)}
		if i == 3 {
			st.Phase, st.Message = v1.RolloutRolledBack, "analysis error-rate failed on eu-canary"
			st.FailedAt, st.RestoredAt = tp(fin.Add(-12*time.Minute)), tp(fin)
		}
		putRollout(t, s, name, "web", name, st)
	}
	return agents
}

// putRollout creates a rollout through the API and writes its status. The server's rollout
// runner fails a new rollout it cannot plan (these releases have no bundles) and then leaves it
// alone, so the status is written once the runner is done with it.
func putRollout(t *testing.T, s *server, name, service, release string, st v1.RolloutStatus) {
	t.Helper()
	putRolloutSpec(t, s, name, v1.RolloutSpec{Service: service, Release: release}, st)
}

// putRolloutSpec is putRollout of a rollout with spec.
func putRolloutSpec(t *testing.T, s *server, name string, spec v1.RolloutSpec, st v1.RolloutStatus) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.admin.Get(ctx, v1.KindRollout, name); err != nil {
		ro := &v1.Rollout{Metadata: v1.ObjectMeta{Name: name}, Spec: spec}
		ro.Default()
		if _, err := s.admin.Create(ctx, ro); err != nil {
			t.Fatalf("create rollout %s: %v", name, err)
		}
		// Written before the runner is done with it, the status would be overwritten.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			obj, err := s.admin.Get(ctx, v1.KindRollout, name)
			if err == nil && obj.(*v1.Rollout).Status.Phase.Terminal() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rollout %s: the runner did not finish with it in 30s (%v)", name, err)
			}
		}
	}
	for attempt := 0; ; attempt++ {
		obj, err := s.admin.Get(ctx, v1.KindRollout, name)
		if err != nil {
			t.Fatal(err)
		}
		ro := obj.(*v1.Rollout)
		ro.Status = st
		_, err = s.admin.UpdateStatus(ctx, ro)
		if err == nil {
			return
		}
		if attempt == 5 || !strings.Contains(err.Error(), "conflict") {
			t.Fatalf("status of rollout %s: %v", name, err)
		}
	}
}

// liveStatus is the status of a canary rollout in its first wave, with analysis and traffic.
func liveStatus(now time.Time, message string) v1.RolloutStatus {
	step := 0
	var ms []v1.Measurement
	for i, v := range []float64{0.002, 0.004, 0.003, 0.006, 0.005} {
		ms = append(ms, v1.Measurement{Time: now.Add(time.Duration(i-5) * 10 * time.Second), Value: fp(v), Phase: v1.MeasurementSuccessful})
	}
	bad := append([]v1.Measurement(nil), ms[:3]...)
	bad = append(bad, v1.Measurement{Time: now.Add(-20 * time.Second), Value: fp(0.014), Phase: v1.MeasurementFailed, Message: "result < 0.01 is false"})
	return v1.RolloutStatus{Phase: v1.RolloutProgressing, Message: message, PreviousRelease: "web-5", CurrentWave: 0, CurrentWaveName: "canary", CurrentStep: 0,
		StartedAt: tp(now.Add(-2 * time.Minute)),
		Clusters: []v1.RolloutCluster{
			{Name: "eu-canary", Wave: "canary", Phase: v1.ClusterRolloutHealthy, Release: "web-6", Health: v1.HealthHealthy, UpdatedAt: tp(now.Add(-time.Minute))},
			{Name: "eu-1", Wave: "eu", Phase: v1.ClusterRolloutPending, Release: "web-5"},
			{Name: "eu-2", Wave: "eu", Phase: v1.ClusterRolloutPending, Release: "web-5"},
			{Name: "us-1", Wave: "us", Phase: v1.ClusterRolloutPending, Release: "web-5"},
		},
		Gates:   []v1.GateResult{{Wave: "canary", Position: "step", Step: &step, Type: "analysis", Phase: v1.GateRunning, StartedAt: tp(now.Add(-50 * time.Second))}},
		Traffic: []v1.TrafficWeight{{Router: "edge", Cluster: "eu-canary", Backend: "eu-canary", Weight: 5}, {Router: "edge", Cluster: "eu-1", Backend: "eu-1", Weight: 95}},
		Analyses: []v1.AnalysisRun{{ID: "canary-0", Template: "error-rate", Wave: "canary", Step: &step, Phase: v1.GateRunning, Clusters: []string{"eu-canary"},
			StartedAt: tp(now.Add(-50 * time.Second)), Metrics: []v1.MetricResult{
				{Name: "error-rate", Cluster: "eu-canary", Condition: "result < 0.01", Threshold: fp(0.01), Phase: v1.GateRunning, Measurements: ms},
				{Name: "error-rate-p99", Cluster: "eu-canary", Condition: "result < 0.01", Threshold: fp(0.01), Phase: v1.GateFailed, Measurements: bad},
			}}},
	}
}

// canarySpec is the spec of a canary rollout of release with the strategy inline: the one
// liveStatus shows in flight.
func canarySpec(release string) v1.RolloutSpec {
	return v1.RolloutSpec{Service: "web", Release: release, StrategySpec: &v1.RolloutStrategySpec{Type: v1.StrategyCanary, TrafficRouter: "edge",
		Waves: []v1.Wave{
			{Name: "canary", Clusters: &v1.LabelSelector{MatchLabels: map[string]string{"ring": "canary"}},
				Steps: []v1.CanaryStep{{Weight: 5, Analysis: []v1.AnalysisRef{{Template: "error-rate"}}}, {Weight: 50}}},
			{Name: "eu", Clusters: &v1.LabelSelector{MatchLabels: map[string]string{"region": "eu"}}},
			{Name: "us", Clusters: &v1.LabelSelector{MatchLabels: map[string]string{"region": "us"}}}}}}
}

// approvalRollout starts a rollout of release web-7 through the API with a strategy whose only
// wave waits for a deployer's approval, and waits until the server's rollout runner has planned
// it and stopped at that gate.
func approvalRollout(t *testing.T, s *server, name string) {
	t.Helper()
	ctx := context.Background()
	ro := &v1.Rollout{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.RolloutSpec{Service: "web", Release: "web-7",
		StrategySpec: &v1.RolloutStrategySpec{Type: v1.StrategyRolling, Waves: []v1.Wave{{Name: "canary",
			Clusters: &v1.LabelSelector{MatchLabels: map[string]string{"ring": "canary"}},
			Before:   []v1.Gate{{Approval: &v1.ApprovalGate{Roles: []string{"deployer"}}}}},
			{Name: "rest", Clusters: &v1.LabelSelector{}}}}}}
	ro.Default()
	if _, err := s.admin.Create(ctx, ro); err != nil {
		t.Fatalf("create rollout %s: %v", name, err)
	}
	var st v1.RolloutStatus
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		obj, err := s.admin.Get(ctx, v1.KindRollout, name)
		if err != nil {
			t.Fatal(err)
		}
		if st = obj.(*v1.Rollout).Status; st.Phase == v1.RolloutWaitingApproval {
			return
		}
	}
	t.Fatalf("rollout %s did not reach its approval gate: %+v", name, st)
}

// renderedRelease cuts release name of web with one uploaded bundle for every cluster, as the
// source controller would after rendering.
func renderedRelease(t *testing.T, s *server, name string, clusters []string) {
	t.Helper()
	ctx := context.Background()
	b, err := bundle.New([]map[string]any{{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "web-config", "namespace": "web"}, "data": map[string]any{"release": name}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin.UploadBundle(ctx, b.Bytes(), b.Digest()); err != nil {
		t.Fatal(err)
	}
	rel := &v1.Release{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ReleaseSpec{Service: "web",
		Commit:      v1.Commit{SHA: strings.Repeat("7", 40), Message: "web: hotfix", Author: "Ada <ada@example.com>", Time: tp(time.Now().Add(-time.Hour))},
		ServiceSpec: v1.ServiceSpec{Source: v1.ServiceSource{Name: "shop", Path: "deploy/web"}, Placement: v1.Placement{ClusterSelector: &v1.LabelSelector{}}}}}
	rel.Default()
	obj, err := s.admin.Create(ctx, rel)
	if err != nil {
		t.Fatal(err)
	}
	r := obj.(*v1.Release)
	now := time.Now().UTC()
	r.Status = v1.ReleaseStatus{Phase: v1.ReleaseRendered, RenderedAt: &now, Bundles: []v1.ReleaseBundle{{Digest: b.Digest(), Clusters: clusters}}}
	if _, err := s.admin.UpdateStatus(ctx, r); err != nil {
		t.Fatal(err)
	}
}

// hostileLabel puts a label value on a cluster that the API would refuse (labels are validated),
// straight into the store, to show the dashboard escapes whatever the store holds.
func hostileLabel(t *testing.T, s *server, cluster string) {
	t.Helper()
	ctx := context.Background()
	st, err := open.Open(ctx, s.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o, err := st.Get(ctx, v1.KindCluster, cluster)
	if err != nil {
		t.Fatal(err)
	}
	o.Labels["note"] = hostile
	if _, err := st.Update(ctx, o, store.Actor{Kind: store.ActorSystem, Name: "browser-test"}); err != nil {
		t.Fatal(err)
	}
}
