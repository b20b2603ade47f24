package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/rollout"
	"flotilla.dev/flotilla/internal/rollout/runner"
	"flotilla.dev/flotilla/internal/store"
)

// Rollout actions people take, as the routes POST /api/v1/rollouts/{name}/{action} name them.
const (
	ActionApprove  = "approve"
	ActionPromote  = "promote"
	ActionPause    = "pause"
	ActionResume   = "resume"
	ActionAbort    = "abort"
	ActionRollback = "rollback"
	ActionRetry    = "retry"
)

// rolloutActions documents each action for the route table.
var rolloutActions = []struct{ name, summary string }{
	{ActionApprove, "Approve the rollout's open approval gate (also needs one of the gate's roles)"},
	{ActionPromote, "Skip the rollout's current gate, time window or hold"},
	{ActionPause, "Pause the rollout; deadlines stop running"},
	{ActionResume, "Resume a paused rollout; after a failure, try again"},
	{ActionAbort, "Stop the rollout and send every touched cluster back to its previous release"},
	{ActionRollback, "Send every touched cluster to the release in the body's `to`, or back to its previous release, and end the rollout"},
	{ActionRetry, "Retry: reassign failed clusters of a paused rollout, or roll a failed release out again as a new rollout"},
}

// resourceRollouts is the permission resource of rollouts.
const resourceRollouts = "rollouts"

// rolloutRoutes returns the rollout control routes and the plan route.
func (s *Server) rolloutRoutes() []Route {
	var rs []Route
	for _, a := range rolloutActions {
		// Approving also needs one of the open gate's roles (checked by the engine).
		rule := auth.Require(auth.VerbUpdate, resourceRollouts)
		action := a.name
		rs = append(rs, Route{Method: "POST", Path: "/api/v1/rollouts/{name}/" + action, Rule: rule,
			OperationID: action + "Rollout", Kind: v1.KindRollout, Summary: a.summary, Request: "RolloutActionRequest", Response: v1.KindRollout,
			handle: func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
				return s.serveRolloutAction(w, r, p, action)
			}})
	}
	rs = append(rs, Route{Method: "GET", Path: "/api/v1/services/{name}/rolloutplan", Rule: auth.Require(auth.VerbGet, resourceRollouts),
		OperationID: "planRollout", Kind: v1.KindRollout, Summary: "Which clusters fall in which wave if a release of the service rolled out now",
		Query: []Param{{"release", "the release to plan (default: the service's latest release)", "string"}}, Response: "RolloutPlan", handle: s.rolloutPlan})
	return rs
}

// rolloutSchemas names the rollout control bodies for the OpenAPI document.
func rolloutSchemas() map[string]any {
	return map[string]any{"RolloutActionRequest": v1.RolloutActionRequest{}, "RolloutPlan": v1.RolloutPlan{}}
}

func (s *Server) serveRolloutAction(w http.ResponseWriter, r *http.Request, p *auth.Principal, action string) error {
	var req v1.RolloutActionRequest
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		data, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(data)) != "" {
			dec := json.NewDecoder(strings.NewReader(string(data)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				return badRequest("request body: %s", jsonErrorWhere(data, err))
			}
		}
	}
	if to := r.URL.Query().Get("to"); to != "" && req.To == "" {
		req.To = to
	}
	name := r.PathValue("name")
	if err := s.rolloutAction(r.Context(), p, name, action, req.To); err != nil {
		return err
	}
	o, err := s.store.Get(r.Context(), v1.KindRollout, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, fromStore(o))
	return nil
}

// rolloutAction carries out a person's action on the rollout name, with the same authorisation and
// audit as the HTTP routes: every action needs update on rollouts, and approve also one of the open
// approval gate's roles. The transition is written by this replica (optimistic concurrency), so it
// takes effect whichever replica leads the runner; the leader does what follows (analyses,
// traffic). to is the target release of a rollback ("" for each cluster's previous release).
func (s *Server) rolloutAction(ctx context.Context, p *auth.Principal, name, action, to string) error {
	perm := auth.Permission{Verb: auth.VerbUpdate, Resource: resourceRollouts}
	if err := s.opts.Roles.Authorize(p, perm); err != nil {
		return err
	}
	if to != "" && action != ActionRollback {
		return badRequest("only rollback takes a target release (to=%q)", to)
	}
	var ev rollout.Event
	switch action {
	case ActionApprove:
		ev = rollout.Approval{User: p.String(), Roles: p.Roles}
	case ActionPromote:
		ev = rollout.Promote{}
	case ActionPause:
		ev = rollout.Pause{}
	case ActionResume:
		ev = rollout.Resume{}
	case ActionAbort:
		ev = rollout.Abort{}
	case ActionRollback:
		if to != "" {
			if _, err := s.store.Get(ctx, v1.KindRelease, to); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return badRequest("rollback to release %q: no such release", to)
				}
				return err
			}
		}
		ev = rollout.Rollback{To: to}
		if obj, rec, err := runner.Load(ctx, s.store, name); err == nil && rec != nil && rec.Engine.Finished() {
			return s.rollbackFinished(ctx, p, obj, rec, to)
		}
	case ActionRetry:
		return s.retryRollout(ctx, p, name)
	default:
		return notFound("rollout action %q: want one of approve, promote, pause, resume, abort, rollback, retry", action)
	}
	_, err := runner.Act(ctx, s.store, name, ev, p.Actor(), s.opts.Now)
	return rolloutErr(name, action, err)
}

