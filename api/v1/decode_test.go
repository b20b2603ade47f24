package v1

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const header = "apiVersion: flotilla.dev/v1alpha1\n"

func TestDecodeYAMLExamples(t *testing.T) {
	data, err := os.ReadFile("testdata/examples.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeYAML("examples.yaml", data)
	if err != nil {
		t.Fatalf("DecodeYAML: %v", err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetTypeMeta().Kind)
	}
	want := []string{KindCluster, KindSource, KindService, KindRolloutStrategy, KindAnalysisTemplate, KindTrafficRouter, KindRelease, KindRollout}
	if d := cmp.Diff(want, kinds); d != "" {
		t.Fatalf("kinds (-want +got):\n%s", d)
	}
	st := objs[3].(*RolloutStrategy)
	if st.Spec.Waves[1].MaxParallel != "2" || st.Spec.Waves[2].MaxParallel != "25%" || st.Spec.Waves[0].Steps[0].Bake != "2m" {
		t.Errorf("strategy decoded as %+v", st.Spec.Waves)
	}
	svc := objs[2].(*Service)
	if string(svc.Spec.Helm.Values) != `{"replicas":"{{ .Cluster.Vars.replicas }}"}` {
		t.Errorf("helm values %s", svc.Spec.Helm.Values)
	}
	// JSON round trip: encode, decode strictly, encode again: same bytes.
	for _, o := range objs {
		j1, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeJSON(j1)
		if err != nil {
			t.Fatalf("%s: DecodeJSON of its own encoding: %v\n%s", o.GetTypeMeta().Kind, err, j1)
		}
		j2, _ := json.Marshal(back)
		if d := cmp.Diff(string(j1), string(j2)); d != "" {
			t.Errorf("%s: round trip (-first +second):\n%s", o.GetTypeMeta().Kind, d)
		}
	}
}

func TestDecodeYAMLErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // each must appear in the error text
	}{
		{"unknown field with path", header + "kind: RolloutStrategy\nmetadata: {name: s}\nspec:\n  waves:\n  - name: a\n    clusters: {}\n    maxParalel: 2\n",
			[]string{"in.yaml: document 1 (line 1): spec.waves[0].maxParalel: unknown field"}},
		{"field names are case-sensitive", header + "kind: Cluster\nmetadata: {name: c}\nSpec: {}\n",
			[]string{"Spec: unknown field"}},
		{"every unknown field", header + "kind: Cluster\nmetadata: {name: c, nmae: x}\nspec: {varz: {}, traffic: [{router: a, backend: b, weight: 1}]}\n",
			[]string{"metadata.nmae: unknown field", "spec.varz: unknown field", "spec.traffic[0].weight: unknown field"}},
		{"label value a number", header + "kind: Cluster\nmetadata: {name: c, labels: {ring: 1}}\n",
			[]string{"metadata.labels[ring]: must be a string, got a number"}},
		{"maxParallel a list", header + "kind: RolloutStrategy\nmetadata: {name: s}\nspec: {waves: [{name: a, clusters: {}, maxParallel: [1]}]}\n",
			[]string{"spec.waves[0].maxParallel: must be a number or a percentage string, got a list"}},
		{"count too big", header + "kind: AnalysisTemplate\nmetadata: {name: a}\nspec: {metrics: [{name: m, count: 99999999999999999999}]}\n",
			[]string{"spec.metrics[0].count: must be a whole number within 64 bits"}},
		{"count a string", header + "kind: AnalysisTemplate\nmetadata: {name: a}\nspec: {metrics: [{name: m, count: \"6\"}]}\n",
			[]string{"spec.metrics[0].count: must be a whole number, got a string"}},
		{"spec a list", header + "kind: Service\nmetadata: {name: a}\nspec: [1, 2]\n",
			[]string{"spec: must be a mapping, got a list"}},
		{"bad time", header + "kind: Release\nmetadata: {name: r}\nspec: {commit: {sha: a, time: yesterday}}\n",
			[]string{"in.yaml: document 1 (line 1):", "yesterday"}},
		{"wrong apiVersion", "apiVersion: flotilla.dev/v1\nkind: Cluster\nmetadata: {name: c}\n",
			[]string{`apiVersion: unsupported flotilla.dev/v1: must be "flotilla.dev/v1alpha1"`}},
		{"no apiVersion or kind", "metadata: {name: c}\n",
			[]string{"apiVersion: required", "kind: required"}},
		{"unknown kind", header + "kind: Deployment\nmetadata: {name: c}\n",
			[]string{"kind: unknown kind Deployment: must be one of Cluster, Source"}},
		{"lowercase kind", header + "kind: cluster\nmetadata: {name: c}\n",
			[]string{"kind: unknown kind cluster"}},
		{"not a mapping", "- a\n- b\n", []string{"document 1 (line 1): must be an object (a mapping), got a list"}},
		{"malformed yaml, absolute line", header + "kind: Cluster\nmetadata: {name: c}\n---\n# comment\n" + header + "kind: Cluster\nmetadata:\n  name: d\n   labels: x\n",
			[]string{"in.yaml: document 2 (line 10): malformed YAML"}},
		{"duplicate key", header + "kind: Cluster\nkind: Source\nmetadata: {name: c}\n",
			[]string{"in.yaml: document 1 (line 3): malformed YAML", `"kind" already set`}},
		{"tabs", header + "kind: Cluster\nmetadata:\n\tname: c\n", []string{"(line 4): malformed YAML"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs, err := DecodeYAML("in.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("no error; decoded %d objects", len(objs))
			}
			if objs != nil {
				t.Errorf("objects returned with an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			var de *DocumentError
			if !errors.As(err, &de) || de.Source != "in.yaml" {
				t.Errorf("error is not a *DocumentError for in.yaml: %#v", err)
			}
		})
	}
}

func TestDecodeYAMLReportsEveryDocument(t *testing.T) {
	in := header + "kind: Cluster\nmetadata: {name: a, x: 1}\n" + // 1, lines 1-3
		"---\n" + header + "kind: Cluster\nmetadata: {name: b}\n" + // 2, fine
		"---\n\n" + header + "kind: Nope\nmetadata: {name: c}\n" // 3, line 10
	_, err := DecodeYAML("fleet.yaml", []byte(in))
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, w := range []string{"fleet.yaml: document 1 (line 1): metadata.x: unknown field", "fleet.yaml: document 3 (line 10): kind: unknown kind Nope"} {
		if !strings.Contains(got, w) {
			t.Errorf("error %q\ndoes not contain %q", got, w)
		}
	}
	if strings.Contains(got, "document 2") {
		t.Errorf("the valid document is reported: %q", got)
	}
}

func TestDecodeYAMLSkipsEmptyDocuments(t *testing.T) {
	in := "---\n# only a comment\n---\n\n---\n" + header + "kind: Cluster\nmetadata: {name: a}\n---\n...\n--- " +
		"{apiVersion: flotilla.dev/v1alpha1, kind: Cluster, metadata: {name: b}}\n---\n"
	objs, err := DecodeYAML("e.yaml", []byte(in))
	if err != nil {
		t.Fatalf("DecodeYAML: %v", err)
	}
	if len(objs) != 2 || objs[0].GetMetadata().Name != "a" || objs[1].GetMetadata().Name != "b" {
		t.Fatalf("got %d objects", len(objs))
	}
	_, err = DecodeYAML("e.yaml", []byte("---\n# nothing\n---\n"+header+"kind: Nope\n"))
	if err == nil || !strings.Contains(err.Error(), "e.yaml: document 1 (line 4)") {
		t.Errorf("numbering after empty documents: %v", err)
	}
	if objs, err := DecodeYAML("empty.yaml", nil); err != nil || len(objs) != 0 {
		t.Errorf("empty input: %d objects, %v", len(objs), err)
	}
}

func TestLoadYAMLValidates(t *testing.T) {
	in := header + "kind: Cluster\nmetadata: {name: good}\n---\n" +
		header + "kind: Service\nmetadata: {name: web}\nspec:\n  source: {name: Shop}\n---\n" +
		header + "kind: Cluster\nmetadata: {name: Bad_Name}\n"
	_, err := LoadYAML("apply.yaml", []byte(in))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`apply.yaml: document 2 (line 5): Service web: spec.source.name: "Shop" is not a DNS label`,
		"spec.placement.clusterSelector: required (use {} to select every cluster)",
		`apply.yaml: document 3 (line 11): Cluster Bad_Name: metadata.name: "Bad_Name" is not a DNS label`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Kind != KindService || len(ve.Fields) != 2 {
		t.Errorf("errors.As ValidationError: %+v", ve)
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"syntax with position", "{\n  \"apiVersion\": \"flotilla.dev/v1alpha1\",\n  \"kind\": \"Cluster\",,\n}", "malformed JSON: line 3, column 21"},
		{"trailing data", `{"apiVersion":"flotilla.dev/v1alpha1","kind":"Cluster","metadata":{"name":"a"}} {}`, "unexpected data after the object"},
		{"empty", ``, "malformed JSON: empty document"},
		{"array", `[]`, "must be an object (a mapping), got a list"},
		{"unknown field", `{"apiVersion":"flotilla.dev/v1alpha1","kind":"Cluster","metadata":{"name":"a"},"spec":{"vars":{"a":"b"},"x":1}}`, "spec.x: unknown field"},
		{"status type", `{"apiVersion":"flotilla.dev/v1alpha1","kind":"Rollout","metadata":{"name":"a"},"status":{"currentWave":"one"}}`, "status.currentWave: must be a whole number, got a string"},
	}
	for _, c := range cases {
		_, err := DecodeJSON([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
		var de *DecodeError
		if err != nil && !errors.As(err, &de) {
			t.Errorf("%s: not a *DecodeError: %T", c.name, err)
		}
	}
	o, err := DecodeJSON([]byte(`{"apiVersion":"flotilla.dev/v1alpha1","kind":"Cluster","metadata":{"name":"a","labels":null},"spec":{"vars":{"a":"b"}}}`))
	if err != nil {
		t.Fatalf("valid JSON: %v", err)
	}
	if c := o.(*Cluster); c.Metadata.Name != "a" || c.Spec.Vars["a"] != "b" {
		t.Errorf("decoded %+v", c)
	}
}
