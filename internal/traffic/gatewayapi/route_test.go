package gatewayapi_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/open"
	"flotilla.dev/flotilla/internal/testfleet"
	"flotilla.dev/flotilla/internal/traffic"
	"flotilla.dev/flotilla/internal/traffic/gatewayapi"
	"flotilla.dev/flotilla/internal/traffic/providertest"
)

func TestMain(m *testing.M) { os.Exit(testfleet.Main(m)) }

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

var installOnce sync.Map // cluster name -> error

// installCRD installs the standard-channel HTTPRoute CRD of the
// gateway-api module version in go.mod (read from the module cache, so it
// always matches the Go types) and waits until it is established.
func installCRD(t *testing.T, c *testfleet.Cluster) {
	t.Helper()
	if v, ok := installOnce.Load(c.Name); ok && v == nil {
		return
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatalf("find the gateway-api module: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("HTTPRoute CRD: %v", err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatalf("HTTPRoute CRD %s: %v", path, err)
	}
	ctx := context.Background()
	crd := &unstructured.Unstructured{Object: obj}
	if _, err := c.Dynamic.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("cluster %s: create the HTTPRoute CRD: %v", c.Name, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := c.Dynamic.Resource(crdGVR).Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, x := range conds {
				m, _ := x.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					// The discovery of a new resource lags a little behind.
					if _, err := c.Dynamic.Resource(gatewayapi.GVR).Namespace("default").List(ctx, metav1.ListOptions{}); err == nil {
						installOnce.Store(c.Name, nil)
						return
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster %s: HTTPRoute CRD not established after 1m (%v)", c.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const routeYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: edge}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs:
    - {name: eu-1, port: 80, weight: 100}
    - {name: us-1, port: 80}
  - matches: [{path: {type: PathPrefix, value: /static}}]
    backendRefs:
    - {name: cdn, port: 80}
`

func createRoute(t *testing.T, c *testfleet.Cluster, ns string) {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(routeYAML), &obj); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	if _, err := c.Dynamic.Resource(gatewayapi.GVR).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create HTTPRoute: %v", err)
	}
}

// refWeights reads the route's backendRef weights as the API server has them.
func refWeights(t *testing.T, c *testfleet.Cluster, ns string) (map[string]any, *unstructured.Unstructured) {
	t.Helper()
	u, err := c.Dynamic.Resource(gatewayapi.GVR).Namespace(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	for _, r := range rules {
		refs, _ := r.(map[string]any)["backendRefs"].([]any)
		for _, x := range refs {
			m := x.(map[string]any)
			out[m["name"].(string)] = m["weight"]
		}
	}
	return out, u
}

func put(t *testing.T, st store.Store, obj v1.Object) {
	t.Helper()
	obj.Default()
	if err := obj.Validate(); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(obj)
	var parts struct{ Spec json.RawMessage }
	_ = json.Unmarshal(data, &parts)
	so := &store.Object{Kind: obj.GetTypeMeta().Kind, Name: obj.GetMetadata().Name, Spec: parts.Spec}
	if _, err := st.Apply(context.Background(), []*store.Object{so}, store.Actor{Kind: store.ActorUser, Name: "test"}); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPRouteWeightsFollowCanarySteps(t *testing.T) {
	f := testfleet.Get(t)
	edge := f.Clusters[0]
	installCRD(t, edge)
	ns := f.Namespace(t)
	createRoute(t, edge, ns)

	ctx := context.Background()
	st, err := open.Open(ctx, filepath.Join(t.TempDir(), "flotilla.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	router := &v1.TrafficRouter{Spec: v1.TrafficRouterSpec{GatewayAPI: &v1.GatewayAPIRouter{Cluster: edge.Name,
		HTTPRoute: v1.NamespacedName{Namespace: ns, Name: "web"}}}}
	router.Metadata.Name = "edge"
	put(t, st, router)
	for _, name := range []string{"eu-1", "us-1", "ap-1"} {
		c := &v1.Cluster{Spec: v1.ClusterSpec{Traffic: []v1.ClusterTraffic{{Router: "edge", Backend: name}}}}
		c.Metadata.Name = name
		put(t, st, c)
	}
	m := traffic.NewManager(traffic.Options{Store: st, RESTConfig: func(_ context.Context, cluster string) (*rest.Config, error) {
		for _, c := range f.Clusters {
			if c.Name == cluster {
				return c.Config, nil
			}
		}
		return nil, store.ErrNotFound
	}})
	if err := m.Ping(ctx, "edge"); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// The canary (us-1) gets 5, 25, 50 then 100 percent.
	for _, p := range []int{5, 25, 50, 100} {
		applied, err := m.SetWeights(ctx, "edge", []v1.TrafficWeight{{Cluster: "us-1", Weight: p}, {Cluster: "eu-1", Weight: 100 - p}})
		if err != nil {
			t.Fatalf("step %d: %v", p, err)
		}
		if applied[0].Cluster != "eu-1" || applied[0].Weight != 100-p || applied[1].Weight != p {
			t.Fatalf("step %d: applied %+v", p, applied)
		}
		got, _ := refWeights(t, edge, ns)
		if got["eu-1"] != int64(100-p) || got["us-1"] != int64(p) || got["cdn"] != int64(1) { // the other rule keeps its default
			t.Fatalf("step %d: HTTPRoute backendRefs weigh %v", p, got)
		}
	}
	read, err := m.Weights(ctx, "edge", []string{"eu-1", "us-1"})
	if err != nil || read[0].Weight != 0 || read[1].Weight != 100 {
		t.Fatalf("Weights = %+v, %v", read, err)
	}
	// Fields other than the weights survive, including ones edited by
	// someone else in between.
	_, u := refWeights(t, edge, ns)
	_ = unstructured.SetNestedStringSlice(u.Object, []string{"shop.example.com", "www.example.com"}, "spec", "hostnames")
	if _, err := edge.Dynamic.Resource(gatewayapi.GVR).Namespace(ns).Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetWeights(ctx, "edge", []v1.TrafficWeight{{Cluster: "us-1", Weight: 0}, {Cluster: "eu-1", Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	got, u := refWeights(t, edge, ns)
	hosts, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "hostnames")
	if got["eu-1"] != int64(100) || got["us-1"] != int64(0) || len(hosts) != 2 {
		t.Fatalf("after switching back: weights %v hostnames %v", got, hosts)
	}
	// A cluster whose backend is not in the rule: nothing changes.
	_, err = m.SetWeights(ctx, "edge", []v1.TrafficWeight{{Cluster: "eu-1", Weight: 50}, {Cluster: "ap-1", Weight: 50}})
	if err == nil || !strings.Contains(err.Error(), "rule 0 has no backendRef ap-1 (it has eu-1, us-1)") || !strings.Contains(err.Error(), "traffic router edge") {
		t.Fatalf("unknown backendRef: %v", err)
	}
	if got, _ := refWeights(t, edge, ns); got["eu-1"] != int64(100) {
		t.Fatalf("a refused change was half applied: %v", got)
	}
	// A route that does not exist.
	gone := gatewayapi.NewWithClient(edge.Dynamic, edge.Name, ns, "nope", 0)
	if err := gone.Ping(ctx); err == nil || !strings.Contains(err.Error(), "httproute "+ns+"/nope in cluster "+edge.Name) {
		t.Fatalf("Ping of a missing route: %v", err)
	}
	// A rule index past the end.
	if err := gatewayapi.NewWithClient(edge.Dynamic, edge.Name, ns, "web", 2).Ping(ctx); err == nil || !strings.Contains(err.Error(), "has 2 rule(s), no rule 2") {
		t.Fatalf("Ping of rule 2: %v", err)
	}
}

func TestConformance(t *testing.T) {
	f := testfleet.Get(t)
	edge := f.Clusters[0]
	installCRD(t, edge)
	ns := f.Namespace(t)
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: split}
spec:
  parentRefs: [{name: edge}]
  rules:
  - backendRefs: [{name: a, port: 80}, {name: b, port: 80}]
`), &obj); err != nil {
		t.Fatal(err)
	}
	if _, err := edge.Dynamic.Resource(gatewayapi.GVR).Namespace(ns).Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := gatewayapi.New(edge.Config, edge.Name, ns, "split", 0)
	if err != nil {
		t.Fatal(err)
	}
	providertest.Run(t, r, "a", "b")
}
