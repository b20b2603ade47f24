package rollout

import (
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Status renders the state as the Rollout object's status, for the API,
// `get` and `describe`. PreviousRelease is the release most clusters had
// before the rollout (ties go to the first by name); each cluster's own
// rollback target stays in the state.
func (s State) Status() v1.RolloutStatus {
	st := v1.RolloutStatus{Phase: s.Phase, Message: s.Message, CurrentWave: s.Wave, CurrentStep: s.Step}
	if s.Wave >= 0 && s.Wave < len(s.Plan.Waves) {
		st.CurrentWaveName = s.Plan.Waves[s.Wave].Name
	}
	st.StartedAt, st.FinishedAt = timePtr(s.StartedAt), timePtr(s.FinishedAt)
	for _, w := range s.Plan.Waves {
		st.Waves = append(st.Waves, w.Name)
	}
	counts := map[string]int{}
	best := ""
	for _, c := range s.Clusters {
		if c.Previous == "" {
			continue
		}
		counts[c.Previous]++
		if counts[c.Previous] > counts[best] {
			best = c.Previous
		}
	}
	st.PreviousRelease = best
	st.Clusters = make([]v1.RolloutCluster, len(s.Clusters))
	for i, c := range s.Clusters {
		rc := v1.RolloutCluster{Name: c.Name, Phase: c.Phase, Release: c.Release, Health: c.Health, Message: c.Message}
		if c.Wave >= 0 && c.Wave < len(s.Plan.Waves) {
			rc.Wave = s.Plan.Waves[c.Wave].Name
		}
		st.Clusters[i] = rc
	}
	st.Gates = append([]v1.GateResult(nil), s.Gates...)
	if g, name, ok := s.OpenGate(); ok && g.Kind == GateApproval && !s.Paused {
		st.WaitingFor = &v1.PendingApproval{Gate: name, Roles: append([]string(nil), g.Roles...)}
	}
	if s.Plan.Router != "" {
		st.Traffic = make([]v1.TrafficWeight, len(s.Clusters))
		for i, c := range s.Clusters {
			st.Traffic[i] = v1.TrafficWeight{Router: s.Plan.Router, Cluster: c.Name, Weight: c.Weight}
		}
	}
	return st
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// OpenGate returns the gate that is open now and its name for people
// (wave/position/index, as in RequestApproval), if any.
func (s State) OpenGate() (PlannedGate, string, bool) {
	g, ok := s.openGate()
	if !ok {
		return PlannedGate{}, "", false
	}
	m := machine{s: &s}
	return g, m.gateName(), true
}
