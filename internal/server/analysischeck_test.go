package server_test

import (
	"context"
	"strings"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
)

// A template whose CEL condition, provider template or JSON path does not compile is refused when
// it is created, applied or updated, with the field path, and nothing is written.
func TestBrokenAnalysisTemplateRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	good := fleet(t)[v1.KindAnalysisTemplate].(*v1.AnalysisTemplate)
	broken := func() *v1.AnalysisTemplate {
		at := fleet(t)[v1.KindAnalysisTemplate].(*v1.AnalysisTemplate)
		at.Spec.Metrics[0].SuccessCondition = "result <"
		return at
	}

	_, err := e.deploy.Create(ctx, broken())
	st := wantStatus(t, err, 422, v1.ReasonInvalid)
	if !hasField(st.Fields, "spec.metrics[0].successCondition") || !strings.Contains(st.Message, "AnalysisTemplate error-rate") {
		t.Errorf("create: %q %+v, want AnalysisTemplate error-rate and spec.metrics[0].successCondition", st.Message, st.Fields)
	}

	// One good object and the broken template in one apply: neither is written.
	_, err = e.deploy.Apply(ctx, []v1.Object{cluster("prod-eu-1", nil), broken()})
	st = wantStatus(t, err, 422, v1.ReasonInvalid)
	if len(st.Fields) != 1 || st.Fields[0].Path != "items[1].spec.metrics[0].successCondition" ||
		!strings.Contains(st.Message, "nothing was written") {
		t.Errorf("apply: %q %+v, want one problem at items[1].spec.metrics[0].successCondition and 'nothing was written'", st.Message, st.Fields)
	}

	// A webhook metric with an unsupported JSON path and a broken URL template, as YAML.
	yaml := `apiVersion: flotilla.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: hook}
spec:
  metrics:
  - name: ready
    failureCondition: "result == 'no'"
    provider:
      webhook: {url: "http://checks/{{ .Cluster.Name", jsonPath: "$.items[?(@.ok)]"}
`
	_, err = e.deploy.ApplyYAML(ctx, []byte(yaml))
	st = wantStatus(t, err, 422, v1.ReasonInvalid)
	for _, p := range []string{"items[0].spec.metrics[0].provider.webhook.url", "items[0].spec.metrics[0].provider.webhook.jsonPath"} {
		if !hasField(st.Fields, p) {
			t.Errorf("apply YAML: fields %+v lack %s", st.Fields, p)
		}
	}
	assertNothingWritten(t, e)

	// Update: a stored good template cannot be replaced by a broken one, and stays as it was.
	created, err := e.deploy.Create(ctx, good)
	if err != nil {
		t.Fatalf("create the good template: %v", err)
	}
	upd := created.(*v1.AnalysisTemplate)
	upd.Spec.Metrics[0].FailureCondition = "size(result) >"
	_, err = e.deploy.Update(ctx, upd)
	st = wantStatus(t, err, 422, v1.ReasonInvalid)
	if !hasField(st.Fields, "spec.metrics[0].failureCondition") {
		t.Errorf("update: fields %+v lack spec.metrics[0].failureCondition", st.Fields)
	}
	got, err := e.deploy.Get(ctx, v1.KindAnalysisTemplate, "error-rate")
	if err != nil {
		t.Fatal(err)
	}
	if fc := got.(*v1.AnalysisTemplate).Spec.Metrics[0].FailureCondition; fc != "" {
		t.Errorf("stored failureCondition = %q after a refused update, want empty", fc)
	}
}
