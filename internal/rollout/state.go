package rollout

import (
	"slices"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Stage is where the current wave is.
type Stage string

// Stages of a wave, in order. Blue/green adds StageHold after the idle
// group's verify gates.
const (
	StageWindow Stage = "window" // waiting for a time window to start the wave
	StageBefore Stage = "before" // the wave's before gates
	StageUpdate Stage = "update" // assigning clusters, maxParallel at a time
	StageStep   Stage = "step"   // a canary traffic step and its gates
	StageAfter  Stage = "after"  // the wave's after gates (blue/green: verify)
	StageHold   Stage = "hold"   // blue/green: traffic switched, old group kept
)

// Halt reasons: why a paused rollout stopped by itself.
const (
	HaltGate         = "gate"         // a gate failed and onFailure is pause
	HaltBudget       = "budget"       // the failure budget is spent and onFailure is pause
	HaltInconclusive = "inconclusive" // an analysis was inconclusive
)

// ClusterState is one cluster's progress in the rollout.
type ClusterState struct {
	Name  string                 `json:"name"`
	Wave  int                    `json:"wave"`
	Phase v1.ClusterRolloutPhase `json:"phase"`
	// Release is what the cluster is assigned now; Previous what it had
	// before the rollout (the rollback target).
	Release  string `json:"release,omitempty"`
	Previous string `json:"previous,omitempty"`
	Health   string `json:"health,omitempty"`
	// Touched is set once the rollout assigned its release here.
	Touched bool `json:"touched,omitempty"`
	// Deadline is when an Updating cluster counts as failed.
	Deadline time.Time `json:"deadline,omitzero"`
	// Weight is the traffic weight the engine last set; BaseWeight the one
	// found at planning, restored after drains, canaries and rollbacks.
	Weight     int `json:"weight"`
	BaseWeight int `json:"baseWeight"`
	// Drained is set while the cluster waits at weight 0 for its base
	// weight: during a drain until it is Healthy on the release, after a
	// rollback until it is Healthy on the release it went back to.
	Drained bool   `json:"drained,omitempty"`
	Message string `json:"message,omitempty"`
}

// WaveProgress counts the current wave's clusters by phase. Next is the
// index in the wave's cluster list of the next cluster to assign.
type WaveProgress struct {
	Next     int `json:"next"`
	Updating int `json:"updating"`
	Healthy  int `json:"healthy"`
	Failed   int `json:"failed"`
	// Accepted failures were promoted past and no longer count against the
	// budget.
	Accepted int `json:"accepted,omitempty"`
}

// State is everything the runner persists for one rollout. It is plain
// data and round-trips through JSON.
type State struct {
	Service string          `json:"service"`
	Release string          `json:"release"`
	Plan    Plan            `json:"plan"`
	Phase   v1.RolloutPhase `json:"phase"`
	Message string          `json:"message,omitempty"`

	// Wave, Step and Gate locate the rollout: the wave index (-1 before
	// Start), the canary step (-1 outside steps) and the gate index in the
	// stage's gate list.
	Wave     int          `json:"wave"`
	Stage    Stage        `json:"stage,omitempty"`
	Step     int          `json:"step"`
	Gate     int          `json:"gate"`
	Progress WaveProgress `json:"progress"`
	// Active is set while the gate at Gate is open; its record is the last
	// of Gates.
	Active     bool      `json:"active,omitempty"`
	AnalysisID string    `json:"analysisID,omitempty"`
	BakeUntil  time.Time `json:"bakeUntil,omitzero"`
	HoldUntil  time.Time `json:"holdUntil,omitzero"`
	WaitUntil  time.Time `json:"waitUntil,omitzero"`
	// Attempts numbers analysis runs so that every ID is unique.
	Attempts int `json:"attempts,omitempty"`

	// Capacity is CapacityWait while the update stage waits for enough
	// capacity to drain its next cluster, CapacityWaived once a person
	// promoted past that wait (for the next batch only).
	Capacity string `json:"capacity,omitempty"`

	Paused   bool      `json:"paused,omitempty"`
	PausedAt time.Time `json:"pausedAt,omitzero"`
	Halt     string    `json:"halt,omitempty"`

	Clusters     []ClusterState  `json:"clusters"`
	Gates        []v1.GateResult `json:"gates,omitempty"`
	StartedAt    time.Time       `json:"startedAt,omitzero"`
	FinishedAt   time.Time       `json:"finishedAt,omitzero"`
	SupersededBy string          `json:"supersededBy,omitempty"`
}

// NewState is a Pending rollout of release for service following plan.
func NewState(plan Plan, service, release string) State {
	s := State{Service: service, Release: release, Plan: plan, Phase: v1.RolloutPending, Wave: -1, Step: -1}
	s.Clusters = make([]ClusterState, len(plan.Clusters))
	for i, c := range plan.Clusters {
		s.Clusters[i] = ClusterState{Name: c.Name, Wave: -1, Phase: v1.ClusterRolloutPending, Release: c.Release,
			Previous: c.Release, Weight: c.Weight, BaseWeight: c.Weight}
	}
	for wi, w := range plan.Waves {
		for _, i := range w.Members {
			s.Clusters[i].Wave = wi
		}
	}
	return s
}

// Clone returns a deep copy of s. Step reuses the memory of the state it
// is given; keep a clone to compare or to retry a transition.
func (s State) Clone() State {
	c := s
	c.Clusters = slices.Clone(s.Clusters)
	c.Gates = slices.Clone(s.Gates)
	return c
}

// Capacity waits (State.Capacity).
const (
	CapacityWait   = "wait"
	CapacityWaived = "waived"
)

// Finished reports whether the rollout ended. A rolled back rollout may
// still be Restoring.
func (s State) Finished() bool { return s.Phase.Terminal() }

// Restoring reports whether a rolled back (or aborted) rollout still has
// clusters at weight 0 that get their weight back once they report
// Healthy on the release they went back to: the only events it accepts
// are those ClusterStatus reports.
func (s State) Restoring() bool {
	if s.Phase != v1.RolloutRolledBack && s.Phase != v1.RolloutAborted {
		return false
	}
	return slices.ContainsFunc(s.Clusters, func(c ClusterState) bool { return c.Drained })
}

// Cluster returns the named cluster's state.
func (s State) Cluster(name string) (ClusterState, bool) {
	i, ok := s.index(name)
	if !ok {
		return ClusterState{}, false
	}
	return s.Clusters[i], true
}

func (s *State) index(name string) (int, bool) {
	return slices.BinarySearchFunc(s.Clusters, name, func(c ClusterState, n string) int { return strings.Compare(c.Name, n) })
}
