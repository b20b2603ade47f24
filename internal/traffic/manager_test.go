package traffic_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/open"
	"flotilla.dev/flotilla/internal/testhaproxy"
	"flotilla.dev/flotilla/internal/traffic"
	"flotilla.dev/flotilla/internal/traffic/haproxy"
	"flotilla.dev/flotilla/internal/traffic/webhook"
)

var admin = store.Actor{Kind: store.ActorUser, Name: "test"}

func newStore(t testing.TB) store.Store {
	t.Helper()
	st, err := open.Open(context.Background(), filepath.Join(t.TempDir(), "flotilla.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// put stores obj (defaulted and validated) the way the API server does.
func put(t testing.TB, st store.Store, obj v1.Object) {
	t.Helper()
	obj.Default()
	if err := obj.Validate(); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var parts struct {
		Spec   json.RawMessage `json:"spec"`
		Status json.RawMessage `json:"status"`
	}
	_ = json.Unmarshal(data, &parts)
	m := obj.GetMetadata()
	so := &store.Object{Kind: obj.GetTypeMeta().Kind, Name: m.Name, Labels: m.Labels, Spec: parts.Spec}
	if _, err := st.Apply(context.Background(), []*store.Object{so}, admin); err != nil {
		t.Fatal(err)
	}
}

func cluster(name string, traffic ...v1.ClusterTraffic) *v1.Cluster {
	c := &v1.Cluster{Spec: v1.ClusterSpec{Traffic: traffic}}
	c.Metadata.Name = name
	return c
}

func haproxyRouter(name, api, backend string) *v1.TrafficRouter {
	r := &v1.TrafficRouter{Spec: v1.TrafficRouterSpec{HAProxy: &v1.HAProxyRouter{RuntimeAPI: api, Backend: backend}}}
	r.Metadata.Name = name
	return r
}

func routerStatus(t *testing.T, st store.Store, name string) v1.TrafficRouterStatus {
	t.Helper()
	o, err := st.Get(context.Background(), v1.KindTrafficRouter, name)
	if err != nil {
		t.Fatal(err)
	}
	var s v1.TrafficRouterStatus
	if len(o.Status) > 0 {
		if err := json.Unmarshal(o.Status, &s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// fleet is a store with clusters eu-1 and us-1 behind a real HAProxy
// (servers srv-eu and srv-us), and a third cluster without a backend.
type fleet struct {
	st     store.Store
	hap    *testhaproxy.HAProxy
	eu, us *testhaproxy.Backend
	m      *traffic.Manager
}

func newFleet(t testing.TB) *fleet {
	t.Helper()
	f := &fleet{st: newStore(t), eu: testhaproxy.StartBackend(t, "eu-1", nil), us: testhaproxy.StartBackend(t, "us-1", nil)}
	f.hap = testhaproxy.Start(t, testhaproxy.Config{Servers: []testhaproxy.Server{{Name: "srv-eu", Addr: f.eu.Addr}, {Name: "srv-us", Addr: f.us.Addr}}})
	put(t, f.st, haproxyRouter("edge", f.hap.RuntimeAPI, f.hap.Backend))
	put(t, f.st, cluster("eu-1", v1.ClusterTraffic{Router: "edge", Backend: "srv-eu", Capacity: 60}))
	put(t, f.st, cluster("us-1", v1.ClusterTraffic{Router: "edge", Backend: "srv-us"}))
	put(t, f.st, cluster("ap-1", v1.ClusterTraffic{Router: "other", Backend: "srv-ap"}))
	f.m = traffic.NewManager(traffic.Options{Store: f.st, StatusError: func(r string, err error) { t.Errorf("status of %s: %v", r, err) }})
	return f
}

func (f *fleet) haproxyWeights(t *testing.T) map[string]int {
	t.Helper()
	c, _ := haproxy.NewClient(f.hap.RuntimeAPI)
	states, err := c.ServersState(context.Background(), f.hap.Backend)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, s := range states {
		out[s.Name] = s.Effective()
	}
	return out
}

func tw(cluster string, w int) v1.TrafficWeight {
	return v1.TrafficWeight{Router: "edge", Cluster: cluster, Weight: w}
}

func TestManagerSetsScalesAndReadsBack(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	applied, err := f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw("us-1", 95), tw("eu-1", 5)})
	if err != nil {
		t.Fatalf("SetWeights: %v", err)
	}
	want := []v1.TrafficWeight{{Router: "edge", Cluster: "eu-1", Backend: "srv-eu", Weight: 5}, {Router: "edge", Cluster: "us-1", Backend: "srv-us", Weight: 95}}
	if d := cmp.Diff(want, applied); d != "" {
		t.Fatalf("applied (-want +got):\n%s", d)
	}
	// Percent scaled to HAProxy's 0-256.
	if got := f.haproxyWeights(t); got["srv-eu"] != 13 || got["srv-us"] != 243 {
		t.Fatalf("HAProxy weights %v, want srv-eu 13 and srv-us 243", got)
	}
	st := routerStatus(t, f.st, "edge")
	if len(st.Weights) != 2 || st.Weights[0].Weight != 5 || st.Weights[1].Weight != 95 || st.UpdatedAt == nil || st.Message != "" {
		t.Fatalf("router status %+v", st)
	}
	// Only the clusters named change; the status keeps the others.
	if _, err := f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw("eu-1", 0)}); err != nil {
		t.Fatal(err)
	}
	if got := f.haproxyWeights(t); got["srv-eu"] != 0 || got["srv-us"] != 243 {
		t.Fatalf("HAProxy weights %v after draining eu-1", got)
	}
	read, err := f.m.Weights(ctx, "edge", []string{"us-1", "eu-1"})
	if err != nil {
		t.Fatal(err)
	}
	if read[0].Cluster != "eu-1" || read[0].Weight != 0 || read[1].Weight != 95 {
		t.Fatalf("Weights = %+v", read)
	}
	if st := routerStatus(t, f.st, "edge"); len(st.Weights) != 2 || st.Weights[0].Weight != 0 || st.Weights[1].Weight != 95 {
		t.Fatalf("router status %+v", st.Weights)
	}
	if err := f.m.Ping(ctx, "edge"); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestManagerEveryPercentRoundTrips(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	for p := 0; p <= 100; p += 7 {
		applied, err := f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw("eu-1", p), tw("us-1", 100-p)})
		if err != nil {
			t.Fatal(err)
		}
		if applied[0].Weight != p || applied[1].Weight != 100-p {
			t.Fatalf("set %d/%d, applied %+v", p, 100-p, applied)
		}
	}
}

func TestManagerRefusesBeforeSending(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	if _, err := f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw("eu-1", 50), tw("us-1", 50)}); err != nil {
		t.Fatal(err)
	}
	before := f.haproxyWeights(t)
	for name, tc := range map[string]struct {
		weights []v1.TrafficWeight
		want    string
		is      error
	}{
		"cluster without a backend": {[]v1.TrafficWeight{tw("eu-1", 0), tw("ap-1", 100)}, "traffic router edge: cluster ap-1: no backend in the router", traffic.ErrNoBackend},
		"unknown cluster":           {[]v1.TrafficWeight{tw("eu-1", 0), tw("zz-9", 100)}, "cluster zz-9", store.ErrNotFound},
		"weight over 100":           {[]v1.TrafficWeight{tw("eu-1", 101)}, "weight 101 out of range", nil},
		"cluster twice":             {[]v1.TrafficWeight{tw("eu-1", 0), tw("eu-1", 100)}, "listed twice", nil},
		"other router's weight":     {[]v1.TrafficWeight{{Router: "other", Cluster: "eu-1"}}, "is for router other", nil},
	} {
		_, err := f.m.SetWeights(ctx, "edge", tc.weights)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
		if got := f.haproxyWeights(t); !cmp.Equal(got, before) {
			t.Fatalf("%s: HAProxy changed from %v to %v", name, before, got)
		}
	}
	if st := routerStatus(t, f.st, "edge"); !strings.Contains(st.Message, "traffic router edge") {
		t.Errorf("the last failure is not in the router's status: %+v", st)
	}
	if _, err := f.m.SetWeights(ctx, "nope", []v1.TrafficWeight{tw("eu-1", 1)}); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "traffic router nope") {
		t.Errorf("unknown router: %v", err)
	}
}

