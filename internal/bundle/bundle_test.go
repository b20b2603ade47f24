package bundle

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func obj(apiVersion, kind, ns, name string, extra map[string]any) map[string]any {
	meta := map[string]any{"name": name}
	if ns != "" {
		meta["namespace"] = ns
	}
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

func TestNewSortsAndNormalises(t *testing.T) {
	in := []map[string]any{
		obj("apps/v1", "Deployment", "web", "b", map[string]any{"spec": map[string]any{"replicas": 3}, "status": map[string]any{"ready": 1}}),
		obj("v1", "ConfigMap", "web", "a", map[string]any{"data": map[string]any{"z": "1", "a": "<&>"}}),
		obj("v1", "Namespace", "", "web", nil),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com", nil),
		obj("apps/v1", "Deployment", "web", "a", nil),
	}
	in[0]["metadata"].(map[string]any)["uid"] = "123"
	in[0]["metadata"].(map[string]any)["resourceVersion"] = "9"
	in[0]["metadata"].(map[string]any)["annotations"] = map[string]any{"kubectl.kubernetes.io/last-applied-configuration": "{}"}
	b, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, id := range b.IDs() {
		got = append(got, id.String())
	}
	want := []string{
		"apiextensions.k8s.io/CustomResourceDefinition/widgets.example.com",
		"core/Namespace/web",
		"core/ConfigMap/web/a",
		"apps/Deployment/web/a",
		"apps/Deployment/web/b",
	}
	// core ("") sorts before "apps".
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("order (-want +got):\n%s", diff)
	}
	wantText := `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.example.com"}}
{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"web"}}
{"apiVersion":"v1","data":{"a":"<&>","z":"1"},"kind":"ConfigMap","metadata":{"name":"a","namespace":"web"}}
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","namespace":"web"}}
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"b","namespace":"web"},"spec":{"replicas":3}}
`
	if diff := cmp.Diff(wantText, string(b.Bytes())); diff != "" {
		t.Fatalf("encoding (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(b.Digest(), "sha256:") || len(b.Digest()) != 71 {
		t.Fatalf("digest %q", b.Digest())
	}
	// The caller's maps are untouched.
	if _, ok := in[0]["status"]; !ok {
		t.Fatal("New modified its input")
	}
}

func TestNewIsOrderIndependent(t *testing.T) {
	a := obj("v1", "ConfigMap", "x", "a", nil)
	c := obj("v1", "ConfigMap", "x", "c", nil)
	b1, err := New([]map[string]any{a, c})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := New([]map[string]any{c, a})
	if err != nil {
		t.Fatal(err)
	}
	if b1.Digest() != b2.Digest() {
		t.Fatalf("digests differ: %s vs %s", b1.Digest(), b2.Digest())
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []map[string]any
		want error
	}{
		{"duplicate across versions", []map[string]any{
			obj("apps/v1", "Deployment", "w", "a", nil), obj("apps/v1beta1", "Deployment", "w", "a", nil),
		}, ErrDuplicate},
		{"no kind", []map[string]any{{"apiVersion": "v1", "metadata": map[string]any{"name": "a"}}}, ErrInvalidObject},
		{"no name", []map[string]any{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{}}}, ErrInvalidObject},
		{"namespace not string", []map[string]any{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "a", "namespace": 3}}}, ErrInvalidObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	b, err := New([]map[string]any{
		obj("v1", "ConfigMap", "x", "a", map[string]any{"data": map[string]any{"k": "v\n\"q\""}}),
		obj("apps/v1", "Deployment", "x", "d", map[string]any{"spec": map[string]any{
			"replicas": int64(2), "ratio": 0.25, "big": int64(9007199254740993), "list": []any{true, nil, "s"},
		}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	d, err := Decode(buf.Bytes(), b.Digest())
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest() != b.Digest() || !bytes.Equal(d.Bytes(), b.Bytes()) {
		t.Fatalf("round trip changed the bundle:\n%s\n%s", b.Bytes(), d.Bytes())
	}
	again, err := New(d.Objects())
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest() != b.Digest() {
		t.Fatalf("re-bundling decoded objects: %s, want %s", again.Digest(), b.Digest())
	}
	if !strings.Contains(string(b.Bytes()), `"big":9007199254740993`) {
		t.Fatalf("large integer lost precision: %s", b.Bytes())
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, err := New([]map[string]any{obj("v1", "ConfigMap", "x", "a", nil), obj("v1", "ConfigMap", "x", "b", nil)})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(good.Bytes()), "\n")
	swapped := lines[1] + lines[0]
	spaced := strings.Replace(string(good.Bytes()), `"kind":`, `"kind": `, 1)
	withStatus := strings.Replace(string(good.Bytes()), `{"apiVersion":"v1",`, `{"apiVersion":"v1","status":{},`, 1)
	dup := lines[0] + lines[0]
	tests := []struct {
		name   string
		data   string
		digest string
		want   error
	}{
		{"tampered", strings.Replace(string(good.Bytes()), `"a"`, `"z"`, 1), good.Digest(), ErrDigestMismatch},
		{"bad digest", string(good.Bytes()), "sha256:xyz", ErrBadDigest},
		{"uppercase digest", string(good.Bytes()), strings.ToUpper(good.Digest()), ErrBadDigest},
		{"out of order", swapped, Digest([]byte(swapped)), ErrNotCanonical},
		{"not canonical spacing", spaced, Digest([]byte(spaced)), ErrNotCanonical},
		{"not normalised", withStatus, Digest([]byte(withStatus)), ErrNotCanonical},
		{"duplicate", dup, Digest([]byte(dup)), ErrDuplicate},
		{"no final newline", strings.TrimSuffix(lines[0], "\n"), Digest([]byte(strings.TrimSuffix(lines[0], "\n"))), ErrNotCanonical},
		{"not json", "{\n", Digest([]byte("{\n")), ErrNotCanonical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.data), tt.digest)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	good, err := New([]map[string]any{obj("v1", "ConfigMap", "x", "a", map[string]any{"data": map[string]any{"k": "v"}})})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data, Digest(data))
		if err != nil {
			return
		}
		again, err := New(b.Objects())
		if err != nil {
			t.Fatalf("decoded bundle does not rebuild: %v", err)
		}
		if again.Digest() != b.Digest() {
			t.Fatalf("decoded bundle rebuilds to %s, want %s", again.Digest(), b.Digest())
		}
	})
}
