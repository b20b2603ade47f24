package cli

import (
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

func TestRolloutRendering(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	step := 0
	ro := &v1.Rollout{Metadata: v1.ObjectMeta{Name: "web-2"}, Spec: v1.RolloutSpec{Service: "web", Release: "web-2"},
		Status: v1.RolloutStatus{Phase: v1.RolloutProgressing, PreviousRelease: "web-1", Waves: []string{"canary", "eu", "rest"},
			CurrentWave: 1, CurrentWaveName: "eu", StartedAt: &t0,
			Clusters: []v1.RolloutCluster{
				{Name: "a", Wave: "canary", Phase: v1.ClusterRolloutHealthy, Release: "web-2", Health: "Healthy"},
				{Name: "b", Wave: "eu", Phase: v1.ClusterRolloutUpdating, Release: "web-2", Health: "Progressing"},
				{Name: "c", Wave: "rest", Phase: v1.ClusterRolloutPending, Release: "web-1"}},
			Gates: []v1.GateResult{{Wave: "canary", Position: "step", Step: &step, Type: "analysis", Phase: v1.GatePassed}},
			Traffic: []v1.TrafficWeight{{Router: "edge", Cluster: "a", Weight: 10}, {Router: "edge", Cluster: "b", Weight: 45},
				{Router: "edge", Cluster: "c", Weight: 45}}}}
	out := strings.Join(rolloutLines(ro, t0.Add(90*time.Second)), "\n")
	for _, want := range []string{"Rollout web-2: service web, web-1 -> web-2", "Phase: Progressing (1m30s)",
		"Wave canary: 1/1 healthy  done", "Wave eu: 0/1 healthy  <- current", "Wave rest: 0/1 healthy",
		"canary/step 0 analysis Passed", "Traffic (edge): a=10 b=45 c=45"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "Wave canary"), strings.Index(out, "Wave eu"); i > j {
		t.Errorf("waves out of the plan's order:\n%s", out)
	}

	last := summaryLines(ro)
	next := *ro
	next.Status.Clusters = append([]v1.RolloutCluster(nil), ro.Status.Clusters...)
	next.Status.Clusters[1].Phase, next.Status.Clusters[1].Health = v1.ClusterRolloutHealthy, "Healthy"
	if got := changeLines(last, &next); len(got) != 1 || got[0] != "cluster b Healthy release web-2 health Healthy" {
		t.Errorf("plain watch lines after one change = %q; want only that cluster's line", got)
	}

	if watchDone(ro.Status) {
		t.Error("a progressing rollout is done")
	}
	back := v1.RolloutStatus{Phase: v1.RolloutRolledBack, Clusters: []v1.RolloutCluster{{Name: "a", Phase: v1.ClusterRolloutRolledBack}}}
	if watchDone(back) {
		t.Error("a rollback whose clusters are not restored yet is done")
	}
	back.RestoredAt = &t0
	if !watchDone(back) {
		t.Error("a restored rollback is not done")
	}
	if !watchDone(v1.RolloutStatus{Phase: v1.RolloutSucceeded}) {
		t.Error("a succeeded rollout is not done")
	}
}
