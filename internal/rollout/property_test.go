package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
)

// randomPlan builds a rolling or canary plan over n clusters spread over up
// to four waves, with random limits and gates.
func randomPlan(t *testing.T, rng *rand.Rand) Plan {
	t.Helper()
	nWaves := 1 + rng.IntN(4)
	canary := rng.IntN(3) == 0
	spec := v1.RolloutStrategySpec{Type: v1.StrategyRolling, TrafficRouter: "edge"}
	if rng.IntN(2) == 0 {
		spec.OnFailure = v1.OnFailurePause
	}
	if canary {
		spec.Type = v1.StrategyCanary
	}
	gate := func() []v1.Gate {
		switch rng.IntN(5) {
		case 0:
			return []v1.Gate{{Bake: "5m"}}
		case 1:
			return []v1.Gate{{Analysis: &v1.AnalysisRef{Template: "error-rate"}}}
		case 2:
			return []v1.Gate{{Approval: &v1.ApprovalGate{Roles: []string{"sre"}}}}
		}
		return nil
	}
	for i := range nWaves {
		w := v1.Wave{Name: fmt.Sprintf("w%d", i), MaxFailures: rng.IntN(2), Drain: rng.IntN(2) == 0,
			ProgressDeadline: "10m", Before: gate(), After: gate()}
		w.Clusters = &v1.LabelSelector{MatchLabels: map[string]string{"ring": fmt.Sprint(i)}}
		if i == nWaves-1 {
			w.Clusters = &v1.LabelSelector{}
		}
		if rng.IntN(2) == 0 {
			w.MaxParallel = v1.IntOrPercent(fmt.Sprint(1 + rng.IntN(3)))
		} else {
			w.MaxParallel = v1.IntOrPercent(fmt.Sprintf("%d%%", 10+rng.IntN(60)))
		}
		if canary && i == 0 {
			w.Steps = []v1.CanaryStep{{Weight: 10, Analysis: []v1.AnalysisRef{{Template: "error-rate"}}, Bake: "2m"}, {Weight: 50}}
		}
		spec.Waves = append(spec.Waves, w)
	}
	n := 2 + rng.IntN(10)
	clusters := make([]ClusterInfo, n)
	for i := range clusters {
		ring := rng.IntN(nWaves + 1)
		if canary && i == 0 {
			ring = 0
		}
		clusters[i] = ClusterInfo{Name: fmt.Sprintf("c%02d", i), Labels: map[string]string{"ring": fmt.Sprint(ring)},
			Release: "r1", Weight: 100 / n, Capacity: []int{0, 100, 60, 40}[rng.IntN(4)]}
	}
	p, err := NewPlan(spec, clusters)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

func randomEvent(rng *rand.Rand, s State) Event {
	c := s.Clusters[rng.IntN(len(s.Clusters))].Name
	if s.Wave >= 0 && s.Wave < len(s.Plan.Waves) && rng.IntN(4) != 0 {
		// mostly news about the clusters that are moving
		for _, n := range s.Plan.Waves[s.Wave].Clusters {
			if cs, _ := s.Cluster(n); cs.Phase == v1.ClusterRolloutUpdating {
				c = n
				break
			}
		}
	}
	rel := "r2"
	if rng.IntN(10) == 0 {
		rel = "r1"
	}
	switch k := rng.IntN(1000); {
	case k < 500:
		h := HealthHealthy
		switch x := rng.IntN(100); {
		case x < 4:
			h = HealthFailed
		case x < 12:
			h = HealthDegraded
		case x < 20:
			h = HealthProgressing
		case x < 28:
			h = HealthUnknown
		}
		return ClusterStatus{Cluster: c, Release: rel, Health: h}
	case k < 640:
		id := s.AnalysisID
		if rng.IntN(10) == 0 {
			id = "nope"
		}
		r := AnalysisSuccessful
		switch x := rng.IntN(100); {
		case x < 5:
			r = AnalysisFailed
		case x < 10:
			r = AnalysisInconclusive
		}
		return AnalysisResult{ID: id, Result: r}
	case k < 740:
		role := "sre"
		if rng.IntN(3) == 0 {
			role = "developer"
		}
		return Approval{User: "u", Roles: []string{role}}
	case k < 860:
		return Tick{}
	case k < 890:
		return Promote{}
	case k < 910:
		return Pause{}
	case k < 960:
		return Resume{}
	case k < 985:
		return Retry{}
	case k < 988:
		return Abort{}
	case k < 991:
		return Rollback{}
	case k < 994:
		return Superseded{By: "r3"}
	case k < 997:
		return ClusterStatus{Cluster: "ghost", Release: "r2", Health: HealthHealthy}
	}
	return Start{}
}

// TestRandomSequences drives random plans with random events and checks
// the engine's invariants after every transition.
func TestRandomSequences(t *testing.T) {
	runs := 400
	if testing.Short() {
		runs = 50
	}
	for seed := range uint64(runs) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			first := randomRun(t, seed)
			if again := randomRun(t, seed); again != first {
				t.Fatalf("seed %d: same events gave a different transcript:\n%s", seed, cmp.Diff(first, again))
			}
		})
	}
}