// retryRollout retries a rollout paused by a failure, or rolls a release that failed out again as a
// new rollout, after clearing its failed mark.
func (s *Server) retryRollout(ctx context.Context, p *auth.Principal, name string) error {
	obj, rec, err := runner.Load(ctx, s.store, name)
	if err != nil {
		return rolloutErr(name, ActionRetry, err)
	}
	if rec == nil {
		return rolloutErr(name, ActionRetry, runner.ErrNotStarted)
	}
	switch rec.Engine.Phase {
	case v1.RolloutRolledBack, v1.RolloutFailed, v1.RolloutAborted:
	default:
		_, err := runner.Act(ctx, s.store, name, rollout.Retry{}, p.Actor(), s.opts.Now)
		return rolloutErr(name, ActionRetry, err)
	}
	var spec v1.RolloutSpec
	if err := json.Unmarshal(obj.Spec, &spec); err != nil {
		return fmt.Errorf("rollout %s: %w", name, err)
	}
	if err := runner.ClearFailed(ctx, s.store, spec.Release, p.Actor()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	base := spec.Release
	for n := 2; ; n++ {
		next := fmt.Sprintf("%s-retry%d", base, n)
		if len(next) > 63 {
			next = fmt.Sprintf("%s-retry%d", base[:63-len(fmt.Sprintf("-retry%d", n))], n)
		}
		ro := &v1.Rollout{Metadata: v1.ObjectMeta{Name: next, Labels: obj.Labels}, Spec: spec}
		ro.Default()
		so, err := prepare(ro)
		if err != nil {
			return err
		}
		so.Status = nil
		_, err = s.store.Create(ctx, so, p.Actor())
		if errors.Is(err, store.ErrAlreadyExists) && n < 100 {
			continue
		}
		return err
	}
}

// rollbackFinished goes back from a rollout that already ended: it starts a new rollout of the
// target release (to, else the release most clusters ran before) that updates every cluster at
// once, as an emergency change should.
func (s *Server) rollbackFinished(ctx context.Context, p *auth.Principal, obj *store.Object, rec *runner.Record, to string) error {
	if to == "" {
		to = rec.Status().PreviousRelease
	}
	if to == "" {
		return &apiError{code: http.StatusConflict, reason: v1.ReasonConflict,
			msg: fmt.Sprintf("rollback rollout %s: it ended %s and no previous release is known; name one with to", obj.Name, rec.Engine.Phase)}
	}
	ro, err := s.store.Get(ctx, v1.KindRelease, to)
	if err != nil {
		return err
	}
	var rel v1.ReleaseSpec
	if err := json.Unmarshal(ro.Spec, &rel); err != nil {
		return fmt.Errorf("release %s: %w", to, err)
	}
	if rel.Service != rec.Engine.Service {
		return badRequest("rollback to release %q: it is a release of service %q, not %q", to, rel.Service, rec.Engine.Service)
	}
	all := runner.AllAtOnce()
	spec := v1.RolloutSpec{Service: rec.Engine.Service, Release: to, StrategySpec: &all}
	for n := 1; n < 100; n++ {
		name := fmt.Sprintf("%s-rollback%d", to, n)
		if len(name) > 63 {
			name = fmt.Sprintf("%s-rollback%d", to[:63-len(fmt.Sprintf("-rollback%d", n))], n)
		}
		nr := &v1.Rollout{Metadata: v1.ObjectMeta{Name: name}, Spec: spec}
		nr.Default()
		so, err := prepare(nr)
		if err != nil {
			return err
		}
		so.Status = nil
		_, err = s.store.Create(ctx, so, p.Actor())
		if errors.Is(err, store.ErrAlreadyExists) {
			continue
		}
		return err
	}
	return &apiError{code: http.StatusConflict, reason: v1.ReasonConflict, msg: "too many rollbacks of release " + to}
}

// rolloutErr words engine and runner errors for people and picks their HTTP code.
func rolloutErr(name, action string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return notFound("Rollout %q not found", name)
	case errors.Is(err, rollout.ErrNotPermitted):
		return &apiError{code: http.StatusForbidden, reason: v1.ReasonForbidden, msg: fmt.Sprintf("%s rollout %s: %v", action, name, err)}
	case errors.Is(err, rollout.ErrIllegalEvent), errors.Is(err, rollout.ErrFinished), errors.Is(err, runner.ErrNotStarted):
		return &apiError{code: http.StatusConflict, reason: v1.ReasonConflict, msg: fmt.Sprintf("%s rollout %s: %v", action, name, err)}
	}
	return err
}

func (s *Server) rolloutPlan(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	ctx := r.Context()
	service := r.PathValue("name")
	release := r.URL.Query().Get("release")
	o, err := s.store.Get(ctx, v1.KindService, service)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("Service %q not found", service)
		}
		return err
	}
	if release == "" {
		var st v1.ServiceStatus
		if len(o.Status) > 0 {
			if err := json.Unmarshal(o.Status, &st); err != nil {
				return fmt.Errorf("service %s: status: %w", service, err)
			}
		}
		if release = st.LatestRelease; release == "" {
			return badRequest("service %s has no latest release yet; name one with ?release=", service)
		}
	}
	planned, err := runner.PlanFor(ctx, s.store, runner.PlanRequest{Service: service, Release: release, Router: s.opts.TrafficWeights})
	if err != nil {
		if errors.Is(err, runner.ErrPlan) {
			return invalid(err.Error(), v1.FieldError{Path: "release", Message: err.Error()})
		}
		return err
	}
	writeJSON(w, http.StatusOK, planned.Describe(service, release))
	return nil
}
