package analysis_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/analysis"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/sqlite"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "flotilla.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// report records what an agent would post for one cluster.
func report(t *testing.T, st store.Store, cluster string, seq int64, at time.Time, services ...v1.ServiceReport) {
	t.Helper()
	rep := v1.AgentStatusReport{Seq: seq, Health: v1.HealthHealthy, Services: services}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordAgentStatus(context.Background(), store.AgentStatus{Cluster: cluster, Seq: seq,
		Health: rep.Health, Report: raw, LastHeartbeat: at}); err != nil {
		t.Fatal(err)
	}
}

func TestHealthProvider(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	now := time.Now()
	report(t, st, "healthy-1", 1, now, v1.ServiceReport{Service: "web", Release: "web-2", Health: v1.HealthHealthy},
		v1.ServiceReport{Service: "db", Release: "db-1", Health: v1.HealthFailed})
	report(t, st, "failed-1", 1, now, v1.ServiceReport{Service: "web", Release: "web-2", Health: v1.HealthFailed})
	report(t, st, "degraded-1", 1, now, v1.ServiceReport{Service: "web", Release: "web-2", Health: v1.HealthDegraded})
	report(t, st, "progressing-1", 1, now, v1.ServiceReport{Service: "web", Release: "web-2", Health: v1.HealthProgressing})
	report(t, st, "old-release-1", 1, now, v1.ServiceReport{Service: "web", Release: "web-1", Health: v1.HealthHealthy})
	report(t, st, "unknown-1", 1, now, v1.ServiceReport{Service: "web", Release: "web-2", Health: v1.HealthUnknown})
	report(t, st, "stale-1", 1, now.Add(-10*time.Minute), v1.ServiceReport{Service: "web", Release: "web-2", Health: v1.HealthHealthy})
	report(t, st, "other-1", 1, now, v1.ServiceReport{Service: "db", Release: "db-1", Health: v1.HealthHealthy})

	a := analysis.New(analysis.Options{Store: st})
	spec := v1.AnalysisTemplateSpec{Metrics: []v1.Metric{{Name: "health", Count: 1,
		Provider: v1.MetricProvider{Health: &v1.HealthMetric{}}}}}
	for cluster, want := range map[string]struct {
		phase   v1.GatePhase
		measure string
		value   float64
		message string
	}{
		"healthy-1":     {v1.GatePassed, v1.MeasurementSuccessful, 1, "Healthy"},
		"failed-1":      {v1.GateFailed, v1.MeasurementFailed, 0, "failureCondition result == 0.0 is true (Failed)"},
		"degraded-1":    {v1.GateFailed, v1.MeasurementFailed, 0, "is true"},
		"progressing-1": {v1.GateInconclusive, v1.MeasurementInconclusive, 0.5, "neither condition"},
		"old-release-1": {v1.GateInconclusive, v1.MeasurementInconclusive, -1, `runs release "web-1" of web, not "web-2"`},
		"unknown-1":     {v1.GateInconclusive, v1.MeasurementInconclusive, -1, "is Unknown"},
		"stale-1":       {v1.GateInconclusive, v1.MeasurementInconclusive, -1, "last reported 10m0s ago"},
		"other-1":       {v1.GateInconclusive, v1.MeasurementInconclusive, -1, "does not report service web"},
		"silent-1":      {v1.GateInconclusive, v1.MeasurementInconclusive, -1, "no agent report from cluster silent-1"},
	} {
		t.Run(cluster, func(t *testing.T) {
			run := a.Run(ctx, analysis.Request{ID: "h#0", Template: "health", Spec: spec, Service: "web", Release: "web-2",
				Args: map[string]map[string]string{cluster: {}}}, nil)
			m := run.Metrics[0].Measurements[0]
			if run.Phase != want.phase || m.Phase != want.measure || !strings.Contains(m.Message, want.message) {
				t.Errorf("run %s, measurement %+v; want %s, %s saying %q", run.Phase, m, want.phase, want.measure, want.message)
			}
			if want.value >= 0 && (m.Value == nil || *m.Value != want.value) {
				t.Errorf("value %v, want %v", m.Value, want.value)
			}
		})
	}

	t.Run("a recovery shows in the next measurement", func(t *testing.T) {
		spec := v1.AnalysisTemplateSpec{Metrics: []v1.Metric{{Name: "health", Count: 3, Interval: "200ms", InconclusiveLimit: 2,
			Provider: v1.MetricProvider{Health: &v1.HealthMetric{}}}}}
		seq := int64(2)
		run := a.Run(ctx, analysis.Request{ID: "h#1", Template: "health", Spec: spec, Service: "web", Release: "web-2",
			Args: map[string]map[string]string{"progressing-1": {}}}, func(r v1.AnalysisRun) {
			if len(r.Metrics) == 1 && len(r.Metrics[0].Measurements) == 1 && seq == 2 {
				report(t, st, "progressing-1", seq, time.Now(), v1.ServiceReport{Service: "web", Release: "web-2", Health: v1.HealthHealthy})
				seq++
			}
		})
		ph := []string{}
		for _, m := range run.Metrics[0].Measurements {
			ph = append(ph, m.Phase)
		}
		if run.Phase != v1.GatePassed || strings.Join(ph, ",") != "Inconclusive,Successful,Successful" {
			t.Errorf("run %s with measurements %v, want Passed after Inconclusive,Successful,Successful", run.Phase, ph)
		}
	})
}
