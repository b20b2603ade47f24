package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
)

// AnalysisRequest is one analysis to run, as the engine asked for it
// (rollout.StartAnalysis) with its template resolved.
type AnalysisRequest struct {
	ID, Template string
	Spec         v1.AnalysisTemplateSpec
	// Args holds the rendered arguments per cluster.
	Args                      map[string]map[string]string
	Service, Release, Rollout string
}

// Analyzer runs analyses. Run measures until the analysis is done and
// returns the final run with Phase Passed, Failed or Inconclusive; it calls
// progress with the run so far after each measurement. A cancelled ctx
// makes it return promptly (any phase; the runner ignores the result).
type Analyzer interface {
	Run(ctx context.Context, req AnalysisRequest, progress func(v1.AnalysisRun)) v1.AnalysisRun
}

// AnalyzerFunc adapts a function to Analyzer.
type AnalyzerFunc func(ctx context.Context, req AnalysisRequest, progress func(v1.AnalysisRun)) v1.AnalysisRun

// Run implements Analyzer.
func (f AnalyzerFunc) Run(ctx context.Context, req AnalysisRequest, progress func(v1.AnalysisRun)) v1.AnalysisRun {
	return f(ctx, req, progress)
}

// Traffic sets router weights. SetWeights changes only the clusters
// given and returns the weights as the router now applies them.
type Traffic interface {
	SetWeights(ctx context.Context, router string, weights []v1.TrafficWeight) (applied []v1.TrafficWeight, err error)
}

// conflictLoops bounds read-modify-write retries of service and release
// status.
const conflictLoops = 16

// updateStatus reads an object, lets change edit its decoded status
// (returning false when there is nothing to write) and writes it back,
// retrying on conflicts with other writers.
func updateStatus[S any](ctx context.Context, st store.Store, kind, name string, change func(*S) bool) error {
	for attempt := 0; ; attempt++ {
		o, err := st.Get(ctx, kind, name)
		if err != nil {
			return err
		}
		var status S
		if err := decodeInto(o, nil, &status); err != nil {
			return err
		}
		if !change(&status) {
			return nil
		}
		data, err := json.Marshal(status)
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, err)
		}
		o.Status = data
		_, err = st.UpdateStatus(ctx, o, Actor)
		if errors.Is(err, store.ErrConflict) && attempt < conflictLoops {
			continue
		}
		return err
	}
}

// setActive records the rollout in flight on its service.
func setActive(ctx context.Context, st store.Store, service, rollout string) error {
	err := updateStatus(ctx, st, v1.KindService, service, func(s *v1.ServiceStatus) bool {
		if s.ActiveRollout == rollout {
			return false
		}
		s.ActiveRollout = rollout
		return true
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // the service went away; the rollout still runs its course
	}
	return err
}

// finalize makes the service and the release reflect how the rollout
// ended: a success becomes the service's current release; a failure marks
// the release failed so that automation leaves it alone.
func finalize(ctx context.Context, st store.Store, name string, rec *Record, now time.Time) error {
	s := &rec.Engine
	err := updateStatus(ctx, st, v1.KindService, s.Service, func(ss *v1.ServiceStatus) bool {
		changed := false
		if ss.ActiveRollout == name {
			ss.ActiveRollout, changed = "", true
		}
		if s.Phase == v1.RolloutSucceeded && ss.CurrentRelease != s.Release {
			ss.CurrentRelease, changed = s.Release, true
		}
		return changed
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("service %s: %w", s.Service, err)
	}
	switch s.Phase {
	case v1.RolloutRolledBack, v1.RolloutFailed, v1.RolloutAborted:
	default:
		return nil
	}
	if s.Release == "" {
		return nil
	}
	err = updateStatus(ctx, st, v1.KindRelease, s.Release, func(rs *v1.ReleaseStatus) bool {
		if rs.Failed != nil && rs.Failed.Rollout == name {
			return false
		}
		rs.Failed = &v1.ReleaseFailure{Rollout: name, Reason: s.Message, At: now.UTC()}
		return true
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("release %s: %w", s.Release, err)
	}
	return nil
}

// ClearFailed removes a release's failed mark (for `rollout retry`).
func ClearFailed(ctx context.Context, st store.Store, release string, by store.Actor) error {
	for attempt := 0; ; attempt++ {
		o, err := st.Get(ctx, v1.KindRelease, release)
		if err != nil {
			return err
		}
		var rs v1.ReleaseStatus
		if err := decodeInto(o, nil, &rs); err != nil {
			return err
		}
		if rs.Failed == nil {
			return nil
		}
		rs.Failed = nil
		if o.Status, err = json.Marshal(rs); err != nil {
			return err
		}
		_, err = st.UpdateStatus(ctx, o, by)
		if errors.Is(err, store.ErrConflict) && attempt < conflictLoops {
			continue
		}
		return err
	}
}