func TestManagerNamesUnreachableRouterAndRejectedChange(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	// A backend HAProxy does not have: HAProxy is asked and says no.
	put(t, f.st, cluster("ap-1", v1.ClusterTraffic{Router: "edge", Backend: "srv-ap"}))
	_, err := f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw("eu-1", 50), tw("ap-1", 50)})
	if err == nil || !strings.Contains(err.Error(), "traffic router edge") || !strings.Contains(err.Error(), "ap-1 (backend srv-ap)") ||
		!strings.Contains(err.Error(), `no server "srv-ap"`) {
		t.Fatalf("rejected change: %v", err)
	}
	// The router moved to an address where nothing listens: the edit takes
	// effect at once and the error says where.
	put(t, f.st, haproxyRouter("edge", "unix://"+filepath.Join(t.TempDir(), "gone.sock"), "web"))
	_, err = f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw("eu-1", 50)})
	if err == nil || !strings.Contains(err.Error(), "traffic router edge") || !strings.Contains(err.Error(), "gone.sock") || !strings.Contains(err.Error(), "srv-eu") {
		t.Fatalf("unreachable router: %v", err)
	}
	if err := f.m.Ping(ctx, "edge"); err == nil || !strings.Contains(err.Error(), "traffic router edge: unreachable") {
		t.Fatalf("Ping: %v", err)
	}
	// And back over TCP.
	put(t, f.st, haproxyRouter("edge", f.hap.TCPRuntimeAPI, "web"))
	if _, err := f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw("eu-1", 50)}); err != nil {
		t.Fatalf("over TCP: %v", err)
	}
}

