package analysis_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/analysis"
)

func webhookSpec(url, path, success string, count int) v1.AnalysisTemplateSpec {
	return v1.AnalysisTemplateSpec{Metrics: []v1.Metric{{Name: "hook", Count: count, Interval: "100ms",
		SuccessCondition: success, Provider: v1.MetricProvider{Webhook: &v1.WebhookMetric{URL: url, JSONPath: path}}}}}
}

func TestWebhookProvider(t *testing.T) {
	var hits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /score/{cluster}", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		score := map[string]string{"eu-1": "0.99", "us-1": "0.42"}[r.PathValue("cluster")]
		if score == "" {
			score = "null"
		}
		fmt.Fprintf(w, `{"data":{"checks":[{"name":"smoke","score":%s,"ok":true}]}}`, score)
	})
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusBadGateway) })
	mux.HandleFunc("GET /html", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") })
	mux.HandleFunc("GET /huge", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"x":"`+strings.Repeat("a", 2<<20)+`"}`)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers: only the client's timeout ends the request
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	const timeout = 3 * time.Second
	a := analysis.New(analysis.Options{Timeout: timeout})
	run := func(spec v1.AnalysisTemplateSpec, clusters ...string) v1.AnalysisRun {
		args := map[string]map[string]string{}
		for _, c := range clusters {
			args[c] = map[string]string{}
		}
		return a.Run(ctx, analysis.Request{ID: "w#0", Template: "hook", Spec: spec, Args: args}, nil)
	}

	t.Run("value at the path, URL per cluster", func(t *testing.T) {
		hits.Store(0)
		r := run(webhookSpec(srv.URL+"/score/{{ .Cluster.Name }}", "$.data.checks[0].score", "result > 0.9", 2), "eu-1")
		if r.Phase != v1.GatePassed || *r.Metrics[0].Measurements[0].Value != 0.99 || hits.Load() != 2 {
			t.Fatalf("phase %s (%s), metrics %+v, %d requests; want Passed with 0.99 from 2 requests", r.Phase, r.Message, r.Metrics, hits.Load())
		}
		r = run(webhookSpec(srv.URL+"/score/{{ .Cluster.Name }}", "$.data.checks[0].score", "result > 0.9", 2), "eu-1", "us-1")
		if r.Phase != v1.GateFailed || !strings.Contains(r.Message, "us-1") {
			t.Fatalf("phase %s (%s), want Failed naming us-1", r.Phase, r.Message)
		}
	})
	t.Run("initialDelay postpones the first measurement", func(t *testing.T) {
		spec := webhookSpec(srv.URL+"/score/eu-1", "$.data.checks[0].score", "result > 0.9", 1)
		spec.Metrics[0].InitialDelay = "700ms"
		start := time.Now()
		r := run(spec, "eu-1")
		if r.Phase != v1.GatePassed {
			t.Fatalf("phase %s (%s), want Passed", r.Phase, r.Message)
		}
		if at := r.Metrics[0].Measurements[0].Time.Sub(start); at < 700*time.Millisecond {
			t.Errorf("first measurement %s after the start, want at least 700ms", at)
		}
	})
	t.Run("progress gets copies that later measurements do not change", func(t *testing.T) {
		var snaps []v1.AnalysisRun
		r := a.Run(ctx, analysis.Request{ID: "p#0", Template: "hook",
			Spec: webhookSpec(srv.URL+"/score/eu-1", "$.data.checks[0].score", "result > 0.9", 3),
			Args: map[string]map[string]string{"eu-1": {}}}, func(r v1.AnalysisRun) { snaps = append(snaps, r) })
		if r.Phase != v1.GatePassed || len(snaps) != 5 {
			t.Fatalf("phase %s, %d progress calls; want Passed and 5 (start, 3 measurements, end)", r.Phase, len(snaps))
		}
		for i, s := range snaps[:4] {
			if n := len(s.Metrics[0].Measurements); n != i {
				t.Errorf("progress call %d holds %d measurements, want %d", i, n, i)
			}
			if s.Phase != v1.GateRunning || s.FinishedAt != nil {
				t.Errorf("progress call %d: phase %s finished %v, want Running", i, s.Phase, s.FinishedAt)
			}
		}
		if last := snaps[4]; last.Phase != v1.GatePassed || last.FinishedAt == nil {
			t.Errorf("last progress call: phase %s finished %v, want the final run", last.Phase, last.FinishedAt)
		}
	})
	t.Run("a whole object", func(t *testing.T) {
		r := run(webhookSpec(srv.URL+"/score/eu-1", "data.checks[0]", "result.ok && result.name == 'smoke'", 1), "eu-1")
		if r.Phase != v1.GatePassed {
			t.Fatalf("phase %s (%s), want Passed", r.Phase, r.Message)
		}
	})
	for name, c := range map[string]struct {
		path, url, want, phase string
	}{
		"null is no data":     {"/score/{{ .Cluster.Name }}", "$.data.checks[0].score", "is null", v1.MeasurementInconclusive},
		"missing path":        {"/score/eu-1", "$.data.nope", "nothing at path", v1.MeasurementInconclusive},
		"wrong shape":         {"/score/eu-1", "$.data.checks.score", "not an object (array)", v1.MeasurementError},
		"status 502":          {"/broken", "", "502 Bad Gateway", v1.MeasurementError},
		"not JSON":            {"/html", "", "not JSON", v1.MeasurementError},
		"body over the limit": {"/huge", "", "larger than 1048576 bytes", v1.MeasurementError},
		"timeout":             {"/slow", "", "deadline exceeded", v1.MeasurementError},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			r := run(webhookSpec(srv.URL+c.path, c.url, "result > 0.9", 1), "zz-1")
			m := r.Metrics[0].Measurements[0]
			if r.Phase != v1.GateInconclusive || m.Phase != c.phase || !strings.Contains(m.Message, c.want) {
				t.Errorf("phase %s, measurement %+v; want Inconclusive, a %s measurement saying %q", r.Phase, m, c.phase, c.want)
			}
			if took := time.Since(start); took > timeout+5*time.Second {
				t.Errorf("took %s; the timeout is %s", took, timeout)
			}
		})
	}
	t.Run("a template error is inconclusive before any request", func(t *testing.T) {
		hits.Store(0)
		r := run(webhookSpec(srv.URL+"/score/{{ .Args.region }}", "", "result > 0.9", 1), "eu-1")
		if r.Phase != v1.GateInconclusive || !strings.Contains(r.Message, "metric hook, cluster eu-1") ||
			!strings.Contains(r.Message, `"region"`) || hits.Load() != 0 || len(r.Metrics) != 0 {
			t.Errorf("phase %s (%s), %d requests; want Inconclusive naming metric, cluster and key, no request", r.Phase, r.Message, hits.Load())
		}
	})
}
