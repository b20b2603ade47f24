package rollout

import (
	"fmt"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Event is an input to Step. The set is closed: only this package's types
// implement it.
type Event interface {
	isEvent()
	String() string
}

// Health values an agent reports for a cluster.
const (
	HealthHealthy     = "Healthy"
	HealthProgressing = "Progressing"
	HealthDegraded    = "Degraded"
	HealthFailed      = "Failed"
	HealthUnknown     = "Unknown"
)

// Analysis outcomes.
const (
	AnalysisSuccessful   = "Successful"
	AnalysisFailed       = "Failed"
	AnalysisInconclusive = "Inconclusive"
)

type (
	// Start begins a Pending rollout.
	Start struct{}
	// ClusterStatus is the health an agent reports for the service on one
	// cluster, for the release it runs. Unknown means the agent is
	// unreachable; Release may then be empty.
	ClusterStatus struct {
		Cluster, Release, Health string
	}
	// AnalysisResult is the outcome of the analysis started with ID.
	AnalysisResult struct {
		ID, Result string
	}
	// Approval is a person approving the pending approval gate.
	Approval struct {
		User  string
		Roles []string
	}
	// Promote skips the current gate (or window wait, or hold).
	Promote struct{}
	// Pause holds the rollout until Resume; deadlines do not run meanwhile.
	Pause struct{}
	// Resume continues a paused rollout; after a failure it retries.
	Resume struct{}
	// Abort stops the rollout and rolls every touched cluster back.
	Abort struct{}
	// Rollback reassigns every touched cluster To (or, when empty, the
	// release each one had before) and ends the rollout.
	Rollback struct{ To string }
	// Retry reassigns the failed clusters of the current wave and re-runs
	// the failed gate of a rollout paused by a failure.
	Retry struct{}
	// Tick tells the engine that time passed (a timer fired).
	Tick struct{}
	// Superseded ends the rollout because release By replaces it; nothing
	// is rolled back.
	Superseded struct{ By string }
)

func (Start) isEvent()          {}
func (ClusterStatus) isEvent()  {}
func (AnalysisResult) isEvent() {}
func (Approval) isEvent()       {}
func (Promote) isEvent()        {}
func (Pause) isEvent()          {}
func (Resume) isEvent()         {}
func (Abort) isEvent()          {}
func (Rollback) isEvent()       {}
func (Retry) isEvent()          {}
func (Tick) isEvent()           {}
func (Superseded) isEvent()     {}

func (Start) String() string { return "start" }
func (e ClusterStatus) String() string {
	return fmt.Sprintf("status %s %s %s", e.Cluster, orDash(e.Release), e.Health)
}
func (e AnalysisResult) String() string { return "analysis " + e.ID + " " + e.Result }
func (e Approval) String() string       { return "approve " + e.User + " " + strings.Join(e.Roles, ",") }
func (Promote) String() string          { return "promote" }
func (Pause) String() string            { return "pause" }
func (Resume) String() string           { return "resume" }
func (Abort) String() string            { return "abort" }
func (e Rollback) String() string       { return "rollback " + orDash(e.To) }
func (Retry) String() string            { return "retry" }
func (Tick) String() string             { return "tick" }
func (e Superseded) String() string     { return "superseded " + e.By }

// Action is work Step asks the runner to carry out, in order.
type Action interface {
	isAction()
	String() string
}

type (
	// Assign sets the service's assignment on Clusters to Release (the
	// central contract: the engine's only effect on clusters). An empty
	// Release removes the assignment.
	Assign struct {
		Release  string   `json:"release"`
		Clusters []string `json:"clusters"`
	}
	// SetTraffic sets router weights for some clusters; other clusters keep
	// theirs.
	SetTraffic struct {
		Router  string             `json:"router"`
		Weights []v1.TrafficWeight `json:"weights"`
	}
	// StartAnalysis runs an AnalysisTemplate; Args holds the rendered
	// arguments per cluster. Its result comes back as AnalysisResult{ID}.
	StartAnalysis struct {
		ID       string                       `json:"id"`
		Template string                       `json:"template"`
		Args     map[string]map[string]string `json:"args"`
	}
	// StopAnalysis cancels a running analysis; its result no longer matters.
	StopAnalysis struct {
		ID string `json:"id"`
	}
	// RequestApproval asks a person holding one of Roles to approve Gate.
	RequestApproval struct {
		Gate  string   `json:"gate"`
		Roles []string `json:"roles"`
	}
	// SetTimer asks for a Tick at or after At. Extra ticks are harmless.
	SetTimer struct {
		At time.Time `json:"at"`
	}
	// Notify is a message for people (audit trail, chat).
	Notify struct {
		Message string `json:"message"`
	}
)

func (Assign) isAction()          {}
func (SetTraffic) isAction()      {}
func (StartAnalysis) isAction()   {}
func (StopAnalysis) isAction()    {}
func (RequestApproval) isAction() {}
func (SetTimer) isAction()        {}
func (Notify) isAction()          {}

func (a Assign) String() string {
	return "assign " + orDash(a.Release) + " " + strings.Join(a.Clusters, ",")
}
func (a SetTraffic) String() string {
	parts := make([]string, len(a.Weights))
	for i, w := range a.Weights {
		parts[i] = fmt.Sprintf("%s=%d", w.Cluster, w.Weight)
	}
	return "traffic " + a.Router + " " + strings.Join(parts, " ")
}
func (a StartAnalysis) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "start-analysis %s template=%s", a.ID, a.Template)
	for _, c := range sortedKeys(a.Args) {
		args := a.Args[c]
		kv := make([]string, 0, len(args))
		for _, k := range sortedKeys(args) {
			kv = append(kv, k+"="+args[k])
		}
		fmt.Fprintf(&b, " %s{%s}", c, strings.Join(kv, ","))
	}
	return b.String()
}
func (a StopAnalysis) String() string { return "stop-analysis " + a.ID }
func (a RequestApproval) String() string {
	return "request-approval " + a.Gate + " roles=" + strings.Join(a.Roles, ",")
}
func (a SetTimer) String() string { return "timer " + a.At.UTC().Format(time.RFC3339) }
func (a Notify) String() string   { return "notify " + a.Message }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