func randomRun(t *testing.T, seed uint64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	p := randomPlan(t, rng)
	s := NewState(p, "web", "r2")
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var transcript strings.Builder
	maxWave, afterEnd := -1, 0
	for i := 0; i < 300; i++ {
		now = now.Add(time.Duration(rng.IntN(240)) * time.Second)
		ev := randomEvent(rng, s)
		if i == 0 {
			ev = Start{}
		}
		if s.Finished() {
			if afterEnd++; afterEnd > 8 {
				break
			}
		}
		before := s.Clone()
		wasFinished, wasRestoring := s.Finished(), s.Restoring()
		next, acts, err := Step(s, ev, now)
		fmt.Fprintf(&transcript, "%s %s -> %v %v\n", now.Format(time.TimeOnly), ev, acts, err)
		if err != nil {
			if !reflect.DeepEqual(before, next) {
				t.Fatalf("step %d %s: error %v changed the state:\n%s", i, ev, err, cmp.Diff(before, next))
			}
			if len(acts) > 0 {
				t.Fatalf("step %d %s: error %v with actions %v", i, ev, err, acts)
			}
			if _, status := ev.(ClusterStatus); wasFinished && !(wasRestoring && status) && !errors.Is(err, ErrFinished) {
				t.Fatalf("step %d %s: finished rollout answered %v, want ErrFinished", i, ev, err)
			}
			continue
		}
		if wasFinished {
			// Only a restoring rollback takes statuses, and only to give a
			// cluster back on its release its weight.
			e, status := ev.(ClusterStatus)
			if !wasRestoring || !status {
				t.Fatalf("step %d %s: finished rollout (%s) accepted a transition", i, ev, before.Phase)
			}
			for _, a := range acts {
				switch a.(type) {
				case SetTraffic, Notify:
				default:
					t.Fatalf("step %d %s: restoring rollout asked for %s", i, ev, a)
				}
			}
			for k, c := range next.Clusters {
				if b := before.Clusters[k]; b.Drained && !c.Drained &&
					(c.Name != e.Cluster || e.Release != c.Release || (e.Health != HealthHealthy && c.Release != "")) {
					t.Fatalf("step %d %s: %s got its weight back before it was healthy on %s", i, ev, c.Name, c.Release)
				}
			}
		}
		if _, promote := ev.(Promote); !(promote && before.Capacity == CapacityWait) && drainAssigned(before, next, acts) {
			checkCapacity(t, i, ev, next)
		}
		s = next
		for _, a := range acts {
			as, ok := a.(Assign)
			if !ok || as.Release != s.Release {
				continue
			}
			for _, name := range as.Clusters {
				c, _ := s.Cluster(name)
				if c.Wave < maxWave {
					t.Fatalf("step %d %s: assigned %s of wave %d after wave %d started", i, ev, name, c.Wave, maxWave)
				}
				maxWave = max(maxWave, c.Wave)
				for _, o := range s.Clusters {
					if o.Wave < c.Wave && o.Phase != v1.ClusterRolloutHealthy && o.Phase != v1.ClusterRolloutFailed {
						t.Fatalf("step %d %s: assigned %s of wave %d while %s of wave %d is %s",
							i, ev, name, c.Wave, o.Name, o.Wave, o.Phase)
					}
				}
			}
		}
		checkInvariants(t, i, ev, s)
		if i%29 == 0 {
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var back State
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(s, back); diff != "" {
				t.Fatalf("step %d: state changed through JSON:\n%s", i, diff)
			}
		}
	}
	return transcript.String()
}

