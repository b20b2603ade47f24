package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/agent/apply"
	"flotilla.dev/flotilla/internal/agent/health"
	"flotilla.dev/flotilla/internal/agent/state"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/server"
	"flotilla.dev/flotilla/internal/store/open"
)

// These tests run the agent loop against a real server (SQLite, loopback) whose network can be
// cut, and a fake cluster: what the apply engine does to a real cluster is tested in package apply
// and end to end in test/e2e.

// fakeCluster records what the agent asks of the cluster. A service marked drifted is reported
// drifted by Observe, and corrected when the request has self-heal.
type fakeCluster struct {
	mu          sync.Mutex
	inventories map[string]string // service -> release applied
	calls       []string          // "apply web web-r1", "remove old", "observe web"
	drifted     map[string]bool
	corrections int
}

func newFakeCluster(inventories ...string) *fakeCluster {
	f := &fakeCluster{inventories: map[string]string{}, drifted: map[string]bool{}}
	for _, s := range inventories {
		f.inventories[s] = "unknown"
	}
	return f
}

func (f *fakeCluster) Apply(_ context.Context, req apply.Request) (*apply.ChangeSet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs := &apply.ChangeSet{Service: req.Service, Release: req.Release}
	if req.Removed {
		f.calls = append(f.calls, "remove "+req.Service)
		delete(f.inventories, req.Service)
		return cs, nil
	}
	if len(req.Objects) == 0 {
		return nil, apply.ErrEmptyDesired
	}
	f.calls = append(f.calls, "apply "+req.Service+" "+req.Release)
	action := apply.Skipped
	if f.inventories[req.Service] != req.Release {
		action = apply.Configured
	}
	f.inventories[req.Service] = req.Release
	for _, o := range req.Objects {
		cs.Changes = append(cs.Changes, apply.Change{Object: ref(o.GetKind(), o.GetNamespace(), o.GetName()), Action: action})
	}
	return cs, nil
}

func ref(kind, ns, name string) apply.ObjectRef {
	return apply.ObjectRef{Version: "v1", Kind: kind, Namespace: ns, Name: name}
}

func (f *fakeCluster) Observe(_ context.Context, req apply.Request) (*apply.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "observe "+req.Service)
	rep := &apply.Report{Service: req.Service, Release: req.Release, Health: health.Healthy}
	for _, o := range req.Objects {
		st := apply.ObjectStatus{Object: ref(o.GetKind(), o.GetNamespace(), o.GetName()), Health: health.Result{Status: health.Healthy}}
		if f.drifted[req.Service] {
			st.Drift = []string{"data.k"}
			if req.SelfHeal {
				st.Corrected = true
				f.drifted[req.Service] = false
				f.corrections++
			}
		}
		rep.Objects = append(rep.Objects, st)
	}
	return rep, nil
}

func (f *fakeCluster) Services(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for s := range f.inventories {
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeCluster) drift(service string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drifted[service] = true
}

func (f *fakeCluster) snapshot() (calls []string, inventories map[string]string, corrections int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inv := map[string]string{}
	for k, v := range f.inventories {
		inv[k] = v
	}
	return slices.Clone(f.calls), inv, f.corrections
}

// network sits between agents and the server: down, every request's connection is closed
// unanswered, as when the server is gone; dropStatus makes the next status post reach the server
// but lose its answer.
type network struct {
	next       http.Handler
	down       atomic.Bool
	dropStatus atomic.Bool
	// downAfterDrop takes the network down right after a dropped status answer.
	downAfterDrop atomic.Bool
	mu            sync.Mutex
	seqs          []int64 // seq of every status post that reached the server
}

func (n *network) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n.down.Load() {
		hangUp(w)
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == "/api/v1/agent/status" {
		var rep v1.AgentStatusReport
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &rep)
		n.mu.Lock()
		n.seqs = append(n.seqs, rep.Seq)
		n.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		if n.dropStatus.CompareAndSwap(true, false) {
			n.next.ServeHTTP(httptest.NewRecorder(), r)
			if n.downAfterDrop.Load() {
				n.down.Store(true)
			}
			hangUp(w)
			return
		}
	}
	n.next.ServeHTTP(w, r)
}

