package rollout

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
)

func TestStatus(t *testing.T) {
	spec := v1.RolloutStrategySpec{Type: v1.StrategyCanary, TrafficRouter: "edge", Waves: []v1.Wave{
		{Name: "canary", Clusters: &v1.LabelSelector{MatchLabels: map[string]string{"ring": "canary"}},
			Steps: []v1.CanaryStep{{Weight: 20, Analysis: []v1.AnalysisRef{{Template: "error-rate"}}}}},
		{Name: "rest", Clusters: &v1.LabelSelector{}},
	}}
	p, err := NewPlan(spec, []ClusterInfo{
		{Name: "c", Labels: map[string]string{"ring": "canary"}, Release: "r1", Weight: 50},
		{Name: "p", Release: "r1", Weight: 50},
		{Name: "q", Release: "r0", Weight: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s := NewState(p, "web", "r2")
	for i, ev := range []Event{Start{}, ClusterStatus{Cluster: "c", Release: "r2", Health: HealthHealthy}} {
		if s, _, err = Step(s, ev, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	got := s.Status()
	if err := (&v1.Rollout{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRollout},
		Metadata: v1.ObjectMeta{Name: "web-r2"}, Spec: v1.RolloutSpec{Service: "web", Release: "r2"},
		Status: got}).Validate(); err != nil {
		t.Errorf("status does not validate: %v", err)
	}
	step := 0
	want := v1.RolloutStatus{
		Phase: v1.RolloutProgressing, PreviousRelease: "r1", Waves: []string{"canary", "rest"}, CurrentWave: 0, CurrentWaveName: "canary", CurrentStep: 0,
		StartedAt: &t0,
		Clusters: []v1.RolloutCluster{
			{Name: "c", Wave: "canary", Phase: v1.ClusterRolloutHealthy, Release: "r2", Health: HealthHealthy},
			{Name: "p", Wave: "rest", Phase: v1.ClusterRolloutPending, Release: "r1"},
			{Name: "q", Wave: "rest", Phase: v1.ClusterRolloutPending, Release: "r0"},
		},
		Gates: []v1.GateResult{{Wave: "canary", Position: "step", Step: &step, Index: 0, Type: GateAnalysis,
			Phase: v1.GateRunning, Message: "canary/step0/0#1", StartedAt: ptr(t0.Add(time.Minute))}},
		Traffic: []v1.TrafficWeight{{Router: "edge", Cluster: "c", Weight: 20}, {Router: "edge", Cluster: "p", Weight: 40},
			{Router: "edge", Cluster: "q", Weight: 40}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func ptr[T any](v T) *T { return &v }
