package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/rollout"
	"flotilla.dev/flotilla/internal/store"
)

// Errors of the package; callers branch on them with errors.Is.
var (
	// ErrNotStarted means the rollout has no record yet: the runner has not
	// planned it.
	ErrNotStarted = errors.New("rollout not started yet")
)

// Actor is who the runner's own transitions are recorded as.
var Actor = store.Actor{Kind: store.ActorSystem, Name: "rollout-runner"}

// conflictRetries bounds how often a person's action is retried after
// losing a race with another writer of the same rollout.
const conflictRetries = 8

// Audit is the spec of a store.KindRolloutAudit event: what one
// transition was fed and what it did.
type Audit struct {
	By      string   `json:"by"`
	Events  []string `json:"events,omitempty"`
	Actions []string `json:"actions,omitempty"`
	Phase   string   `json:"phase"`
	Message string   `json:"message,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

// step feeds evs to a copy of rec at now and keeps the runner's
// bookkeeping in step with the engine: the analysis it waits for, the
// analysis runs and the time a failure was detected. With strict an
// event the engine refuses is an error; otherwise it is skipped and
// reported in errs (late analysis results, statuses of a finished
// rollout).
func step(rec *Record, evs []rollout.Event, now time.Time, strict bool) (next *Record, acts []rollout.Action, errs []string, err error) {
	next = rec.clone()
	for _, ev := range evs {
		s, a, err := rollout.Step(next.Engine, ev, now)
		if err != nil {
			if strict {
				return nil, nil, nil, err
			}
			errs = append(errs, err.Error())
			continue
		}
		next.Engine = s
		for _, act := range a {
			switch x := act.(type) {
			case rollout.StartAnalysis:
				x.Args = cloneArgs(x.Args)
				next.Analysis = &x
				run := v1.AnalysisRun{ID: x.ID, Template: x.Template, Phase: v1.GateRunning, StartedAt: timePtr(now)}
				if s.Wave >= 0 && s.Wave < len(s.Plan.Waves) {
					run.Wave = s.Plan.Waves[s.Wave].Name
				}
				if s.Stage == rollout.StageStep {
					st := s.Step
					run.Step = &st
				}
				for c := range x.Args {
					run.Clusters = append(run.Clusters, c)
				}
				slices.Sort(run.Clusters)
				next.Analyses = append(next.Analyses, run)
			case rollout.StopAnalysis:
				if next.Analysis != nil && next.Analysis.ID == x.ID {
					next.Analysis = nil
				}
				next.finishRun(x.ID, v1.GateInconclusive, "stopped before it finished", now)
			}
		}
		if r, ok := ev.(rollout.AnalysisResult); ok && next.Analysis != nil && next.Analysis.ID == r.ID {
			next.Analysis = nil
		}
		if next.FailedAt == nil && failed(ev, s) {
			next.FailedAt = timePtr(now)
		}
		acts = append(acts, a...)
	}
	return next, acts, errs, nil
}

// failed reports whether the state after ev shows a failure the rollout
// detected by itself (not a person's abort or rollback).
func failed(ev rollout.Event, s rollout.State) bool {
	switch ev.(type) {
	case rollout.Abort, rollout.Rollback, rollout.Superseded:
		return false
	}
	switch {
	case s.Phase == v1.RolloutRolledBack, s.Phase == v1.RolloutFailed:
		return true
	case s.Paused && (s.Halt == rollout.HaltGate || s.Halt == rollout.HaltBudget):
		return true
	}
	return false
}

// finishRun ends the run with id if it is still running.
func (r *Record) finishRun(id string, phase v1.GatePhase, msg string, now time.Time) {
	for i := range r.Analyses {
		if r.Analyses[i].ID == id && r.Analyses[i].Phase == v1.GateRunning {
			r.Analyses[i].Phase, r.Analyses[i].FinishedAt = phase, timePtr(now)
			if msg != "" {
				r.Analyses[i].Message = msg
			}
		}
	}
}

func cloneArgs(m map[string]map[string]string) map[string]map[string]string {
	out := make(map[string]map[string]string, len(m))
	for k, v := range m {
		c := make(map[string]string, len(v))
		for a, b := range v {
			c[a] = b
		}
		out[k] = c
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}

// committer turns stepped records into store transitions: it resolves the
// releases that Assign actions name into per-cluster bundles.
type committer struct {
	st store.Store
	mu sync.Mutex
	// releases caches releases by name; their bundles never change.
	releases map[string]*v1.Release
}

func newCommitter(st store.Store) *committer {
	return &committer{st: st, releases: map[string]*v1.Release{}}
}

// release returns a release, from the cache when possible.
func (c *committer) release(ctx context.Context, name string) (*v1.Release, error) {
	c.mu.Lock()
	r := c.releases[name]
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	o, err := c.st.Get(ctx, v1.KindRelease, name)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", name, err)
	}
	r = &v1.Release{Metadata: v1.ObjectMeta{Name: name}}
	if err := decodeInto(o, &r.Spec, &r.Status); err != nil {
		return nil, err
	}
	if len(r.Status.Bundles) > 0 {
		c.mu.Lock()
		c.releases[name] = r
		c.mu.Unlock()
	}
	return r, nil
}

// forget drops a release from the cache (its status changed).
func (c *committer) forget(name string) {
	c.mu.Lock()
	delete(c.releases, name)
	c.mu.Unlock()
}

// assignments turns the Assign actions of a transition into assignments;
// a later action for the same cluster wins.
func (c *committer) assignments(ctx context.Context, service string, acts []rollout.Action, by store.Actor) ([]store.Assignment, error) {
	idx := map[string]int{}
	var out []store.Assignment
	for _, act := range acts {
		a, ok := act.(rollout.Assign)
		if !ok {
			continue
		}
		var (
			rel  *v1.Release
			opts json.RawMessage
			err  error
		)
		if a.Release != "" {
			if rel, err = c.release(ctx, a.Release); err != nil {
				return nil, err
			}
			if opts, err = assignmentOptions(rel); err != nil {
				return nil, err
			}
		}
		for _, cl := range a.Clusters {
			as := store.Assignment{Cluster: cl, Service: service}
			if rel != nil {
				rb := bundleOf(rel, cl)
				if rb == nil {
					return nil, fmt.Errorf("release %s has no bundle for cluster %s", a.Release, cl)
				}
				if err := c.ensureBundle(ctx, a.Release, rb, by); err != nil {
					return nil, err
				}
				as.Release, as.Bundle, as.Options = a.Release, rb.Digest, opts
			}
			if i, seen := idx[cl]; seen {
				out[i] = as
				continue
			}
			idx[cl] = len(out)
			out = append(out, as)
		}
	}
	return out, nil
}

func bundleOf(rel *v1.Release, cluster string) *v1.ReleaseBundle {
	for i := range rel.Status.Bundles {
		if slices.Contains(rel.Status.Bundles[i].Clusters, cluster) {
			return &rel.Status.Bundles[i]
		}
	}
	return nil
}

// assignmentOptions are what the agent needs besides the bundle, as the
// assignment API sets them.
func assignmentOptions(rel *v1.Release) (json.RawMessage, error) {
	opts := v1.AssignmentOptions{Namespace: rel.Spec.ServiceSpec.Namespace}
	if opts.Namespace == "" {
		opts.Namespace = rel.Spec.Service
	}
	sync := rel.Spec.ServiceSpec.Sync
	opts.Prune = sync.Prune == nil || *sync.Prune
	opts.SelfHeal = sync.SelfHeal != nil && *sync.SelfHeal
	return json.Marshal(opts)
}

// ensureBundle stores a bundle a release carries inline, once.
func (c *committer) ensureBundle(ctx context.Context, release string, rb *v1.ReleaseBundle, by store.Actor) error {
	ok, err := c.st.HasBundle(ctx, rb.Digest)
	if err != nil || ok {
		return err
	}
	if len(rb.Manifests) == 0 {
		return fmt.Errorf("bundle %s of release %s is not stored and the release has no inline manifests", rb.Digest, release)
	}
	objs := make([]map[string]any, 0, len(rb.Manifests))
	for i, m := range rb.Manifests {
		var obj map[string]any
		if err := json.Unmarshal(m, &obj); err != nil {
			return fmt.Errorf("release %s: bundle %s: manifest %d: %w", release, rb.Digest, i, err)
		}
		objs = append(objs, obj)
	}
	b, err := bundle.New(objs)
	if err != nil {
		return fmt.Errorf("release %s: bundle %s: %w", release, rb.Digest, err)
	}
	if b.Digest() != rb.Digest {
		return fmt.Errorf("release %s: inline manifests hash to %s, not the recorded %s", release, b.Digest(), rb.Digest)
	}
	_, err = c.st.PutBundle(ctx, b.Digest(), b.Bytes(), by)
	return err
}

// commit writes one transition: rec as the rollout's new status and
// record, with the assignments of acts, against the version of obj.
func (c *committer) commit(ctx context.Context, obj *store.Object, rec *Record, acts []rollout.Action, audit *Audit,
	by store.Actor, fence *store.Fence) (*store.TransitionResult, error) {
	as, err := c.assignments(ctx, rec.Engine.Service, acts, by)
	if err != nil {
		return nil, fmt.Errorf("rollout %s: %w", obj.Name, err)
	}
	status, err := json.Marshal(rec.Status())
	if err != nil {
		return nil, fmt.Errorf("rollout %s: %w", obj.Name, err)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("rollout %s: %w", obj.Name, err)
	}
	t := store.Transition{Rollout: &store.Object{Kind: v1.KindRollout, Name: obj.Name, ResourceVersion: obj.ResourceVersion, Status: status},
		Record: data, Done: rec.Done(), Assignments: as, Fence: fence}
	if audit != nil {
		audit.Phase, audit.Message = string(rec.Engine.Phase), rec.Engine.Message
		t.Audit = audit
	}
	return c.st.CommitTransition(ctx, t, by)
}

// auditOf describes a transition for the audit trail; timers are left out.
func auditOf(by store.Actor, evs []rollout.Event, acts []rollout.Action, errs []string) *Audit {
	a := &Audit{By: by.Kind + ":" + by.Name, Errors: errs}
	for _, e := range evs {
		a.Events = append(a.Events, e.String())
	}
	for _, act := range acts {
		if _, ok := act.(rollout.SetTimer); ok {
			continue
		}
		a.Actions = append(a.Actions, act.String())
	}
	return a
}

// Act carries out a person's action on the rollout name: it reads the
// rollout's record, steps the engine with ev at now and commits the
// transition with its assignments, retrying when another writer got there
// first. The leading runner picks the change up from the event log and
// carries out what is left (analyses, traffic). An action whose
// assignments need traffic weights set first (a drain) is checked here
// and handed to the leader instead (Record.Deferred), which sets the
// weights before it assigns; the record returned then shows the rollout
// before the action. Engine errors
// (rollout.ErrNotPermitted, ErrIllegalEvent, ErrFinished) are returned
// wrapped; a rollout the runner has not started yet is ErrNotStarted.
func Act(ctx context.Context, st store.Store, name string, ev rollout.Event, by store.Actor, now func() time.Time) (*Record, error) {
	c := newCommitter(st)
	for attempt := 0; ; attempt++ {
		recs, err := st.RolloutRecords(ctx, name)
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("rollout %s: %w", name, store.ErrNotFound)
		}
		rec, err := decodeRecord(name, recs[0].Record)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			return nil, fmt.Errorf("rollout %s: %w", name, ErrNotStarted)
		}
		next, acts, _, err := step(rec, []rollout.Event{ev}, now(), true)
		if err != nil {
			return nil, fmt.Errorf("rollout %s: %w", name, err)
		}
		audit := auditOf(by, []rollout.Event{ev}, acts, nil)
		if d, ok := deferredOf(ev, by); ok && len(leadingWeights(&next.Engine, acts)) > 0 {
			// The action drains clusters before assigning them: only the
			// leading runner sets router weights, so it steps the action
			// (checked here) and puts the weights in force first.
			held := rec.clone()
			held.Deferred = append(held.Deferred, d)
			audit = &Audit{By: audit.By, Events: audit.Events,
				Actions: []string{"handed to the rollout runner: it sets the traffic before it assigns"}}
			next, acts = held, nil
		}
		_, err = c.commit(ctx, recs[0].Object, next, acts, audit, by, nil)
		if errors.Is(err, store.ErrConflict) && attempt < conflictRetries {
			continue
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
}

// Load returns the rollout's record as stored (nil before it started).
func Load(ctx context.Context, st store.Store, name string) (*store.Object, *Record, error) {
	recs, err := st.RolloutRecords(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if len(recs) == 0 {
		return nil, nil, fmt.Errorf("rollout %s: %w", name, store.ErrNotFound)
	}
	rec, err := decodeRecord(name, recs[0].Record)
	return recs[0].Object, rec, err
}
