package apply

import (
	"context"
	"os"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/testfleet"
	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestMain(m *testing.M) { os.Exit(testfleet.Main(m)) }

// obj builds an unstructured object from a map.
func obj(m map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: m} }

func configMap(ns, name string, data map[string]any) *unstructured.Unstructured {
	return obj(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"data":     data,
	})
}

func newEngine(t testing.TB, c *testfleet.Cluster) *Engine {
	t.Helper()
	e, err := New(c.Config, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// actions maps "Kind/ns/name" to the action taken.
func actions(cs *ChangeSet) map[string]Action {
	m := map[string]Action{}
	for _, c := range cs.Changes {
		m[c.Object.String()] = c.Action
	}
	return m
}

func mustApply(t *testing.T, e *Engine, req Request) *ChangeSet {
	t.Helper()
	cs, err := e.Apply(ctxT(t), req)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return cs
}

func wantActions(t *testing.T, cs *ChangeSet, want map[string]Action) {
	t.Helper()
	if diff := cmp.Diff(want, actions(cs)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func inventoryKeys(t *testing.T, e *Engine, service string) []string {
	t.Helper()
	inv, err := e.Inventory(ctxT(t), service)
	if err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	var keys []string
	for _, en := range inv.Entries {
		keys = append(keys, en.String())
	}
	return keys
}

func getCM(t *testing.T, c *testfleet.Cluster, ns, name string) (*unstructured.Unstructured, bool) {
	t.Helper()
	u, err := c.Dynamic.Resource(configMaps).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("get ConfigMap %s/%s: %v", ns, name, err)
	}
	return u, true
}

// eventually polls cond until it returns true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