func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// testEnv is a real server behind a network, with one registered cluster "eu-1".
type testEnv struct {
	t     *testing.T
	net   *network
	url   string
	admin *client.Client
	cred  string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	st, err := open.Open(ctx, filepath.Join(t.TempDir(), "flotilla.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Store: st, LongPollTimeout: time.Second, LeaseTTL: 3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	n := &network{next: srv.Handler()}
	ts := httptest.NewServer(n)
	t.Cleanup(func() {
		srv.StopStreams()
		ts.Close()
		st.Close()
	})
	tok, _, err := server.BootstrapAdminToken(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, net: n, url: ts.URL}
	e.admin = e.client(tok)
	cl := &v1.Cluster{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindCluster}}
	cl.Metadata.Name = "eu-1"
	if _, err := e.admin.Create(ctx, cl); err != nil {
		t.Fatal(err)
	}
	bt, err := e.admin.CreateBootstrapToken(ctx, "eu-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := e.client("").Register(ctx, v1.RegisterRequest{Token: bt.Token})
	if err != nil {
		t.Fatal(err)
	}
	e.cred = reg.Credential
	return e
}

func (e *testEnv) client(token string) *client.Client {
	e.t.Helper()
	c, err := client.New(client.Options{Server: e.url, Token: token})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// assign creates release name of service with one ConfigMap and assigns it to eu-1.
func (e *testEnv) assign(service, name string, selfHeal bool) {
	e.t.Helper()
	ctx := context.Background()
	obj := map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": service + "-config", "namespace": "web"}, "data": map[string]any{"release": name}}
	b, err := bundle.New([]map[string]any{obj})
	if err != nil {
		e.t.Fatal(err)
	}
	raw, _ := json.Marshal(obj)
	rel := &v1.Release{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRelease}}
	rel.Metadata.Name = name
	rel.Spec.Service = service
	rel.Spec.Commit.SHA = strings.Repeat("ab", 20)
	rel.Spec.ServiceSpec.Source.Name = "shop"
	rel.Spec.ServiceSpec.Placement.ClusterSelector = &v1.LabelSelector{}
	rel.Spec.ServiceSpec.Sync.SelfHeal = &selfHeal
	created, err := e.admin.Create(ctx, rel)
	if err != nil {
		e.t.Fatalf("create release %s: %v", name, err)
	}
	rel = created.(*v1.Release)
	rel.Status.Phase = v1.ReleaseRendered
	rel.Status.Bundles = []v1.ReleaseBundle{{Digest: b.Digest(), Clusters: []string{"eu-1"}, Manifests: []json.RawMessage{raw}}}
	if _, err := e.admin.UpdateStatus(ctx, rel); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.admin.Assign(ctx, v1.AssignRequest{Service: service, Release: name, Clusters: []string{"eu-1"}}); err != nil {
		e.t.Fatalf("assign %s: %v", name, err)
	}
}

// runAgent runs an agent of eu-1 until the test ends or stop is called.
func (e *testEnv) runAgent(fc *fakeCluster, st state.Store, holder string) (stop func()) {
	e.t.Helper()
	a, err := New(Options{Client: e.client(e.cred), Applier: fc, State: st, Holder: holder,
		ObserveInterval: 100 * time.Millisecond, PollWait: time.Second,
		Logger: slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	e.t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *testEnv) report() (*v1.AgentStatusReport, error) {
	r, err := e.admin.AgentReport(context.Background(), "eu-1")
	if err != nil {
		return nil, err
	}
	return &r.Report, nil
}

// Given an agent that applied a self-healing release, when the server goes away, then the agent
// corrects drift from memory; restarted while the server is still away, it corrects drift from
// its saved state; and when the server is back, its next report says what it did meanwhile.
func TestAgentEnforcesItsLastDesiredStateWhileTheServerIsAway(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	fc := newFakeCluster()
	stop := e.runAgent(fc, state.NewDir(dir), "agent-1")
	e.assign("web", "web-r1", true)
	eventually(t, "the server has a report of web-r1 applied", func() error {
		r, err := e.report()
		if err != nil {
			return err
		}
		if r.AppliedDigest == "" || r.AppliedDigest != r.DesiredDigest || len(r.Services) != 1 || r.Services[0].Release != "web-r1" {
			return fmt.Errorf("report %+v", r)
		}
		return nil
	})

	e.net.down.Store(true)
	fc.drift("web")
	eventually(t, "drift corrected with the server away, and recorded", func() error {
		if _, _, n := fc.snapshot(); n != 1 {
			return fmt.Errorf("%d corrections", n)
		}
		snap, err := state.NewDir(dir).Load(context.Background())
		if err != nil {
			return err
		}
		if snap.Offline == nil || snap.Offline.Corrections != 1 {
			return fmt.Errorf("saved offline period %+v", snap.Offline)
		}
		return nil
	})
	stop()

	// A new agent process on the same state, the server still away: a cluster that lost the
	// change (fc2 never saw web-r1) gets it from the saved state, and drift is corrected.
	fc2 := newFakeCluster()
	e.runAgent(fc2, state.NewDir(dir), "agent-1")
	eventually(t, "the restarted agent applies the saved state", func() error {
		if _, inv, _ := fc2.snapshot(); inv["web"] != "web-r1" {
			return fmt.Errorf("inventories %v", inv)
		}
		return nil
	})
	fc2.drift("web")
	eventually(t, "drift corrected after the restart, the server away", func() error {
		if _, _, n := fc2.snapshot(); n != 1 {
			return fmt.Errorf("%d corrections", n)
		}
		return nil
	})
	if calls, _, _ := fc2.snapshot(); slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "remove") }) {
		t.Errorf("the agent removed a service with the server away: %v", calls)
	}

	e.net.down.Store(false)
	eventually(t, "the report says what happened offline", func() error {
		r, err := e.report()
		if err != nil {
			return err
		}
		p := r.Offline
		if p == nil || p.Until.IsZero() {
			return fmt.Errorf("offline period %+v", p)
		}
		if p.Corrections != 2 || p.Restarts != 1 || p.Applies != 1 {
			return fmt.Errorf("offline period says %d corrections, %d restarts, %d applies; want 2, 1, 1: %+v", p.Corrections, p.Restarts, p.Applies, p)
		}
		var reasons []string
		for _, ev := range p.Events {
			reasons = append(reasons, ev.Reason)
		}
		want := []string{v1.EventDriftCorrected, v1.EventRestarted, v1.EventApplied, v1.EventDriftCorrected}
		if !slices.Equal(reasons, want) {
			return fmt.Errorf("events %v, want %v", reasons, want)
		}
		return nil
	})
}

// Given services with inventories in the cluster that the server no longer assigns, then the
// agent removes them only once the server answered, never from its saved state.
func TestAgentRemovesServicesUnassignedWhileItWasDown(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	e.assign("web", "web-r1", false)
	e.assign("old", "old-r1", false)
	fc := newFakeCluster()
	stop := e.runAgent(fc, state.NewDir(dir), "agent-1")
	eventually(t, "both services applied", func() error {
		if _, inv, _ := fc.snapshot(); inv["web"] != "web-r1" || inv["old"] != "old-r1" {
			return fmt.Errorf("inventories %v", inv)
		}
		return nil
	})
	stop()
	// While the agent is down, old is unassigned; then the server goes away too.
	if _, err := e.admin.Assign(context.Background(), v1.AssignRequest{Service: "old", Clusters: []string{"eu-1"}}); err != nil {
		t.Fatal(err)
	}
	e.net.down.Store(true)
	e.runAgent(fc, state.NewDir(dir), "agent-2")
	time.Sleep(time.Second) // ten observe intervals without the server
	if calls, inv, _ := fc.snapshot(); inv["old"] == "" {
		t.Fatalf("the agent removed old without the server's word: %v", calls)
	}
	e.net.down.Store(false)
	eventually(t, "old removed once the server answered", func() error {
		calls, inv, _ := fc.snapshot()
		if _, ok := inv["old"]; ok {
			return fmt.Errorf("inventories %v, calls %v", inv, calls)
		}
		if inv["web"] != "web-r1" {
			return fmt.Errorf("web was touched: inventories %v", inv)
		}
		return nil
	})
}

// A saved state that does not verify is not enforced: nothing is applied with the server away.
func TestAgentRefusesATamperedSavedState(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	fc := newFakeCluster()
	stop := e.runAgent(fc, state.NewDir(dir), "agent-1")
	e.assign("web", "web-r1", true)
	eventually(t, "web applied", func() error {
		if _, inv, _ := fc.snapshot(); inv["web"] != "web-r1" {
			return fmt.Errorf("inventories %v", inv)
		}
		return nil
	})
	stop()
	files, err := filepath.Glob(filepath.Join(dir, "bundles", "*.jsonl"))
	if err != nil || len(files) != 1 {
		t.Fatalf("saved bundles: %v, %v; want one", files, err)
	}
	if err := os.WriteFile(files[0], []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"evil","namespace":"web"}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.net.down.Store(true)
	fc2 := newFakeCluster()
	e.runAgent(fc2, state.NewDir(dir), "agent-1")
	time.Sleep(time.Second)
	if calls, _, _ := fc2.snapshot(); len(calls) > 0 {
		t.Errorf("the agent acted on a tampered saved state: %v", calls)
	}
}

// A report whose answer is lost is sent again with the same seq: the server stores it once.
func TestAgentResendsAnUnansweredReportWithItsSeq(t *testing.T) {
	e := newTestEnv(t)
	fc := newFakeCluster()
	e.runAgent(fc, state.NewDir(t.TempDir()), "agent-1")
	e.assign("web", "web-r1", false)
	eventually(t, "a report", func() error { _, err := e.report(); return err })
	e.net.mu.Lock()
	before := len(e.net.seqs)
	e.net.mu.Unlock()
	e.net.dropStatus.Store(true)
	eventually(t, "the unanswered report sent again", func() error {
		e.net.mu.Lock()
		defer e.net.mu.Unlock()
		seqs := e.net.seqs[before:]
		if len(seqs) < 3 {
			return fmt.Errorf("status posts since: %v", seqs)
		}
		if seqs[0] != seqs[1] || seqs[2] <= seqs[1] {
			return fmt.Errorf("seqs %v: want the first one repeated, then a higher one", seqs)
		}
		return nil
	})
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	for i := 1; i < len(e.net.seqs); i++ {
		if s := e.net.seqs; s[i] < s[i-1] {
			t.Errorf("seq went down: %v", s)
		}
	}
}

// A report without an answer is kept in the saved state: a restarted agent sends it first, with
// its seq, and only then new reports with higher ones.
func TestAgentResendsAnUnansweredReportAfterARestart(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	stop := e.runAgent(newFakeCluster(), state.NewDir(dir), "agent-1")
	e.assign("web", "web-r1", false)
	eventually(t, "a report", func() error { _, err := e.report(); return err })
	e.net.downAfterDrop.Store(true)
	e.net.dropStatus.Store(true)
	eventually(t, "a report lost its answer", func() error {
		if !e.net.down.Load() {
			return errors.New("not yet")
		}
		return nil
	})
	e.net.mu.Lock()
	lost := e.net.seqs[len(e.net.seqs)-1]
	before := len(e.net.seqs)
	e.net.mu.Unlock()
	eventually(t, "the unanswered report saved", func() error {
		snap, err := state.NewDir(dir).Load(context.Background())
		if err != nil {
			return err
		}
		if snap.Pending == nil || snap.Pending.Seq != lost {
			return fmt.Errorf("saved pending report %+v, want seq %d", snap.Pending, lost)
		}
		return nil
	})
	stop()
	e.runAgent(newFakeCluster(), state.NewDir(dir), "agent-2")
	e.net.downAfterDrop.Store(false)
	e.net.down.Store(false)
	eventually(t, "the restarted agent resends it, then reports anew", func() error {
		e.net.mu.Lock()
		defer e.net.mu.Unlock()
		seqs := e.net.seqs[before:]
		if len(seqs) < 2 {
			return fmt.Errorf("status posts since the restart: %v", seqs)
		}
		// The lost report first (sent again if an answer went missing), then only higher seqs.
		i := 0
		for i < len(seqs) && seqs[i] == lost {
			i++
		}
		if i == 0 || i == len(seqs) || !slices.IsSorted(seqs[i:]) || seqs[i] <= lost {
			return fmt.Errorf("seqs %v: want %d again first, then rising higher ones", seqs, lost)
		}
		return nil
	})
}

// refusingStore is a state store whose PutBundle fails while refuse is set, as for a bundle too
// large for a Secret.
type refusingStore struct {
	state.Store
	refuse atomic.Bool
}

func (s *refusingStore) PutBundle(ctx context.Context, digest string, data []byte) error {
	if s.refuse.Load() {
		return state.ErrTooLarge
	}
	return s.Store.PutBundle(ctx, digest, data)
}

// When a newer desired state cannot be saved, the older saved one is dropped: an agent restarted
// without the server enforces nothing rather than rolling the cluster back to it.
func TestAgentNeverEnforcesAnOlderSavedStateThanItApplied(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	st := &refusingStore{Store: state.NewDir(dir)}
	fc := newFakeCluster()
	stop := e.runAgent(fc, st, "agent-1")
	e.assign("web", "web-r1", true)
	eventually(t, "web-r1 applied", func() error {
		if _, inv, _ := fc.snapshot(); inv["web"] != "web-r1" {
			return fmt.Errorf("inventories %v", inv)
		}
		return nil
	})
	st.refuse.Store(true)
	e.assign("web", "web-r2", true)
	eventually(t, "web-r2 applied, its bundle not saved", func() error {
		if _, inv, _ := fc.snapshot(); inv["web"] != "web-r2" {
			return fmt.Errorf("inventories %v", inv)
		}
		snap, err := state.NewDir(dir).Load(context.Background())
		if err != nil {
			return err
		}
		if snap.Desired != nil {
			return fmt.Errorf("saved desired state %+v; want none", snap.Desired)
		}
		return nil
	})
	stop()
	e.net.down.Store(true)
	fc2 := newFakeCluster()
	e.runAgent(fc2, state.NewDir(dir), "agent-2")
	time.Sleep(time.Second)
	if calls, _, _ := fc2.snapshot(); len(calls) > 0 {
		t.Errorf("the restarted agent acted without a saved state: %v", calls)
	}
}