func checkInvariants(t *testing.T, i int, ev Event, s State) {
	t.Helper()
	for _, c := range s.Clusters {
		if c.Weight < 0 || c.Weight > 100 {
			t.Fatalf("step %d %s: %s has weight %d", i, ev, c.Name, c.Weight)
		}
		if !c.Touched && c.Release != c.Previous {
			t.Fatalf("step %d %s: untouched %s runs %s, had %s", i, ev, c.Name, c.Release, c.Previous)
		}
	}
	switch s.Phase {
	case v1.RolloutRolledBack, v1.RolloutAborted:
		for _, c := range s.Clusters {
			if c.Touched && (c.Release != c.Previous || c.Phase != v1.ClusterRolloutRolledBack) {
				t.Fatalf("step %d %s: %s: touched %s is %s on %s, want RolledBack on %s", i, ev, s.Phase, c.Name, c.Phase, c.Release, c.Previous)
			}
			switch {
			case c.Drained && (!c.Touched || c.Weight != 0):
				t.Fatalf("step %d %s: %s: %s drained (touched %v) at weight %d", i, ev, s.Phase, c.Name, c.Touched, c.Weight)
			case !c.Drained && c.Weight != c.BaseWeight:
				t.Fatalf("step %d %s: %s: %s weight %d, want %d restored", i, ev, s.Phase, c.Name, c.Weight, c.BaseWeight)
			}
		}
	case v1.RolloutSucceeded:
		for _, c := range s.Clusters {
			if c.Phase != v1.ClusterRolloutHealthy && c.Phase != v1.ClusterRolloutFailed {
				t.Fatalf("step %d %s: succeeded with %s %s", i, ev, c.Name, c.Phase)
			}
		}
	}
	if s.Finished() || s.Wave < 0 {
		return
	}
	var got WaveProgress
	w := s.Plan.Waves[s.Wave]
	for k, n := range w.Clusters {
		c, _ := s.Cluster(n)
		switch c.Phase {
		case v1.ClusterRolloutUpdating:
			got.Updating++
		case v1.ClusterRolloutHealthy:
			got.Healthy++
		case v1.ClusterRolloutFailed:
			got.Failed++
		case v1.ClusterRolloutPending:
			if k < s.Progress.Next {
				t.Fatalf("step %d %s: %s pending behind next %d", i, ev, n, s.Progress.Next)
			}
		}
	}
	if got.Updating != s.Progress.Updating || got.Healthy != s.Progress.Healthy || got.Failed != s.Progress.Failed {
		t.Fatalf("step %d %s: progress %+v, clusters say %+v", i, ev, s.Progress, got)
	}
}

// drainAssigned reports whether the transition assigned the release to
// clusters it took traffic from, without a person waiving the capacity
// check.
func drainAssigned(before, next State, acts []Action) bool {
	if before.Capacity == CapacityWaived || next.Finished() || next.Plan.Router == "" {
		return false
	}
	for _, a := range acts {
		if as, ok := a.(Assign); ok && as.Release == next.Release {
			for _, n := range as.Clusters {
				b, _ := before.Cluster(n)
				c, _ := next.Cluster(n)
				if b.Phase == v1.ClusterRolloutPending && b.Weight > 0 && c.Weight == 0 {
					return true
				}
			}
		}
	}
	return false
}

// checkCapacity fails when the clusters with traffic carry more than their
// capacity, or none has traffic while some had it.
func checkCapacity(t *testing.T, i int, ev Event, s State) {
	t.Helper()
	total := 0
	for _, c := range s.Clusters {
		total += c.Weight
	}
	if total == 0 {
		t.Fatalf("step %d %s: a drain left no cluster with traffic", i, ev)
	}
	for k, c := range s.Clusters {
		capa := s.Plan.Clusters[k].Capacity
		if capa == 0 {
			capa = 100
		}
		if share := 100 * float64(c.Weight) / float64(total); share > float64(capa)+1e-9 {
			t.Fatalf("step %d %s: after a drain %s carries %.0f%%, capacity %d%%", i, ev, c.Name, share, capa)
		}
	}
}
