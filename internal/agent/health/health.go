package health

import (
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Status is the health of an object, a service or a cluster. The zero value
// is not a valid Status; use the constants.
type Status string

// The health values, from best to worst. Rollup returns the worst.
const (
	// Healthy: the object has reached the state its spec asks for.
	Healthy Status = "Healthy"
	// Progressing: the object is moving towards its spec (rollout under way,
	// being deleted, waiting for a controller to observe it).
	Progressing Status = "Progressing"
	// Unknown: the status could not be computed (unreadable status, an error).
	Unknown Status = "Unknown"
	// Degraded: the object got to its spec once and has fallen back, or it is missing.
	Degraded Status = "Degraded"
	// Failed: the object cannot reach its spec without a change (deadline exceeded,
	// failed Job, apply refused).
	Failed Status = "Failed"
)

var rank = map[Status]int{Healthy: 0, Progressing: 1, Unknown: 2, Degraded: 3, Failed: 4}

// Worse reports whether s is worse than o. An unrecognised value counts as Unknown.
func (s Status) Worse(o Status) bool { return s.rank() > o.rank() }

func (s Status) rank() int {
	if r, ok := rank[s]; ok {
		return r
	}
	return rank[Unknown]
}

// Result is the health of one object with a short human message.
type Result struct {
	Status  Status `json:"status"`
	Message string `json:"message,omitempty"`
}

// Missing is the Result of an object that should exist and does not.
func Missing() Result { return Result{Status: Degraded, Message: "object not found"} }

// Compute returns the health of a live object: kstatus first, then the
// per-kind rules. A nil object is Missing.
func Compute(u *unstructured.Unstructured) Result {
	if u == nil {
		return Missing()
	}
	res, err := status.Compute(u)
	if err != nil {
		return Result{Status: Unknown, Message: fmt.Sprintf("status: %v", err)}
	}
	var r Result
	switch res.Status {
	case status.CurrentStatus:
		r = Result{Status: Healthy, Message: res.Message}
	case status.InProgressStatus:
		r = Result{Status: Progressing, Message: res.Message}
	case status.TerminatingStatus:
		r = Result{Status: Progressing, Message: "terminating"}
	case status.FailedStatus:
		r = Result{Status: Failed, Message: res.Message}
	case status.NotFoundStatus:
		r = Missing()
	default:
		r = Result{Status: Unknown, Message: res.Message}
	}
	if rule, ok := rules[u.GroupVersionKind().GroupKind().String()]; ok {
		r = rule(u, r)
	}
	return r
}

// rules refine the kstatus result per group-kind ("Kind.group", "Kind" for core).
var rules = map[string]func(*unstructured.Unstructured, Result) Result{
	"Deployment.apps":  degradedAfterRollout,
	"StatefulSet.apps": degradedAfterRollout,
	"Job.batch":        jobOutcome,
}

// degradedAfterRollout marks a workload Degraded when its controller has
// observed the current spec, all replicas run the current template, and yet
// fewer than the wanted number are ready: the rollout finished and then pods
// were lost, which kstatus reports as mere progress.
func degradedAfterRollout(u *unstructured.Unstructured, r Result) Result {
	if r.Status != Progressing || u.GetDeletionTimestamp() != nil {
		return r
	}
	obj := u.Object
	observed, _, _ := unstructured.NestedInt64(obj, "status", "observedGeneration")
	if observed != u.GetGeneration() {
		return r
	}
	want, found, _ := unstructured.NestedInt64(obj, "spec", "replicas")
	if !found {
		want = 1
	}
	updated, _, _ := unstructured.NestedInt64(obj, "status", "updatedReplicas")
	replicas, _, _ := unstructured.NestedInt64(obj, "status", "replicas")
	ready, _, _ := unstructured.NestedInt64(obj, "status", "readyReplicas")
	if want == 0 || updated != want || replicas != want || ready >= want {
		return r
	}
	if u.GetKind() == "Deployment" && !rolloutComplete(obj) {
		return r
	}
	return Result{Status: Degraded, Message: fmt.Sprintf("rollout complete but only %d/%d replicas ready", ready, want)}
}

// rolloutComplete reports whether a Deployment's Progressing condition says
// its newest ReplicaSet became available.
func rolloutComplete(obj map[string]any) bool {
	conds, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		if m["type"] == "Progressing" && m["status"] == "True" && m["reason"] == "NewReplicaSetAvailable" {
			return true
		}
	}
	return false
}

// Rollup returns the worst of the given statuses; Healthy when there are none.
func Rollup(statuses ...Status) Status {
	worst := Healthy
	for _, s := range statuses {
		if s.Worse(worst) {
			worst = s
		}
	}
	return worst
}
