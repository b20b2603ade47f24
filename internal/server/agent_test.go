package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/server"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/postgres"
	"flotilla.dev/flotilla/internal/store/postgres/pgtest"
	"flotilla.dev/flotilla/internal/store/sqlstore"
)

// agentRequestFor builds a request that succeeds on an agent-protocol route for a caller allowed
// to make it (used by the authorization matrix).
func agentRequestFor(t *testing.T, e *env, rt server.Route, clusterName string) (path string, body []byte) {
	t.Helper()
	ctx := context.Background()
	path = strings.Replace(rt.Path, "{name}", clusterName, 1)
	switch rt.Pattern() {
	case "POST /api/v1/clusters/{name}/revoke":
		if _, err := e.admin.CreateBootstrapToken(ctx, clusterName, 0); err != nil {
			t.Fatal(err)
		}
	case "GET /api/v1/clusters/{name}/agent":
		if _, err := e.store.RecordAgentStatus(ctx, store.AgentStatus{Cluster: clusterName, Seq: time.Now().UnixNano(), Health: v1.HealthHealthy,
			Report: json.RawMessage(`{"seq":1,"health":"Healthy"}`)}); err != nil {
			t.Fatal(err)
		}
	case "PUT /api/v1/assignments":
		body = mustJSON(t, v1.AssignRequest{Service: "web", Clusters: []string{clusterName}})
	case "GET /api/v1/assignments":
		path += "?cluster=" + clusterName
	case "POST /api/v1/bundles":
		body = testBundle(t, "matrix").Bytes()
	case "POST /api/v1/agent/register":
		tok, err := e.admin.CreateBootstrapToken(ctx, clusterName, 0)
		if err != nil {
			t.Fatal(err)
		}
		body = mustJSON(t, v1.RegisterRequest{Token: tok.Token})
	case "GET /api/v1/agent/bundles/{digest}":
		path = strings.Replace(path, "{digest}", testBundle(t, "matrix").Digest(), 1)
	}
	return path, body
}

