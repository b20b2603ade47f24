package rollout_test

import (
	"fmt"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/rollout"
)

// A runner's loop in miniature: plan, start, feed agent reports, carry out
// the actions.
func Example() {
	strategy := v1.RolloutStrategySpec{Waves: []v1.Wave{
		{Name: "canary", Clusters: &v1.LabelSelector{MatchLabels: map[string]string{"ring": "canary"}}},
		{Name: "rest", Clusters: &v1.LabelSelector{}, MaxParallel: "50%"},
	}}
	clusters := []rollout.ClusterInfo{
		{Name: "c1", Labels: map[string]string{"ring": "canary"}, Release: "r1"},
		{Name: "p1", Release: "r1"}, {Name: "p2", Release: "r1"},
	}
	plan, err := rollout.NewPlan(strategy, clusters)
	if err != nil {
		fmt.Println(err)
		return
	}
	s := rollout.NewState(plan, "web", "r2")
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, ev := range []rollout.Event{
		rollout.Start{},
		rollout.ClusterStatus{Cluster: "c1", Release: "r2", Health: rollout.HealthHealthy},
		rollout.ClusterStatus{Cluster: "p1", Release: "r2", Health: rollout.HealthHealthy},
		rollout.ClusterStatus{Cluster: "p2", Release: "r2", Health: rollout.HealthHealthy},
	} {
		now = now.Add(time.Minute)
		var acts []rollout.Action
		s, acts, err = rollout.Step(s, ev, now)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, a := range acts {
			if _, ok := a.(rollout.SetTimer); !ok {
				fmt.Println(a)
			}
		}
	}
	fmt.Println(s.Phase)
	// Output:
	// notify rollout of r2 to 3 clusters started
	// assign r2 c1
	// assign r2 p1
	// assign r2 p2
	// notify rollout of r2 ended Succeeded: release r2 reached every wave
	// Succeeded
}
