package analysis_test

import (
	"context"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/analysis"
	"flotilla.dev/flotilla/internal/testprom"
)

// errorRateTemplate is the canary template of the design: the share of 5xx
// responses of the cluster over a short window.
func errorRateTemplate(addr string, count, failureLimit int) v1.AnalysisTemplateSpec {
	window := "5s"
	return v1.AnalysisTemplateSpec{
		Args: []v1.AnalysisArg{{Name: "window", Value: &window}},
		Metrics: []v1.Metric{{
			Name: "error-rate", Interval: "1s", Count: count, FailureLimit: failureLimit,
			SuccessCondition: "result < 0.05",
			Provider: v1.MetricProvider{Prometheus: &v1.PrometheusMetric{
				Address: addr,
				Query: `sum(rate(http_requests_total{cluster="{{ .Cluster.Name }}",code=~"5.."}[{{ .Args.window }}]))
  / sum(rate(http_requests_total{cluster="{{ .Cluster.Name }}"}[{{ .Args.window }}]))`,
			}},
		}},
	}
}

func TestPrometheusProvider(t *testing.T) {
	p := testprom.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p.SetErrorRate("good-1", 0)
	p.SetErrorRate("good-2", 0.01)
	p.SetErrorRate("bad-1", 0.3)
	p.SetTraffic("idle-1", 0)
	if err := p.WaitForScrapes(ctx, 6); err != nil {
		t.Fatal(err)
	}
	a := analysis.New(analysis.Options{})

	t.Run("a good metric passes", func(t *testing.T) {
		var calls int
		run := a.Run(ctx, analysis.Request{ID: "g#0", Template: "error-rate", Spec: errorRateTemplate(p.URL, 3, 0),
			Args: map[string]map[string]string{"good-1": {}, "good-2": {}}}, func(v1.AnalysisRun) { calls++ })
		if run.Phase != v1.GatePassed {
			t.Fatalf("phase = %s (%s), want Passed", run.Phase, run.Message)
		}
		if len(run.Metrics) != 2 {
			t.Fatalf("%d metric results, want 2 (one per cluster)", len(run.Metrics))
		}
		for _, mr := range run.Metrics {
			if mr.Phase != v1.GatePassed || len(mr.Measurements) != 3 {
				t.Errorf("%s on %s: %s with %d measurements, want Passed with 3", mr.Name, mr.Cluster, mr.Phase, len(mr.Measurements))
			}
			if mr.Threshold == nil || *mr.Threshold != 0.05 || mr.Condition != "result < 0.05" {
				t.Errorf("%s: condition %q threshold %v, want result < 0.05 and 0.05", mr.Cluster, mr.Condition, mr.Threshold)
			}
			want := map[string]float64{"good-1": 0, "good-2": 0.01}[mr.Cluster]
			for _, m := range mr.Measurements {
				if m.Value == nil || math.Abs(*m.Value-want) > 0.005 || m.Phase != v1.MeasurementSuccessful {
					t.Errorf("%s: measurement %+v, want Successful near %v", mr.Cluster, m, want)
				}
			}
		}
		if calls != 1+6+1 {
			t.Errorf("progress called %d times, want 8 (start, each of 6 measurements, end)", calls)
		}
		if run.StartedAt == nil || run.FinishedAt == nil || run.FinishedAt.Before(run.StartedAt.Add(2*time.Second)) {
			t.Errorf("started %v finished %v: want 3 measurements 1s apart to take at least 2s", run.StartedAt, run.FinishedAt)
		}
	})

	t.Run("a raised error rate fails after failureLimit+1 measurements", func(t *testing.T) {
		run := a.Run(ctx, analysis.Request{ID: "b#0", Template: "error-rate", Spec: errorRateTemplate(p.URL, 5, 1),
			Args: map[string]map[string]string{"bad-1": {}, "good-1": {}}}, nil)
		if run.Phase != v1.GateFailed {
			t.Fatalf("phase = %s (%s), want Failed", run.Phase, run.Message)
		}
		if !strings.Contains(run.Message, "bad-1") || !strings.Contains(run.Message, "failureLimit 1") {
			t.Errorf("message %q should name the cluster and the limit", run.Message)
		}
		goodMeasured := -1
		for _, mr := range run.Metrics {
			if mr.Cluster == "bad-1" {
				if mr.Phase != v1.GateFailed || len(mr.Measurements) != 2 {
					t.Errorf("bad-1: %s after %d measurements, want Failed after 2", mr.Phase, len(mr.Measurements))
				}
				for _, m := range mr.Measurements {
					if m.Value == nil || math.Abs(*m.Value-0.3) > 0.02 || !strings.Contains(m.Message, "is false") {
						t.Errorf("bad-1 measurement %+v: want value near 0.3 and the failed condition", m)
					}
				}
			}
			if mr.Cluster == "good-1" {
				goodMeasured = len(mr.Measurements)
				if mr.Phase == v1.GateFailed {
					t.Errorf("good-1 failed: %+v", mr)
				}
			}
		}
		// good-1 never fails, so only the end of the run stops it short of its 5 measurements.
		if goodMeasured < 0 || goodMeasured >= 5 {
			t.Errorf("good-1 took %d measurements; the run should end once bad-1 failed (about 1s), not after all 5", goodMeasured)
		}
	})

	t.Run("an empty result is inconclusive", func(t *testing.T) {
		spec := errorRateTemplate(p.URL, 3, 0)
		run := a.Run(ctx, analysis.Request{ID: "e#0", Template: "error-rate", Spec: spec,
			Args: map[string]map[string]string{"nowhere": {}}}, nil)
		if run.Phase != v1.GateInconclusive || !strings.Contains(run.Message, "no samples") {
			t.Fatalf("phase = %s (%s), want Inconclusive saying no samples", run.Phase, run.Message)
		}
		if n := len(run.Metrics[0].Measurements); n != 1 {
			t.Errorf("%d measurements, want 1 (inconclusiveLimit 0)", n)
		}
	})

	t.Run("no traffic (0/0) is inconclusive, not failed", func(t *testing.T) {
		run := a.Run(ctx, analysis.Request{ID: "i#0", Template: "error-rate", Spec: errorRateTemplate(p.URL, 1, 0),
			Args: map[string]map[string]string{"idle-1": {}}}, nil)
		if run.Phase != v1.GateInconclusive || !strings.Contains(run.Message, "NaN") {
			t.Fatalf("phase = %s (%s), want Inconclusive saying NaN", run.Phase, run.Message)
		}
	})

	t.Run("several samples are a list", func(t *testing.T) {
		spec := v1.AnalysisTemplateSpec{Metrics: []v1.Metric{{Name: "per-code", Count: 1,
			SuccessCondition: "size(result) == 2 && result.exists(x, x > 0)",
			Provider: v1.MetricProvider{Prometheus: &v1.PrometheusMetric{Address: p.URL,
				Query: `http_requests_total{cluster="{{ .Cluster.Name }}"}`}}}}}
		run := a.Run(ctx, analysis.Request{ID: "l#0", Template: "per-code", Spec: spec,
			Args: map[string]map[string]string{"bad-1": {}}}, nil)
		if run.Phase != v1.GatePassed {
			t.Fatalf("phase = %s (%s), want Passed", run.Phase, run.Message)
		}
		if m := run.Metrics[0].Measurements[0]; m.Value != nil || !strings.HasPrefix(m.Raw, "[") {
			t.Errorf("measurement %+v: want no single value and a JSON list", m)
		}
	})

	t.Run("an unreachable Prometheus is an error, counted as inconclusive", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := "http://" + l.Addr().String()
		l.Close()
		run := a.Run(ctx, analysis.Request{ID: "u#0", Template: "error-rate", Spec: errorRateTemplate(addr, 1, 0),
			Args: map[string]map[string]string{"good-1": {}}}, nil)
		m := run.Metrics[0].Measurements[0]
		if run.Phase != v1.GateInconclusive || m.Phase != v1.MeasurementError || !strings.Contains(m.Message, "connection refused") {
			t.Fatalf("phase %s, measurement %+v: want Inconclusive with an Error measurement saying connection refused", run.Phase, m)
		}
	})

	t.Run("a cancelled run returns promptly as Running", func(t *testing.T) {
		spec := errorRateTemplate(p.URL, 10, 0)
		spec.Metrics[0].Interval = "30s"
		rctx, rcancel := context.WithCancel(ctx)
		var first time.Time
		done := make(chan v1.AnalysisRun)
		go func() {
			done <- a.Run(rctx, analysis.Request{ID: "c#0", Template: "error-rate", Spec: spec,
				Args: map[string]map[string]string{"good-1": {}}}, func(r v1.AnalysisRun) {
				if len(r.Metrics) > 0 && len(r.Metrics[0].Measurements) == 1 && first.IsZero() {
					first = time.Now()
					rcancel()
				}
			})
		}()
		select {
		case run := <-done:
			if run.Phase != v1.GateRunning || run.FinishedAt != nil {
				t.Errorf("phase %s finished %v, want Running and unfinished", run.Phase, run.FinishedAt)
			}
			if d := time.Since(first); d > 5*time.Second {
				t.Errorf("returned %s after cancel, want promptly (well before the 30s interval)", d)
			}
		case <-time.After(10 * time.Second):
			rcancel()
			t.Fatal("Run did not return within 10s of cancel")
		}
	})
}
