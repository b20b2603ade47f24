package apply

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProjectKeepsOnlyAppliedPaths(t *testing.T) {
	desired := map[string]any{
		"metadata": map[string]any{"name": "a", "labels": map[string]any{"x": "1"}},
		"spec": map[string]any{
			"replicas":   int64(2),
			"containers": []any{map[string]any{"name": "c", "image": "i:1"}},
			"ports":      []any{int64(80)},
		},
	}
	live := map[string]any{
		"metadata": map[string]any{"name": "a", "uid": "u", "labels": map[string]any{"x": "1", "other": "y"}},
		"spec": map[string]any{
			"replicas":   int64(3),
			"containers": []any{map[string]any{"name": "c", "image": "i:1", "imagePullPolicy": "Always"}},
			"ports":      []any{int64(80), int64(81)},
			"defaulted":  true,
		},
		"status": map[string]any{"ready": true},
	}
	want := map[string]any{
		"metadata": map[string]any{"name": "a", "labels": map[string]any{"x": "1"}},
		"spec": map[string]any{
			"replicas":   int64(3),
			"containers": []any{map[string]any{"name": "c", "image": "i:1"}},
			"ports":      []any{int64(80), int64(81)}, // lengths differ: taken whole
		},
	}
	if diff := cmp.Diff(want, project(live, desired)); diff != "" {
		t.Errorf("project (-want +got):\n%s", diff)
	}
}

func TestDiffPathsNamesFieldsNotValues(t *testing.T) {
	a := map[string]any{"data": map[string]any{"password": "c2VjcmV0", "same": "x"}, "list": []any{"a", "b"}, "gone": "v"}
	b := map[string]any{"data": map[string]any{"password": "b3RoZXI=", "same": "x"}, "list": []any{"a", "c"}}
	var got []string
	diffPaths(a, b, "", &got)
	if diff := cmp.Diff([]string{"data.password", "gone", "list[1]"}, got); diff != "" {
		t.Errorf("diffPaths (-want +got):\n%s", diff)
	}
}

func TestOrderPutsCRDsThenNamespacesFirst(t *testing.T) {
	refs := []ObjectRef{
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "n", Name: "d"},
		{Version: "v1", Kind: "ConfigMap", Namespace: "n", Name: "b"},
		{Version: "v1", Kind: "Namespace", Name: "n"},
		{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "w.example"},
		{Version: "v1", Kind: "ConfigMap", Namespace: "n", Name: "a"},
	}
	sortRefs(refs)
	var got []string
	for _, r := range refs {
		got = append(got, r.String())
	}
	want := []string{
		"CustomResourceDefinition.apiextensions.k8s.io/w.example",
		"Namespace/n",
		"ConfigMap/n/a",
		"ConfigMap/n/b",
		"Deployment.apps/n/d",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestInventoryRoundTrip(t *testing.T) {
	in := &Inventory{Service: "web", Release: "r1", Entries: []Entry{
		{ObjectRef: ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "n", Name: "a"}, Hash: "h", Live: "l", UID: "u", ResourceVersion: "7"},
	}}
	gz, err := encodeInventory(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeInventory(base64Encode(gz))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := decodeInventory("not base64!"); err == nil {
		t.Error("decodeInventory accepted garbage")
	}
}

func base64Encode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
