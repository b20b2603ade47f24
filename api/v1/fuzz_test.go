package v1

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzDecodeYAML feeds arbitrary bytes to DecodeYAML. It must never panic;
// what it accepts must survive Default and Validate, and re-encode to JSON
// that DecodeJSON accepts and that encodes to the same bytes again.
func FuzzDecodeYAML(f *testing.F) {
	if data, err := os.ReadFile("testdata/examples.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(header + "kind: Cluster\nmetadata: {name: a}\n---\n" + header + "kind: Cluster\nmetadata: {name: b, labels: {x: 1}}\n"))
	f.Add([]byte("--- {apiVersion: flotilla.dev/v1alpha1, kind: Rollout, metadata: {name: r}, status: {currentWave: 2}}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := DecodeYAML("fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		for _, o := range objs {
			j1, err := json.Marshal(o)
			if err != nil {
				t.Fatalf("%s: marshal: %v", o.GetTypeMeta().Kind, err)
			}
			back, err := DecodeJSON(j1)
			if err != nil {
				t.Fatalf("%s: DecodeJSON of its own encoding: %v\n%s", o.GetTypeMeta().Kind, err, j1)
			}
			j2, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if string(j1) != string(j2) {
				t.Fatalf("%s: round trip changed the object:\n%s\n%s", o.GetTypeMeta().Kind, j1, j2)
			}
			o.Default()
			_ = o.Validate()
		}
	})
}
