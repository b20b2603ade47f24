package runner

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/rollout"
	"flotilla.dev/flotilla/internal/store"
)

// Record is what the runner keeps about one rollout, stored with the
// Rollout object in every transition (store.Transition.Record): the engine
// state and the runner's own bookkeeping around it.
type Record struct {
	Engine rollout.State `json:"engine"`
	// Analysis is the analysis the engine waits for (its StartAnalysis), so
	// that a runner that takes over can run it again.
	Analysis *rollout.StartAnalysis `json:"analysis,omitempty"`
	// Analyses are every analysis run so far, with their measurements.
	Analyses []v1.AnalysisRun `json:"analyses,omitempty"`
	// FailedAt is when a failure was first detected; RestoredAt when every
	// touched cluster was healthy again on the release it went back to.
	FailedAt   *time.Time `json:"failedAt,omitempty"`
	RestoredAt *time.Time `json:"restoredAt,omitempty"`
	// TrafficMessage says what happened to the last traffic change.
	TrafficMessage string `json:"trafficMessage,omitempty"`
	// PlanWeights says where the weights found at planning came from (the
	// router, or capacities when it could not say).
	PlanWeights string `json:"planWeights,omitempty"`
	// Deferred are people's actions written by Act for the leader to step,
	// because they need traffic set before their assignments.
	Deferred []Deferred `json:"deferred,omitempty"`
	// Stuck says why the runner cannot write the rollout's next step (an
	// assignment it cannot resolve, such as a release without the bundle);
	// it clears once a step is written.
	Stuck string `json:"stuck,omitempty"`
	// Finalized is set once the service's status and the release's failed
	// mark reflect the rollout's end.
	Finalized bool `json:"finalized,omitempty"`
}

// clone returns a deep enough copy of r to step and change independently.
func (r *Record) clone() *Record {
	c := *r
	c.Engine = r.Engine.Clone()
	c.Analyses = slices.Clone(r.Analyses)
	c.Deferred = slices.Clone(r.Deferred)
	if r.Analysis != nil {
		a := *r.Analysis
		c.Analysis = &a
	}
	return &c
}

// needsRestore reports whether the rollout ended by sending clusters back,
// so RestoredAt is still to be found.
func (r *Record) needsRestore() bool {
	if r.RestoredAt != nil {
		return false
	}
	switch r.Engine.Phase {
	case v1.RolloutRolledBack, v1.RolloutAborted:
		for _, c := range r.Engine.Clusters {
			if c.Touched {
				return true
			}
		}
	}
	return false
}

// Done reports whether the runner has nothing left to do for the rollout:
// it ended, its end is reflected, and after a rollback every cluster is
// back on its release with its weight.
func (r *Record) Done() bool {
	return r.Engine.Finished() && r.Finalized && !r.needsRestore() && !r.Engine.Restoring()
}

// Status renders the record as the Rollout object's status.
func (r *Record) Status() v1.RolloutStatus {
	st := r.Engine.Status()
	st.Analyses = slices.Clone(r.Analyses)
	st.FailedAt, st.RestoredAt = r.FailedAt, r.RestoredAt
	st.TrafficMessage = r.TrafficMessage
	if r.Stuck != "" {
		st.Message = strings.TrimSuffix("the rollout runner cannot carry out the next step: "+r.Stuck+"; "+st.Message, "; ")
	}
	for _, d := range r.Deferred {
		// Also what makes the leader read the record again: a status
		// change is an event.
		st.TrafficMessage = strings.TrimPrefix(st.TrafficMessage+"; "+d.Event+" by "+d.By+" waits for the rollout runner to set the traffic first", "; ")
	}
	if r.PlanWeights != "" {
		st.TrafficMessage = strings.TrimPrefix(st.TrafficMessage+"; weights at planning "+r.PlanWeights, "; ")
	}
	return st
}

// decodeRecord reads a stored record; nil data is a rollout not started.
func decodeRecord(name string, data json.RawMessage) (*Record, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("rollout %s: record: %w", name, err)
	}
	return &r, nil
}

// decodeInto unmarshals a stored object's spec and status into the spec
// and status pointers given (either may be nil).
func decodeInto(o *store.Object, spec, status any) error {
	if spec != nil && len(o.Spec) > 0 {
		if err := json.Unmarshal(o.Spec, spec); err != nil {
			return fmt.Errorf("%s %s: spec: %w", o.Kind, o.Name, err)
		}
	}
	if status != nil && len(o.Status) > 0 {
		if err := json.Unmarshal(o.Status, status); err != nil {
			return fmt.Errorf("%s %s: status: %w", o.Kind, o.Name, err)
		}
	}
	return nil
}