// testBundle returns a bundle of one ConfigMap whose data holds value.
func testBundle(t testing.TB, value string) *bundle.Bundle {
	t.Helper()
	b, err := bundle.New([]map[string]any{{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "settings", "namespace": "web"}, "data": map[string]any{"value": value}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// agentEnv is an env with clusters, each with a registered agent holding its lease.
type agentEnv struct {
	*env
	agents map[string]*client.Client
	epochs map[string]int64
	creds  map[string]string
}

func newAgentEnv(t *testing.T, clusters []string, tune ...func(*server.Options)) *agentEnv {
	t.Helper()
	e := &agentEnv{env: newEnv(t, tune...), agents: map[string]*client.Client{}, epochs: map[string]int64{}, creds: map[string]string{}}
	ctx := context.Background()
	for _, name := range clusters {
		if _, err := e.admin.Create(ctx, cluster(name, map[string]string{"env": "test"})); err != nil {
			t.Fatalf("create cluster %s: %v", name, err)
		}
		e.agents[name] = e.register(name)
		l, err := e.agents[name].AcquireLease(ctx, name+"-agent")
		if err != nil {
			t.Fatalf("lease of %s: %v", name, err)
		}
		e.epochs[name] = l.Epoch
	}
	return e
}

// register issues a bootstrap token for name and redeems it, returning the agent's client.
func (e *agentEnv) register(name string) *client.Client {
	e.t.Helper()
	ctx := context.Background()
	tok, err := e.admin.CreateBootstrapToken(ctx, name, 0)
	if err != nil {
		e.t.Fatalf("bootstrap token for %s: %v", name, err)
	}
	reg, err := e.anon.Register(ctx, v1.RegisterRequest{Token: tok.Token})
	if err != nil {
		e.t.Fatalf("register %s: %v", name, err)
	}
	if reg.Cluster != name || !strings.HasPrefix(reg.Credential, "fla_") {
		e.t.Fatalf("register %s = %+v", name, reg)
	}
	return e.client(reg.Credential)
}

// release creates a Release of service web carrying b inline for clusters.
func (e *agentEnv) release(name string, b *bundle.Bundle, clusters ...string) {
	e.t.Helper()
	var manifests []json.RawMessage
	for _, o := range b.Objects() {
		data, _ := json.Marshal(o)
		manifests = append(manifests, data)
	}
	rel := &v1.Release{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRelease}}
	rel.Metadata.Name = name
	rel.Spec.Service = "web"
	rel.Spec.Commit.SHA = strings.Repeat("ab", 20)
	rel.Spec.ServiceSpec.Source.Name = "shop"
	rel.Spec.ServiceSpec.Placement.ClusterSelector = &v1.LabelSelector{}
	created, err := e.admin.Create(context.Background(), rel)
	if err != nil {
		e.t.Fatalf("create release %s: %v", name, err)
	}
	rel = created.(*v1.Release)
	rel.Status.Phase = v1.ReleaseRendered
	rel.Status.Bundles = []v1.ReleaseBundle{{Digest: b.Digest(), Clusters: clusters, Manifests: manifests}}
	if _, err := e.admin.UpdateStatus(context.Background(), rel); err != nil {
		e.t.Fatalf("render release %s: %v", name, err)
	}
}

func TestAgentRegistersOnce(t *testing.T) {
	e := newAgentEnv(t, nil)
	ctx := context.Background()
	if _, err := e.admin.Create(ctx, cluster("eu-1", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateBootstrapToken(ctx, "ghost", 0); !client.IsNotFound(err) {
		t.Errorf("bootstrap token for a missing cluster = %v, want 404", err)
	}
	_, err := e.deploy.CreateBootstrapToken(ctx, "eu-1", 0)
	wantStatus(t, err, http.StatusForbidden, v1.ReasonForbidden)

	tok, err := e.admin.CreateBootstrapToken(ctx, "eu-1", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(tok.ExpiresAt); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("token expires in %v, want 10m", d)
	}
	reg, err := e.anon.Register(ctx, v1.RegisterRequest{Token: tok.Token})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	_, err = e.anon.Register(ctx, v1.RegisterRequest{Token: tok.Token})
	if st := wantStatus(t, err, http.StatusUnauthorized, v1.ReasonUnauthorized); !strings.Contains(st.Message, "already used") {
		t.Errorf("second use: %q, want it to say the token was already used", st.Message)
	}
	agent := e.client(reg.Credential)
	if _, err := agent.AcquireLease(ctx, "a"); err != nil {
		t.Fatalf("the credential does not work: %v", err)
	}

	expiring, err := e.admin.CreateBootstrapToken(ctx, "eu-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	_, err = e.anon.Register(ctx, v1.RegisterRequest{Token: expiring.Token})
	if st := wantStatus(t, err, http.StatusUnauthorized, v1.ReasonUnauthorized); !strings.Contains(st.Message, "expired") {
		t.Errorf("expired token: %q, want it to say so", st.Message)
	}
	_, err = e.anon.Register(ctx, v1.RegisterRequest{Token: "flb_" + strings.Repeat("x", 43)})
	wantStatus(t, err, http.StatusUnauthorized, v1.ReasonUnauthorized)
	_, err = e.anon.Register(ctx, v1.RegisterRequest{Token: e.secrets["admin"]})
	wantStatus(t, err, http.StatusUnauthorized, v1.ReasonUnauthorized)
}

func TestAgentRevokedAtOnce(t *testing.T) {
	e := newAgentEnv(t, []string{"eu-1"})
	ctx := context.Background()
	agent := e.agents["eu-1"]
	first, err := agent.Desired(ctx, client.DesiredOptions{})
	if err != nil {
		t.Fatalf("Desired: %v", err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := agent.Desired(ctx, client.DesiredOptions{After: first.Digest, Wait: 20 * time.Second})
		held <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := e.admin.RevokeAgent(ctx, "eu-1"); err != nil {
		t.Fatalf("RevokeAgent: %v", err)
	}
	select {
	case err := <-held:
		if !client.IsUnauthorized(err) {
			t.Errorf("held long poll after revoke = %v, want 401", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("held long poll ended %v after the revoke began, want well before its 20s wait", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a held long poll survived the revocation by 5s")
	}
	if _, err := agent.AcquireLease(ctx, "eu-1-agent"); !client.IsUnauthorized(err) {
		t.Errorf("call after revoke = %v, want 401", err)
	}
	if err := e.admin.RevokeAgent(ctx, "eu-1"); !client.IsNotFound(err) {
		t.Errorf("second revoke = %v, want 404", err)
	}
	// Registering again gives a working credential.
	again := e.register("eu-1")
	if _, err := again.Desired(ctx, client.DesiredOptions{}); err != nil {
		t.Errorf("after re-registration: %v", err)
	}
}

func TestAgentSeesOnlyItsCluster(t *testing.T) {
	e := newAgentEnv(t, []string{"eu-1", "us-1"})
	ctx := context.Background()
	bEU, bUS := testBundle(t, "eu"), testBundle(t, "us")
	e.release("web-eu", bEU, "eu-1")
	e.release("web-us", bUS, "us-1")
	for rel, c := range map[string]string{"web-eu": "eu-1", "web-us": "us-1"} {
		if _, err := e.deploy.Assign(ctx, v1.AssignRequest{Service: "web", Release: rel, Clusters: []string{c}}); err != nil {
			t.Fatalf("Assign %s: %v", rel, err)
		}
	}
	eu := e.agents["eu-1"]
	ds, err := eu.Desired(ctx, client.DesiredOptions{})
	if err != nil || ds.Cluster != "eu-1" || len(ds.Assignments) != 1 || ds.Assignments[0].Bundle != bEU.Digest() {
		t.Fatalf("Desired of eu-1 = %+v, %v", ds, err)
	}
	want := &v1.AssignmentOptions{Namespace: "web", Prune: true}
	if diff := cmp.Diff(want, ds.Assignments[0].Options); diff != "" {
		t.Errorf("assignment options (-want +got):\n%s", diff)
	}
	data, err := eu.Bundle(ctx, bEU.Digest())
	if err != nil || string(data) != string(bEU.Bytes()) {
		t.Fatalf("Bundle of its own cluster = %q, %v", data, err)
	}
	if _, err := eu.Bundle(ctx, bUS.Digest()); !client.IsNotFound(err) {
		t.Errorf("cluster eu-1's agent read us-1's bundle: %v, want 404", err)
	}
	// Headers: immutable, ETag is the digest, If-None-Match answers 304.
	resp, _ := e.raw("GET", "/api/v1/agent/bundles/"+bEU.Digest(), credentialOf(t, e, "eu-1"), "", nil)
	if resp.Header.Get("ETag") != `"`+bEU.Digest()+`"` || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("bundle headers: ETag %q Cache-Control %q", resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
	}
	// An agent reaches no route but its own: everything else is 404.
	for _, rt := range e.srv.Routes() {
		if rt.Agent || !rt.Rule.NeedsPrincipal() {
			continue
		}
		path := strings.NewReplacer("{name}", "us-1", "{id}", "x").Replace(rt.Path)
		if code := e.status(rt.Method, path, credentialOf(t, e, "eu-1"), "application/json", []byte("{}")); code != http.StatusNotFound {
			t.Errorf("agent of eu-1 on %s %s: %d, want 404", rt.Method, path, code)
		}
	}
	// And people get 403 from agent routes.
	if _, err := e.admin.Desired(ctx, client.DesiredOptions{}); !client.IsForbidden(err) {
		t.Errorf("admin on the agent desired route = %v, want 403", err)
	}
}

// credentialOf registers a fresh agent credential for cluster and returns it (the old one is
// replaced).
func credentialOf(t *testing.T, e *agentEnv, cluster string) string {
	t.Helper()
	if c, ok := e.creds[cluster]; ok {
		return c
	}
	tok, err := e.admin.CreateBootstrapToken(context.Background(), cluster, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := e.anon.Register(context.Background(), v1.RegisterRequest{Token: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	e.creds[cluster] = reg.Credential
	e.agents[cluster] = e.client(reg.Credential)
	return reg.Credential
}

func TestSecondAgentRefused(t *testing.T) {
	e := newAgentEnv(t, []string{"eu-1"})
	ctx := context.Background()
	agent := e.agents["eu-1"]
	_, err := agent.AcquireLease(ctx, "intruder")
	st := wantStatus(t, err, http.StatusConflict, v1.ReasonConflict)
	if !strings.Contains(st.Message, "another agent holds cluster eu-1") || !strings.Contains(st.Message, "eu-1-agent") {
		t.Errorf("409 message %q should say another agent (eu-1-agent) holds the cluster", st.Message)
	}
	// The holder renews with the same epoch; a stale epoch cannot report.
	l, err := agent.AcquireLease(ctx, "eu-1-agent")
	if err != nil || l.Epoch != e.epochs["eu-1"] {
		t.Fatalf("renew = %+v, %v; want epoch %d", l, err, e.epochs["eu-1"])
	}
	_, err = agent.PostStatus(ctx, l.Epoch+1, v1.AgentStatusReport{Seq: 1, Health: v1.HealthHealthy})
	wantStatus(t, err, http.StatusConflict, v1.ReasonConflict)
	// Once the holder gives the lease up, the next agent takes it with a greater epoch.
	if err := agent.ReleaseLease(ctx, "eu-1-agent"); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	l2, err := agent.AcquireLease(ctx, "successor")
	if err != nil || l2.Epoch <= l.Epoch {
		t.Fatalf("successor lease = %+v, %v; want an epoch above %d", l2, err, l.Epoch)
	}
	if _, err := agent.PostStatus(ctx, l.Epoch, v1.AgentStatusReport{Seq: 1, Health: v1.HealthHealthy}); !client.IsConflict(err) {
		t.Errorf("report under the old epoch = %v, want 409", err)
	}
}

func TestLongPollAnswersOnChange(t *testing.T) {
	e := newAgentEnv(t, []string{"eu-1", "us-1"})
	ctx := context.Background()
	agent := e.agents["eu-1"]
	cur, err := agent.Desired(ctx, client.DesiredOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cur.Digest != store.DesiredDigest(nil) || len(cur.Assignments) != 0 {
		t.Fatalf("initial desired state = %+v, want empty", cur)
	}
	// Held while nothing changes: nil at the end of the wait, not before.
	start := time.Now()
	got, err := agent.Desired(ctx, client.DesiredOptions{After: cur.Digest, Wait: 300 * time.Millisecond})
	if err != nil || got != nil {
		t.Fatalf("unchanged poll = %+v, %v; want nil after the wait", got, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("unchanged poll answered after %v, before the 300ms wait", d)
	}
	b := testBundle(t, "v1")
	e.release("web-1", b, "eu-1", "us-1")
	// Another cluster's change does not wake it; its own does, well before the 10s wait ends.
	type answer struct {
		ds  *v1.DesiredState
		err error
		at  time.Time
	}
	done := make(chan answer, 1)
	go func() {
		ds, err := agent.Desired(ctx, client.DesiredOptions{After: cur.Digest, Wait: 10 * time.Second})
		done <- answer{ds, err, time.Now()}
	}()
	time.Sleep(200 * time.Millisecond)
	if _, err := e.deploy.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-1", Clusters: []string{"us-1"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-done:
		t.Fatalf("another cluster's assignment woke the poll: %+v", a)
	case <-time.After(300 * time.Millisecond):
	}
	changed := time.Now()
	resp, err := e.deploy.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-1", Clusters: []string{"eu-1"}})
	if err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.err != nil || a.ds == nil || a.ds.Digest != resp.Changed[0].Digest {
		t.Fatalf("poll answer = %+v, %v; want digest %s", a.ds, a.err, resp.Changed[0].Digest)
	}
	if d := a.at.Sub(changed); d > 5*time.Second {
		t.Errorf("the poll answered %v after the assignment began, want it woken well before its 10s wait ends", d)
	}
	// Asking with a stale digest answers at once.
	start = time.Now()
	if ds, err := agent.Desired(ctx, client.DesiredOptions{After: cur.Digest, Wait: 5 * time.Second}); err != nil || ds == nil {
		t.Fatalf("stale digest = %+v, %v", ds, err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("stale digest answered after %v, want at once, not held toward its 5s wait", d)
	}
}

func TestAgentStatusIsIdempotent(t *testing.T) {
	e := newAgentEnv(t, []string{"eu-1"})
	ctx := context.Background()
	agent := e.agents["eu-1"]
	rep := v1.AgentStatusReport{Seq: 1, AgentVersion: "v0.1.0", KubernetesVersion: "v1.33.1", Health: v1.HealthHealthy,
		Services: []v1.ServiceReport{{Service: "web", Release: "web-1", Health: v1.HealthHealthy,
			Objects: []v1.ObjectReport{{Kind: "ConfigMap", Namespace: "web", Name: "settings", Health: v1.HealthHealthy}}}}}
	ack, err := agent.PostStatus(ctx, e.epochs["eu-1"], rep)
	if err != nil || ack.Duplicate {
		t.Fatalf("first report = %+v, %v", ack, err)
	}
	ack, err = agent.PostStatus(ctx, e.epochs["eu-1"], rep)
	if err != nil || !ack.Duplicate {
		t.Fatalf("retried report = %+v, %v; want a duplicate", ack, err)
	}
	for seq := int64(2); seq <= 10; seq++ {
		rep.Seq = seq
		if _, err := agent.PostStatus(ctx, e.epochs["eu-1"], rep); err != nil {
			t.Fatalf("heartbeat %d: %v", seq, err)
		}
	}
	rep.Seq, rep.Health, rep.Services[0].Health = 11, v1.HealthDegraded, v1.HealthDegraded
	rep.Services[0].Objects[0].Drifted = true
	if _, err := agent.PostStatus(ctx, e.epochs["eu-1"], rep); err != nil {
		t.Fatal(err)
	}
	evs, err := e.admin.Audit(ctx, client.AuditOptions{Actor: "agent:eu-1"})
	if err != nil {
		t.Fatal(err)
	}
	var statusEvents int
	for _, ev := range evs.Items {
		if ev.Kind == store.KindAgentStatus {
			statusEvents++
		}
	}
	if statusEvents != 2 {
		t.Errorf("%d AgentStatus events after 11 reports, want 2 (first report, then the health change)", statusEvents)
	}
	_, err = agent.PostStatus(ctx, e.epochs["eu-1"], v1.AgentStatusReport{Seq: 0, Health: "Fine"})
	st := wantStatus(t, err, http.StatusUnprocessableEntity, v1.ReasonInvalid)
	if !hasField(st.Fields, "seq") || !hasField(st.Fields, "health") {
		t.Errorf("invalid report fields = %+v, want seq and health", st.Fields)
	}
	got, err := e.viewer.Get(ctx, "cluster", "eu-1")
	if err != nil {
		t.Fatal(err)
	}
	cs := got.(*v1.Cluster).Status
	if cs.Phase != v1.ClusterNotReady || cs.Health != v1.HealthDegraded || cs.AgentVersion != "v0.1.0" ||
		cs.KubernetesVersion != "v1.33.1" || cs.LastSeen == nil {
		t.Errorf("cluster status = %+v; want NotReady, Degraded, versions and last seen", cs)
	}
	e.clock.Advance(5 * time.Minute)
	l, err := e.viewer.List(ctx, "clusters", client.ListOptions{})
	if err != nil || len(l.Items) != 1 || l.Items[0].(*v1.Cluster).Status.Phase != v1.ClusterDisconnected {
		t.Errorf("cluster after 5 minutes of silence: %+v, %v; want Disconnected", l, err)
	}
	report, err := e.viewer.AgentReport(ctx, "eu-1")
	if err != nil || report.Report.Seq != 11 || !report.Report.Services[0].Objects[0].Drifted {
		t.Errorf("AgentReport = %+v, %v", report, err)
	}
}

func TestLongPollOverload(t *testing.T) {
	e := newAgentEnv(t, []string{"a", "b", "c"}, func(o *server.Options) { o.MaxLongPolls = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range []string{"a", "b"} {
		ds, err := e.agents[c].Desired(ctx, client.DesiredOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Held again whenever it ends: the third agent's requests below take a slot for a moment
		// too, so one of these may be refused (429) before both are held.
		wg.Go(func() {
			for ctx.Err() == nil {
				_, _ = e.agents[c].Desired(ctx, client.DesiredOptions{After: ds.Digest, Wait: 10 * time.Second})
			}
		})
	}
	// Once both polls are held (they wait 10s), a third is refused. Until they are, it may be
	// answered (200), so ask again for a while.
	var err error
	for deadline := time.Now().Add(8 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err = e.agents["c"].Desired(ctx, client.DesiredOptions{})
		if client.IsTooManyRequests(err) {
			break
		}
		if err != nil {
			t.Fatalf("third long poll = %v, want 429", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("third long poll was answered for 8s while two polls were held, want 429")
		}
	}
	if d := client.RetryAfter(err); d < time.Second {
		t.Errorf("Retry-After = %v, want at least a second", d)
	}
	var b client.Backoff
	if d := b.Delay(err); d < client.RetryAfter(err) {
		t.Errorf("Backoff.Delay = %v, shorter than Retry-After", d)
	}
	cancel()
	wg.Wait()
}

func TestBundleUpload(t *testing.T) {
	e := newAgentEnv(t, nil)
	ctx := context.Background()
	b := testBundle(t, "upload")
	up, err := e.deploy.UploadBundle(ctx, b.Bytes(), b.Digest())
	if err != nil || !up.Created || up.Digest != b.Digest() {
		t.Fatalf("UploadBundle = %+v, %v", up, err)
	}
	up, err = e.deploy.UploadBundle(ctx, b.Bytes(), "")
	if err != nil || up.Created {
		t.Fatalf("second upload = %+v, %v; want stored once", up, err)
	}
	_, err = e.deploy.UploadBundle(ctx, b.Bytes(), testBundle(t, "other").Digest())
	wantStatus(t, err, http.StatusUnprocessableEntity, v1.ReasonInvalid)
	_, err = e.deploy.UploadBundle(ctx, []byte(`{"kind":"ConfigMap", "apiVersion":"v1","metadata":{"name":"x"}}`+"\n"), "")
	wantStatus(t, err, http.StatusUnprocessableEntity, v1.ReasonInvalid)
	_, err = e.viewer.UploadBundle(ctx, b.Bytes(), "")
	wantStatus(t, err, http.StatusForbidden, v1.ReasonForbidden)
	_, err = e.deploy.Assign(ctx, v1.AssignRequest{Service: "web", Release: "nope", Clusters: []string{"ghost"}})
	st := wantStatus(t, err, http.StatusUnprocessableEntity, v1.ReasonInvalid)
	if !hasField(st.Fields, "clusters[0]") {
		t.Errorf("assign to a missing cluster: fields %+v", st.Fields)
	}
}

// TestLongPollAcrossReplicas holds an agent's long poll on one server and changes the cluster's
// assignment through another server on the same PostgreSQL database: the change must reach the
// poll through LISTEN/NOTIFY well before the store's poll fallback.
func TestLongPollAcrossReplicas(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	// Both replicas poll the store only once a minute: only LISTEN/NOTIFY can wake A's poll in time.
	// (newEnvOn's own store, with the default 1s fallback, only does A's set-up; A serves from stA.)
	stA, err := postgres.Open(ctx, dsn, postgres.Options{Store: sqlstore.Options{PollInterval: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stA.Close() }) // registered first, so it runs after A's server is stopped
	a := newEnvOn(t, dsn, func(o *server.Options) { o.Store = stA })
	st, err := postgres.Open(ctx, dsn, postgres.Options{Store: sqlstore.Options{PollInterval: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	srvB, err := server.New(server.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	tsB := httptest.NewServer(srvB.Handler())
	t.Cleanup(func() {
		srvB.StopStreams()
		tsB.Close()
		st.Close()
	})
	adminB, err := client.New(client.Options{Server: tsB.URL, Token: a.secrets["admin"]})
	if err != nil {
		t.Fatal(err)
	}
	ae := &agentEnv{env: a, agents: map[string]*client.Client{}, epochs: map[string]int64{}, creds: map[string]string{}}
	if _, err := a.admin.Create(ctx, cluster("eu-1", nil)); err != nil {
		t.Fatal(err)
	}
	agent := ae.register("eu-1")
	b := testBundle(t, "replicas")
	ae.release("web-1", b, "eu-1")
	cur, err := agent.Desired(ctx, client.DesiredOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		ds  *v1.DesiredState
		err error
		at  time.Time
	}
	done := make(chan answer, 1)
	go func() {
		ds, err := agent.Desired(ctx, client.DesiredOptions{After: cur.Digest, Wait: 20 * time.Second})
		done <- answer{ds, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if _, err := adminB.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-1", Clusters: []string{"eu-1"}}); err != nil {
		t.Fatalf("assign through replica B: %v", err)
	}
	select {
	case got := <-done:
		if got.err != nil || got.ds == nil || len(got.ds.Assignments) != 1 {
			t.Fatalf("poll on replica A = %+v, %v", got.ds, got.err)
		}
		if d := got.at.Sub(start); d > 10*time.Second {
			t.Errorf("replica A's poll answered %v after the change on replica B, want well before the 1m poll fallback", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("replica A's poll did not see the change made on replica B within 10s")
	}
}
