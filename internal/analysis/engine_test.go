package analysis_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/analysis"
	"flotilla.dev/flotilla/internal/rollout"
)

// TestArgumentsFromTheRolloutEngine feeds the arguments the rollout
// engine renders for an analysis gate (StartAnalysis.Args) to the
// analyzer, as the runner does, and checks what reaches the provider per
// cluster: the strategy's args rendered over each cluster's labels, the
// template's default, and the template's own .Cluster data.
func TestArgumentsFromTheRolloutEngine(t *testing.T) {
	strategy := v1.RolloutStrategySpec{Waves: []v1.Wave{{
		Name: "canary", Clusters: &v1.LabelSelector{MatchLabels: map[string]string{"ring": "canary"}},
		After: []v1.Gate{{Analysis: &v1.AnalysisRef{Template: "score",
			Args: map[string]string{"region": "{{ .Cluster.Labels.region }}", "svc": "{{ .Service }}-{{ .Release }}"}}}},
	}}}
	plan, err := rollout.NewPlan(strategy, []rollout.ClusterInfo{
		{Name: "c-eu", Labels: map[string]string{"ring": "canary", "region": "eu"}, Release: "r1"},
		{Name: "c-us", Labels: map[string]string{"ring": "canary", "region": "us"}, Release: "r1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := rollout.NewState(plan, "web", "r2")
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	var start *rollout.StartAnalysis
	for _, ev := range []rollout.Event{rollout.Start{},
		rollout.ClusterStatus{Cluster: "c-eu", Release: "r2", Health: rollout.HealthHealthy},
		rollout.ClusterStatus{Cluster: "c-us", Release: "r2", Health: rollout.HealthHealthy}} {
		now = now.Add(time.Second)
		var acts []rollout.Action
		if s, acts, err = rollout.Step(s, ev, now); err != nil {
			t.Fatal(err)
		}
		for _, a := range acts {
			if sa, ok := a.(rollout.StartAnalysis); ok {
				start = &sa
			}
		}
	}
	if start == nil {
		t.Fatal("the engine started no analysis")
	}

	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Write([]byte(`{"ok": true}`))
	}))
	defer srv.Close()
	window := "5m"
	spec := v1.AnalysisTemplateSpec{
		Args: []v1.AnalysisArg{{Name: "region"}, {Name: "svc"}, {Name: "window", Value: &window}},
		Metrics: []v1.Metric{{Name: "score", Count: 1, SuccessCondition: "result",
			Provider: v1.MetricProvider{Webhook: &v1.WebhookMetric{
				URL:      srv.URL + "/{{ .Args.svc }}/{{ .Args.region }}/{{ .Args.window }}/{{ .Cluster.Name }}",
				JSONPath: "ok"}}}},
	}
	run := analysis.New(analysis.Options{}).Run(context.Background(), analysis.Request{ID: start.ID, Template: start.Template,
		Spec: spec, Args: start.Args, Service: "web", Release: "r2", Rollout: "r2"}, nil)
	if run.Phase != v1.GatePassed {
		t.Fatalf("phase %s (%s), want Passed", run.Phase, run.Message)
	}
	slices.Sort(paths)
	want := []string{"/web-r2/eu/5m/c-eu", "/web-r2/us/5m/c-us"}
	if d := cmp.Diff(want, paths); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"c-eu", "c-us"}, run.Clusters); d != "" {
		t.Errorf("run clusters (-want +got):\n%s", d)
	}
}
