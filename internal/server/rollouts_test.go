package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/rollout"
	"flotilla.dev/flotilla/internal/rollout/runner"
	"flotilla.dev/flotilla/internal/server"
	"flotilla.dev/flotilla/internal/store"
)

var testActor = store.Actor{Kind: store.ActorSystem, Name: "test"}

// isRolloutControl reports whether rt is a rollout action or the plan route, which need a rollout
// in a fitting state rather than a fleet object.
func isRolloutControl(rt server.Route) bool {
	return strings.HasPrefix(rt.Path, "/api/v1/rollouts/{name}/") && rt.Method == http.MethodPost ||
		rt.Path == "/api/v1/services/{name}/rolloutplan"
}

// startedRollout stores a Rollout whose engine started and then ran evs: one wave without
// clusters behind an approval gate for roles, so that no step needs an assignment.
func startedRollout(t testing.TB, e *env, name string, roles []string, evs ...rollout.Event) {
	t.Helper()
	ctx := context.Background()
	o, err := e.store.Create(ctx, &store.Object{Kind: v1.KindRollout, Name: name,
		Spec: json.RawMessage(`{"service":"web","release":"web-1"}`)}, testActor)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := rollout.NewPlan(v1.RolloutStrategySpec{Type: v1.StrategyRolling, Waves: []v1.Wave{{Name: "w",
		Clusters: &v1.LabelSelector{}, Before: []v1.Gate{{Approval: &v1.ApprovalGate{Roles: roles}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := rollout.NewState(plan, "web", "web-1")
	now := time.Now()
	for _, ev := range append([]rollout.Event{rollout.Start{}}, evs...) {
		if s, _, err = rollout.Step(s, ev, now); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	rec := runner.Record{Engine: s}
	data, _ := json.Marshal(rec)
	status, _ := json.Marshal(rec.Status())
	if _, err := e.store.CommitTransition(ctx, store.Transition{Rollout: &store.Object{Name: name, ResourceVersion: o.ResourceVersion,
		Status: status}, Record: data}, testActor); err != nil {
		t.Fatal(err)
	}
}

// rolloutRequestFor prepares a rollout (or a service and release) on which rt succeeds for a
// permitted caller.
func rolloutRequestFor(t *testing.T, e *env, rt server.Route, suffix string, objs map[string]v1.Object) (path string, body []byte) {
	t.Helper()
	ctx := context.Background()
	if rt.Path == "/api/v1/services/{name}/rolloutplan" {
		svc, rel := "mplan-"+suffix, "mplan-"+suffix+"-r1"
		cluster := objs[v1.KindCluster].GetMetadata().Name
		if _, err := e.store.Create(ctx, &store.Object{Kind: v1.KindService, Name: svc,
			Spec: json.RawMessage(`{"source":{"name":"shop"},"placement":{"clusterSelector":{}}}`)}, testActor); err != nil {
			t.Fatal(err)
		}
		ro, err := e.store.Create(ctx, &store.Object{Kind: v1.KindRelease, Name: rel,
			Spec: json.RawMessage(`{"service":"` + svc + `","commit":{"sha":"0123456789abcdef0123456789abcdef01234567"},"serviceSpec":{"source":{"name":"shop"},"placement":{"clusterSelector":{}}}}`)}, testActor)
		if err != nil {
			t.Fatal(err)
		}
		ro.Status = json.RawMessage(`{"phase":"Rendered","bundles":[{"digest":"sha256:` + strings.Repeat("ab", 32) + `","clusters":["` + cluster + `"]}]}`)
		if _, err := e.store.UpdateStatus(ctx, ro, testActor); err != nil {
			t.Fatal(err)
		}
		return "/api/v1/services/" + svc + "/rolloutplan?release=" + rel, nil
	}
	action := rt.Path[strings.LastIndex(rt.Path, "/")+1:]
	name := "m-" + action + "-" + suffix
	var evs []rollout.Event
	switch action {
	case server.ActionResume:
		evs = []rollout.Event{rollout.Pause{}}
	case server.ActionRetry:
		evs = []rollout.Event{rollout.Abort{}}
	}
	startedRollout(t, e, name, []string{"admin", "deployer"}, evs...)
	return "/api/v1/rollouts/" + name + "/" + action, nil
}

func rolloutPhase(t testing.TB, e *env, name string) v1.RolloutPhase {
	t.Helper()
	o, err := e.admin.Get(context.Background(), v1.KindRollout, name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*v1.Rollout).Status.Phase
}

// TestRolloutApprovalGate checks that only a principal holding one of the gate's roles approves it,
// that others get 403 with the reason, and that the approval is audited with its approver.
func TestRolloutApprovalGate(t *testing.T) { onEveryBackend(t, testRolloutApprovalGate) }

func testRolloutApprovalGate(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	startedRollout(t, e, "gated", []string{"admin"})
	if got := rolloutPhase(t, e, "gated"); got != v1.RolloutWaitingApproval {
		t.Fatalf("phase %s, want WaitingApproval", got)
	}
	code := e.status("POST", "/api/v1/rollouts/gated/approve", e.secrets["viewer"], "", nil)
	if code != http.StatusForbidden {
		t.Errorf("approve as viewer: %d, want 403", code)
	}
	_, err := e.deploy.RolloutAction(context.Background(), "gated", server.ActionApprove, "")
	st := wantStatus(t, err, 403, v1.ReasonForbidden)
	if !strings.Contains(st.Message, "holds none of the roles admin") {
		t.Errorf("403 message %q should say which roles the gate wants", st.Message)
	}
	if got := rolloutPhase(t, e, "gated"); got != v1.RolloutWaitingApproval {
		t.Fatalf("after refused approvals: phase %s, want WaitingApproval", got)
	}
	ro, err := e.admin.RolloutAction(context.Background(), "gated", server.ActionApprove, "")
	if err != nil {
		t.Fatalf("approve as admin: %v", err)
	}
	if ro.Status.Phase != v1.RolloutSucceeded || len(ro.Status.Gates) == 0 || ro.Status.Gates[0].ApprovedBy != "token:admin" {
		t.Errorf("after approval: phase %s, gates %+v; want Succeeded, approved by token:admin", ro.Status.Phase, ro.Status.Gates)
	}
	evs, err := e.admin.Audit(context.Background(), client.AuditOptions{Kind: store.KindRolloutAudit, Name: "gated"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs.Items {
		if ev.Actor.Name == "admin" && strings.Contains(string(ev.Object), "approve token:admin") {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit entry of the approval by admin in %d RolloutAudit events", len(evs.Items))
	}
}

// TestRolloutActionErrors checks the answers to actions that cannot apply.
func TestRolloutActionErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.store.Create(ctx, &store.Object{Kind: v1.KindRollout, Name: "pending",
		Spec: json.RawMessage(`{"service":"web","release":"web-1"}`)}, testActor); err != nil {
		t.Fatal(err)
	}
	_, err := e.deploy.RolloutAction(ctx, "pending", server.ActionPause, "")
	wantStatus(t, err, 409, v1.ReasonConflict)
	_, err = e.deploy.RolloutAction(ctx, "nope", server.ActionPause, "")
	wantStatus(t, err, 404, v1.ReasonNotFound)
	startedRollout(t, e, "r", []string{"admin"})
	_, err = e.deploy.RolloutAction(ctx, "r", server.ActionResume, "")
	st := wantStatus(t, err, 409, v1.ReasonConflict)
	if !strings.Contains(st.Message, "not paused") {
		t.Errorf("resume of a running rollout: %q should say it is not paused", st.Message)
	}
	_, err = e.deploy.RolloutAction(ctx, "r", server.ActionPause, "r0")
	wantStatus(t, err, 400, v1.ReasonBadRequest)
	_, err = e.deploy.RolloutAction(ctx, "r", server.ActionRollback, "no-such-release")
	wantStatus(t, err, 400, v1.ReasonBadRequest)
	if ro, err := e.deploy.RolloutAction(ctx, "r", server.ActionPause, ""); err != nil || ro.Status.Phase != v1.RolloutPaused {
		t.Fatalf("pause = %v, %v; want Paused", ro, err)
	}
	if ro, err := e.deploy.RolloutAction(ctx, "r", server.ActionAbort, ""); err != nil || ro.Status.Phase != v1.RolloutAborted {
		t.Fatalf("abort = %v, %v; want Aborted", ro, err)
	}
	// Rollback of a finished rollout starts a new rollout of the target release, everywhere at once.
	if _, err := e.store.Create(ctx, &store.Object{Kind: v1.KindRelease, Name: "web-0",
		Spec: json.RawMessage(`{"service":"web","commit":{"sha":"0123456789abcdef0123456789abcdef01234567"},"serviceSpec":{"source":{"name":"shop"},"placement":{"clusterSelector":{}}}}`)}, testActor); err != nil {
		t.Fatal(err)
	}
	if _, err := e.deploy.RolloutAction(ctx, "r", server.ActionRollback, "web-0"); err != nil {
		t.Fatalf("rollback of a finished rollout: %v", err)
	}
	if o, err := e.admin.Get(ctx, v1.KindRollout, "web-0-rollback1"); err != nil {
		t.Errorf("rollback of a finished rollout created no new rollout: %v", err)
	} else if sp := o.(*v1.Rollout).Spec; sp.Release != "web-0" || sp.StrategySpec == nil || sp.StrategySpec.Waves[0].MaxParallel != "100%" {
		t.Errorf("rollback rollout spec %+v; want web-0 to every cluster at once", sp)
	}
	// Retry of an aborted rollout starts a new one.
	if _, err := e.deploy.RolloutAction(ctx, "r", server.ActionRetry, ""); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := e.admin.Get(ctx, v1.KindRollout, "web-1-retry2"); err != nil {
		t.Errorf("retry of an aborted rollout created no new rollout: %v", err)
	}
}

// TestRolloutPlanErrors checks the plan route's answers to what cannot be planned.
func TestRolloutPlanErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.viewer.RolloutPlan(ctx, "nope", "")
	wantStatus(t, err, 404, v1.ReasonNotFound)
	if _, err := e.store.Create(ctx, &store.Object{Kind: v1.KindService, Name: "web",
		Spec: json.RawMessage(`{"source":{"name":"shop"},"placement":{"clusterSelector":{}}}`)}, testActor); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Create(ctx, &store.Object{Kind: v1.KindRelease, Name: "api-1",
		Spec: json.RawMessage(`{"service":"api","commit":{"sha":"0123456789abcdef0123456789abcdef01234567"},"serviceSpec":{"source":{"name":"shop"},"placement":{"clusterSelector":{}}}}`)}, testActor); err != nil {
		t.Fatal(err)
	}
	_, err = e.viewer.RolloutPlan(ctx, "web", "")
	if st := wantStatus(t, err, 400, v1.ReasonBadRequest); !strings.Contains(st.Message, "no latest release") {
		t.Errorf("plan without a release: %q", st.Message)
	}
	_, err = e.viewer.RolloutPlan(ctx, "web", "api-1")
	if st := wantStatus(t, err, 422, v1.ReasonInvalid); !strings.Contains(st.Message, `release api-1 is a release of service "api"`) {
		t.Errorf("plan of another service's release: %q", st.Message)
	}
	_, err = e.viewer.RolloutPlan(ctx, "web", "nope")
	wantStatus(t, err, 422, v1.ReasonInvalid)
}
