package apply

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"flotilla.dev/flotilla/internal/testfleet"
)

// Services lists exactly the services with an inventory, so that an agent can find services
// unassigned while it was down.
func TestServicesListsTheInventories(t *testing.T) {
	f := testfleet.Get(t)
	ns := f.Namespace(t)
	c := f.Clusters[0]
	e, err := New(c.Config, Options{InventoryNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if got, err := e.Services(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Services before any apply = %v, %v; want none", got, err)
	}
	for _, svc := range []string{"web", "api"} {
		mustApply(t, e, Request{Service: svc, Release: "r1",
			Objects: []*unstructured.Unstructured{configMap(ns, svc+"-config", map[string]any{"k": "1"})}})
	}
	if got, err := e.Services(ctx); err != nil || !slices.Equal(got, []string{"api", "web"}) {
		t.Fatalf("Services = %v, %v; want [api web]", got, err)
	}
	mustApply(t, e, Request{Service: "api", Removed: true})
	if got, err := e.Services(ctx); err != nil || !slices.Equal(got, []string{"web"}) {
		t.Fatalf("Services after removing api = %v, %v; want [web]", got, err)
	}
}
