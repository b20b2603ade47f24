package analysis

import (
	"errors"
	"strings"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
)

func TestCheckNamesEveryBrokenField(t *testing.T) {
	bad := "{{ .Cluster.Name "
	spec := v1.AnalysisTemplateSpec{
		Args: []v1.AnalysisArg{{Name: "a", Value: &bad}},
		Metrics: []v1.Metric{
			{Name: "ok", SuccessCondition: "result < 0.01",
				Provider: v1.MetricProvider{Prometheus: &v1.PrometheusMetric{Address: "http://p:9090", Query: `up{cluster="{{ .Cluster.Name }}"}`}}},
			{Name: "cond", SuccessCondition: "result +", Provider: v1.MetricProvider{Prometheus: &v1.PrometheusMetric{Address: "http://p", Query: "{{ .Args.x"}}},
			{Name: "hook", FailureCondition: "result", Provider: v1.MetricProvider{Webhook: &v1.WebhookMetric{URL: "http://h/{{ end }}", JSONPath: "$["}}},
			{Name: "job", Provider: v1.MetricProvider{Job: &v1.JobMetric{Template: []byte(`{"metadata":{"name":"{{ if }}"}}`)}}},
		},
	}
	err := Check(spec)
	if err == nil {
		t.Fatal("Check passed a broken template")
	}
	for _, w := range []string{"spec.args[0].value", "spec.metrics[1].successCondition", "spec.metrics[1].provider.prometheus.query",
		"spec.metrics[2].provider.webhook.url", "spec.metrics[2].provider.webhook.jsonPath", "spec.metrics[3].provider.job.template"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Check error does not name %s:\n%v", w, err)
		}
	}
	var ve *v1.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 6 {
		t.Errorf("Check error is not a ValidationError with one field per problem (6): %#v", err)
	} else if ve.Fields[1].Path != "spec.metrics[1].successCondition" {
		t.Errorf("second field is %q, want spec.metrics[1].successCondition", ve.Fields[1].Path)
	}
	if strings.Contains(err.Error(), "spec.metrics[0]") {
		t.Errorf("Check blamed the good metric:\n%v", err)
	}
	if err := Check(v1.AnalysisTemplateSpec{Metrics: spec.Metrics[:1]}); err != nil {
		t.Errorf("Check of a good template: %v", err)
	}
}
