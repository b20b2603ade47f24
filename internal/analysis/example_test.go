package analysis_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/analysis"
)

// A template with one webhook metric, measured twice on two clusters: the
// URL is rendered per cluster, the value taken at a JSON path and judged by
// a CEL condition. One failure is allowed (failureLimit 1), so us-1 fails
// on its second measurement and that ends the run.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rate := map[string]string{"/eu-1": "0.001", "/us-1": "0.2"}[r.URL.Path]
		fmt.Fprintf(w, `{"errors": {"rate": %s}}`, rate)
	}))
	defer srv.Close()

	spec := v1.AnalysisTemplateSpec{Metrics: []v1.Metric{{
		Name: "error-rate", Count: 2, Interval: "10ms", FailureLimit: 1,
		SuccessCondition: "result < 0.01",
		Provider: v1.MetricProvider{Webhook: &v1.WebhookMetric{
			URL: srv.URL + "/{{ .Cluster.Name }}", JSONPath: "$.errors.rate"}},
	}}}
	a := analysis.New(analysis.Options{})
	run := a.Run(context.Background(), analysis.Request{ID: "canary#0", Template: "error-rate", Spec: spec,
		Args: map[string]map[string]string{"eu-1": {}, "us-1": {}}}, nil)

	fmt.Println(run.Phase)
	fmt.Println(run.Message)
	for _, mr := range run.Metrics {
		if mr.Cluster == "us-1" {
			fmt.Println(mr.Cluster, mr.Phase, *mr.Threshold, mr.Measurements[0].Phase, *mr.Measurements[0].Value)
		}
	}
	// Output:
	// Failed
	// metric error-rate on cluster us-1: 2 of 2 measurements failed (failureLimit 1); last: result 0.2: successCondition result < 0.01 is false
	// us-1 Failed 0.01 Failed 0.2
}
