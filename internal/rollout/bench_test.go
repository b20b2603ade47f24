package rollout

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// benchFleet is 1,000 clusters in four rings of 10, 90, 300 and 600.
func benchFleet(b *testing.B) Plan {
	b.Helper()
	clusters := make([]ClusterInfo, 1000)
	for i := range clusters {
		ring := "3"
		switch {
		case i < 10:
			ring = "0"
		case i < 100:
			ring = "1"
		case i < 400:
			ring = "2"
		}
		clusters[i] = ClusterInfo{Name: fmt.Sprintf("cluster-%04d", i), Labels: map[string]string{"ring": ring},
			Release: "r1", Weight: 1}
	}
	wave := func(name, ring string, gates []v1.Gate) v1.Wave {
		sel := &v1.LabelSelector{MatchLabels: map[string]string{"ring": ring}}
		return v1.Wave{Name: name, Clusters: sel, MaxParallel: "25%", MaxFailures: 5, Drain: true, After: gates}
	}
	spec := v1.RolloutStrategySpec{Type: v1.StrategyRolling, TrafficRouter: "edge", Waves: []v1.Wave{
		wave("canary", "0", []v1.Gate{{Bake: "5m"}, {Analysis: &v1.AnalysisRef{Template: "error-rate",
			Args: map[string]string{"cluster": "{{ .Cluster.Name }}"}}}}),
		wave("early", "1", []v1.Gate{{Approval: &v1.ApprovalGate{Roles: []string{"sre"}}}}),
		wave("main", "2", nil),
		wave("rest", "3", []v1.Gate{{Bake: "10m"}}),
	}}
	p, err := NewPlan(spec, clusters)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// simRollout is one rollout and the simulated world around it: agents
// report Healthy for every assignment, analyses succeed, an SRE approves,
// timers fire.
type simRollout struct {
	s       State
	now     time.Time
	healthy []string
	timers  []time.Time
}

func (r *simRollout) next() Event {
	switch {
	case r.s.Phase == v1.RolloutPending:
		return Start{}
	case len(r.healthy) > 0:
		c := r.healthy[0]
		r.healthy = r.healthy[1:]
		return ClusterStatus{Cluster: c, Release: r.s.Release, Health: HealthHealthy}
	case r.s.AnalysisID != "":
		return AnalysisResult{ID: r.s.AnalysisID, Result: AnalysisSuccessful}
	case r.s.Phase == v1.RolloutWaitingApproval:
		return Approval{User: "alice", Roles: []string{"sre"}}
	}
	for len(r.timers) > 0 && !r.timers[0].After(r.now) {
		r.timers = r.timers[1:]
	}
	if len(r.timers) > 0 {
		r.now = r.timers[0]
		r.timers = r.timers[1:]
	}
	return Tick{}
}

func (r *simRollout) absorb(acts []Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case Assign:
			r.healthy = append(r.healthy, a.Clusters...)
		case SetTimer:
			r.timers = append(r.timers, a.At)
		}
	}
}

// BenchmarkStep measures transitions over 1,000 rollouts of 1,000 clusters
// each (1,000,000 cluster states in memory), fed round-robin with the
// events of a complete rollout (start, 1,000 healthy reports, gates,
// timers: about 1,300 transitions each); rollouts=1 is the same with one
// rollout whose state stays in the CPU caches.
func BenchmarkStep(b *testing.B) {
	for _, n := range []int{1000, 1} {
		b.Run(fmt.Sprintf("rollouts=%d", n), func(b *testing.B) { benchSteps(b, n) })
	}
}

func benchSteps(b *testing.B, rollouts int) {
	p := benchFleet(b)
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	sims := make([]simRollout, rollouts)
	for i := range sims {
		sims[i] = simRollout{s: NewState(p, "web", "r2"), now: start}
	}
	finished := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := &sims[i%rollouts]
		if r.s.Finished() {
			b.StopTimer()
			finished++
			*r = simRollout{s: NewState(p, "web", "r2"), now: start}
			b.StartTimer()
		}
		r.now = r.now.Add(time.Second)
		s, acts, err := Step(r.s, r.next(), r.now)
		if err != nil {
			b.Fatal(err)
		}
		r.s = s
		r.absorb(acts)
	}
	b.ReportMetric(float64(finished), "rollouts-done")
}

// BenchmarkStateJSON measures encoding one 1,000-cluster state, as the
// runner does to persist each transition.
func BenchmarkStateJSON(b *testing.B) {
	p := benchFleet(b)
	r := simRollout{s: NewState(p, "web", "r2"), now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	for range 500 {
		s, acts, err := Step(r.s, r.next(), r.now)
		if err != nil {
			b.Fatal(err)
		}
		r.s = s
		r.absorb(acts)
	}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		out, err := json.Marshal(r.s)
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(float64(size), "bytes/state")
}
