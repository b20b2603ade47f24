package analysis

import (
	"context"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/testprom"
)

// BenchmarkEvaluate is the cost of judging one measurement: one
// evaluation of a compiled condition.
func BenchmarkEvaluate(b *testing.B) {
	for _, c := range []struct {
		name, cond string
		result     any
	}{
		{"scalar", "result < 0.01", 0.004},
		{"both-conditions", "result < 0.01", 0.004},
		{"list-of-10", "result.all(x, x < 0.01)", []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0.001}},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := v1.Metric{SuccessCondition: c.cond}
			if c.name == "both-conditions" {
				m.FailureCondition = "result > 0.05"
			}
			cond, err := compileConditions(m)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				if _, err := cond.evaluate(ctx, c.result); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCompile is the once-per-metric cost of compiling a condition.
func BenchmarkCompile(b *testing.B) {
	for b.Loop() {
		if _, err := compileConditions(v1.Metric{SuccessCondition: "result < 0.01"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrometheusMeasurement is one measurement of the canary
// error-rate query against a real Prometheus on loopback: render-once
// query, HTTP round trip, PromQL evaluation, decoding, condition.
func BenchmarkPrometheusMeasurement(b *testing.B) {
	p := testprom.Start(b)
	ctx := context.Background()
	p.SetErrorRate("eu-1", 0.002)
	if err := p.WaitForScrapes(ctx, 3); err != nil {
		b.Fatal(err)
	}
	a := New(Options{})
	m := v1.Metric{Name: "error-rate", SuccessCondition: "result < 0.01", Provider: v1.MetricProvider{Prometheus: &v1.PrometheusMetric{
		Address: p.URL,
		Query: `sum(rate(http_requests_total{cluster="{{ .Cluster.Name }}",code=~"5.."}[5s]))
  / sum(rate(http_requests_total{cluster="{{ .Cluster.Name }}"}[5s]))`}}}
	ms, err := a.measurerFor(Request{}, m, TemplateData{Cluster: ClusterData{Name: "eu-1"}})
	if err != nil {
		b.Fatal(err)
	}
	cond, err := compileConditions(m)
	if err != nil {
		b.Fatal(err)
	}
	t := &task{metric: m, cond: cond, m: ms}
	for b.Loop() {
		if got := a.measure(ctx, t, 0); got.Phase != v1.MeasurementSuccessful {
			b.Fatalf("measurement %+v", got)
		}
	}
}