func TestManagerChangeNotInForce(t *testing.T) {
	st := newStore(t)
	// A hook that accepts but only applies multiples of 10.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := webhook.Verify(r, []byte("k3y"), time.Now(), time.Minute)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var req webhook.Request
		_ = json.Unmarshal(body, &req)
		var ans webhook.Answer
		for _, x := range req.Weights {
			ans.Weights = append(ans.Weights, webhook.Weight{Backend: x.Backend, Weight: x.Weight / 10 * 10})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	}))
	defer srv.Close()
	r := &v1.TrafficRouter{Spec: v1.TrafficRouterSpec{Webhook: &v1.WebhookRouter{URL: srv.URL, SecretRef: "lb-key"}}}
	r.Metadata.Name = "lb"
	put(t, st, r)
	put(t, st, cluster("eu-1", v1.ClusterTraffic{Router: "lb", Backend: "eu"}))
	put(t, st, cluster("us-1", v1.ClusterTraffic{Router: "lb", Backend: "us"}))
	secrets := func(_ context.Context, name string) ([]byte, error) {
		if name == "lb-key" {
			return []byte("k3y"), nil
		}
		return nil, store.ErrNotFound
	}
	m := traffic.NewManager(traffic.Options{Store: st, Secret: secrets})
	ctx := context.Background()
	applied, err := m.SetWeights(ctx, "lb", []v1.TrafficWeight{{Cluster: "eu-1", Weight: 30}, {Cluster: "us-1", Weight: 70}})
	if err != nil || applied[0].Weight != 30 || applied[1].Weight != 70 {
		t.Fatalf("SetWeights = %+v, %v", applied, err)
	}
	applied, err = m.SetWeights(ctx, "lb", []v1.TrafficWeight{{Cluster: "eu-1", Weight: 25}, {Cluster: "us-1", Weight: 75}})
	if err == nil || !strings.Contains(err.Error(), "traffic router lb: change not in force: cluster eu-1 backend eu reads back 20, want 25") {
		t.Fatalf("error %v", err)
	}
	if len(applied) != 2 || applied[0].Weight != 20 {
		t.Fatalf("applied %+v, want what is really in force", applied)
	}
	// Without a way to resolve secrets the router fails clearly.
	m2 := traffic.NewManager(traffic.Options{Store: st})
	if _, err := m2.SetWeights(ctx, "lb", []v1.TrafficWeight{{Cluster: "eu-1", Weight: 30}}); err == nil || !strings.Contains(err.Error(), "secretRef lb-key") {
		t.Fatalf("no secrets: %v", err)
	}
}

func TestManagerCapacity(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	put(t, f.st, cluster("ap-1", v1.ClusterTraffic{Router: "edge", Backend: "srv-ap", Capacity: 40}))
	cur := []v1.TrafficWeight{tw("eu-1", 34), tw("us-1", 33), tw("ap-1", 33)}
	// us-1 (capacity 100) may go: eu-1 would carry 51% (capacity 60), ap-1 49% (capacity 40): no.
	res, err := f.m.CheckCapacity(ctx, "edge", cur, []string{"us-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || !strings.Contains(res.Reason, "ap-1 would carry 49% of the traffic, its capacity is 40%") {
		t.Fatalf("drain us-1: %+v", res)
	}
	// ap-1 may go: eu-1 51% <= 60, us-1 49% <= 100.
	if res, _ := f.m.CheckCapacity(ctx, "edge", cur, []string{"ap-1"}); !res.OK {
		t.Fatalf("drain ap-1: %+v", res)
	}
}

func TestManagerSharesUnderLoad(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	load := testhaproxy.StartLoad(t, f.hap.URL, 8)
	for _, p := range []int{5, 25, 50} {
		if _, err := f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw("eu-1", p), tw("us-1", 100-p)}); err != nil {
			t.Fatal(err)
		}
		c := load.WaitFor(t, time.Now(), 1000, time.Minute)
		if got := c.Share("eu-1"); c.Errors != 0 || math.Abs(got-float64(p)) > 3 {
			t.Errorf("canary %d%%: eu-1 answered %.2f%% (%s)", p, got, c)
		} else {
			t.Logf("canary %d%%: eu-1 answered %.2f%% of %d requests", p, got, c.OK)
		}
	}
}
