package v1

import "time"

// Rollout moves a service's clusters to a release following a strategy. The
// system creates rollouts; people watch, promote, pause or abort them.
type Rollout struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     RolloutSpec   `json:"spec"`
	Status   RolloutStatus `json:"status,omitempty"`
}

// RolloutSpec names the service, the release and the strategy: Strategy
// names a RolloutStrategy, StrategySpec carries one inline; with neither,
// every matching cluster updates at once.
type RolloutSpec struct {
	Service      string               `json:"service"`
	Release      string               `json:"release"`
	Strategy     string               `json:"strategy,omitempty"`
	StrategySpec *RolloutStrategySpec `json:"strategySpec,omitempty"`
}

// RolloutPhase is the state of the whole rollout.
type RolloutPhase string

// Rollout phases.
const (
	RolloutPending         RolloutPhase = "Pending"
	RolloutProgressing     RolloutPhase = "Progressing"
	RolloutPaused          RolloutPhase = "Paused"
	RolloutWaitingApproval RolloutPhase = "WaitingApproval"
	RolloutSucceeded       RolloutPhase = "Succeeded"
	RolloutFailed          RolloutPhase = "Failed"
	RolloutRolledBack      RolloutPhase = "RolledBack"
	RolloutAborted         RolloutPhase = "Aborted"
	RolloutSuperseded      RolloutPhase = "Superseded"
)

// RolloutPhases lists every rollout phase in lifecycle order.
var RolloutPhases = []RolloutPhase{RolloutPending, RolloutProgressing, RolloutPaused, RolloutWaitingApproval,
	RolloutSucceeded, RolloutFailed, RolloutRolledBack, RolloutAborted, RolloutSuperseded}

// Terminal reports whether no further transition is possible.
func (p RolloutPhase) Terminal() bool {
	switch p {
	case RolloutSucceeded, RolloutFailed, RolloutRolledBack, RolloutAborted, RolloutSuperseded:
		return true
	}
	return false
}

// RolloutStatus is written by the rollout engine.
type RolloutStatus struct {
	Phase   RolloutPhase `json:"phase,omitempty"`
	Message string       `json:"message,omitempty"`
	// PreviousRelease is the last known good release, the rollback target.
	PreviousRelease string `json:"previousRelease,omitempty"`
	// CurrentWave and CurrentStep are indexes into the strategy's waves and
	// the current wave's steps; -1 when not started.
	// Waves names the plan's waves in order.
	Waves           []string   `json:"waves,omitempty"`
	CurrentWave     int        `json:"currentWave"`
	CurrentWaveName string     `json:"currentWaveName,omitempty"`
	CurrentStep     int        `json:"currentStep"`
	StartedAt       *time.Time `json:"startedAt,omitempty"`
	FinishedAt      *time.Time `json:"finishedAt,omitempty"`
	// Clusters holds one entry per target cluster, sorted by name.
	Clusters []RolloutCluster `json:"clusters,omitempty"`
	Gates    []GateResult     `json:"gates,omitempty"`
	Traffic  []TrafficWeight  `json:"traffic,omitempty"`
	// TrafficMessage says how the last traffic change went, for example
	// that it was skipped because no traffic manager is configured.
	TrafficMessage string `json:"trafficMessage,omitempty"`
	// WaitingFor names the open gate a person must act on (an approval),
	// with the roles that may approve it.
	WaitingFor *PendingApproval `json:"waitingFor,omitempty"`
	// Analyses records every analysis the rollout ran, with its
	// measurements, oldest first.
	Analyses []AnalysisRun `json:"analyses,omitempty"`
	// FailedAt is when the rollout first detected a failure (a failed gate
	// or a spent failure budget); RestoredAt is when every touched cluster
	// was healthy again on the release it was rolled back to. Together they
	// give the time to restore.
	FailedAt   *time.Time `json:"failedAt,omitempty"`
	RestoredAt *time.Time `json:"restoredAt,omitempty"`
}

// PendingApproval is an approval gate that is open.
type PendingApproval struct {
	Gate  string   `json:"gate"`
	Roles []string `json:"roles"`
}

// AnalysisRun is one run of an AnalysisTemplate during a rollout.
type AnalysisRun struct {
	ID       string    `json:"id"`
	Template string    `json:"template"`
	Wave     string    `json:"wave,omitempty"`
	Step     *int      `json:"step,omitempty"`
	Phase    GatePhase `json:"phase"` // Running, Passed, Failed or Inconclusive
	Message  string    `json:"message,omitempty"`
	// Clusters are the clusters the run's arguments were filled for.
	Clusters   []string       `json:"clusters,omitempty"`
	StartedAt  *time.Time     `json:"startedAt,omitempty"`
	FinishedAt *time.Time     `json:"finishedAt,omitempty"`
	Metrics    []MetricResult `json:"metrics,omitempty"`
}

// MetricResult is one metric of an analysis run for one cluster.
type MetricResult struct {
	Name    string `json:"name"`
	Cluster string `json:"cluster,omitempty"`
	// Condition is the CEL success condition (or "!(<failure condition>)").
	Condition string `json:"condition,omitempty"`
	// Threshold is the number the condition compares the result with, when
	// it is a simple comparison; dashboards draw it next to the values.
	Threshold    *float64      `json:"threshold,omitempty"`
	Phase        GatePhase     `json:"phase"`
	Measurements []Measurement `json:"measurements,omitempty"`
}

// Measurement phases.
const (
	MeasurementSuccessful   = "Successful"
	MeasurementFailed       = "Failed"
	MeasurementInconclusive = "Inconclusive"
	MeasurementError        = "Error"
)

// Measurement is one result of a metric's provider and its verdict.
type Measurement struct {
	Time time.Time `json:"time"`
	// Value is the result as a number when it is one; Raw is its JSON form.
	Value   *float64 `json:"value,omitempty"`
	Raw     string   `json:"raw,omitempty"`
	Phase   string   `json:"phase"`
	Message string   `json:"message,omitempty"`
}

// ClusterRolloutPhase is the state of one cluster within a rollout.
type ClusterRolloutPhase string

// Per-cluster rollout phases.
const (
	ClusterRolloutPending    ClusterRolloutPhase = "Pending"
	ClusterRolloutUpdating   ClusterRolloutPhase = "Updating"
	ClusterRolloutHealthy    ClusterRolloutPhase = "Healthy"
	ClusterRolloutFailed     ClusterRolloutPhase = "Failed"
	ClusterRolloutRolledBack ClusterRolloutPhase = "RolledBack"
	ClusterRolloutSkipped    ClusterRolloutPhase = "Skipped"
)

// RolloutCluster is one cluster's progress.
type RolloutCluster struct {
	Name    string              `json:"name"`
	Wave    string              `json:"wave,omitempty"`
	Phase   ClusterRolloutPhase `json:"phase"`
	Release string              `json:"release,omitempty"` // what the cluster is assigned now
	Health  string              `json:"health,omitempty"`  // as the agent reports it
	Message string              `json:"message,omitempty"`
	// UpdatedAt is when the cluster was assigned the rollout's release.
	UpdatedAt *time.Time `json:"updatedAt,omitempty"`
}

// GatePhase is the state of one gate.
type GatePhase string

// Gate phases.
const (
	GatePending      GatePhase = "Pending"
	GateRunning      GatePhase = "Running"
	GatePassed       GatePhase = "Passed"
	GateFailed       GatePhase = "Failed"
	GateInconclusive GatePhase = "Inconclusive"
)

// GateResult records one gate or step analysis the rollout went through.
type GateResult struct {
	Wave string `json:"wave"`
	// Position is before, after, step or verify.
	Position   string     `json:"position"`
	Step       *int       `json:"step,omitempty"`
	Index      int        `json:"index"`
	Type       string     `json:"type"` // approval | bake | analysis | window | deadline
	Phase      GatePhase  `json:"phase"`
	Message    string     `json:"message,omitempty"`
	ApprovedBy string     `json:"approvedBy,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// TrafficWeight is the weight one router gives one cluster's backend.
type TrafficWeight struct {
	Router  string `json:"router"`
	Cluster string `json:"cluster"`
	Backend string `json:"backend,omitempty"`
	Weight  int    `json:"weight"`
}

// GetTypeMeta implements Object.
func (r *Rollout) GetTypeMeta() *TypeMeta { return &r.TypeMeta }

// GetMetadata implements Object.
func (r *Rollout) GetMetadata() *ObjectMeta { return &r.Metadata }

// Default implements Object.
func (r *Rollout) Default() {
	r.TypeMeta.setDefaults(KindRollout)
	if r.Spec.StrategySpec != nil {
		r.Spec.StrategySpec.Default()
	}
	if r.Status.Phase == "" {
		r.Status.Phase = RolloutPending
		r.Status.CurrentWave = -1
		r.Status.CurrentStep = -1
	}
}

// Validate implements Object.
func (r *Rollout) Validate() error {
	v := newValidator(KindRollout, &r.Metadata)
	r.TypeMeta.validate(v, KindRollout)
	r.Metadata.validate(v)
	v.dnsLabel("spec.service", r.Spec.Service)
	v.dnsLabel("spec.release", r.Spec.Release)
	v.optionalDNSLabel("spec.strategy", r.Spec.Strategy)
	if r.Spec.Strategy != "" && r.Spec.StrategySpec != nil {
		v.add("spec", "strategy and strategySpec are mutually exclusive")
	}
	if r.Spec.StrategySpec != nil {
		r.Spec.StrategySpec.validate(v, "spec.strategySpec")
	}
	st := &r.Status
	if st.Phase != "" {
		ok := false
		for _, p := range RolloutPhases {
			ok = ok || p == st.Phase
		}
		if !ok {
			v.add("status.phase", "unsupported value %q", st.Phase)
		}
	}
	if st.CurrentWave < -1 {
		v.add("status.currentWave", "must be -1 or greater, got %d", st.CurrentWave)
	}
	if st.CurrentStep < -1 {
		v.add("status.currentStep", "must be -1 or greater, got %d", st.CurrentStep)
	}
	for i, c := range st.Clusters {
		p := index("status.clusters", i)
		v.dnsLabel(p+".name", c.Name)
		v.oneOf(p+".phase", string(c.Phase), string(ClusterRolloutPending), string(ClusterRolloutUpdating),
			string(ClusterRolloutHealthy), string(ClusterRolloutFailed), string(ClusterRolloutRolledBack),
			string(ClusterRolloutSkipped))
	}
	for i, g := range st.Gates {
		p := index("status.gates", i)
		v.oneOf(p+".phase", string(g.Phase), string(GatePending), string(GateRunning), string(GatePassed),
			string(GateFailed), string(GateInconclusive))
	}
	for i, t := range st.Traffic {
		if t.Weight < 0 || t.Weight > 100 {
			v.add(index("status.traffic", i)+".weight", "must be from 0 to 100, got %d", t.Weight)
		}
	}
	return v.err()
}

// RolloutPlan is what a rollout of a release would do, computed before
// anything starts (`flotilla rollout plan`).
type RolloutPlan struct {
	Service string `json:"service"`
	Release string `json:"release"`
	// Strategy names the RolloutStrategy used: "inline", or "" when every
	// targeted cluster updates at once.
	Strategy      string        `json:"strategy,omitempty"`
	Type          StrategyType  `json:"type"`
	TrafficRouter string        `json:"trafficRouter,omitempty"`
	OnFailure     FailurePolicy `json:"onFailure"`
	// Weights says where the clusters' current weights come from: read
	// from the router, or its capacities when the router cannot say.
	Weights string     `json:"weights,omitempty"`
	Waves   []PlanWave `json:"waves"`
}

// PlanWave is one wave of a RolloutPlan with its clusters resolved.
type PlanWave struct {
	Name             string        `json:"name"`
	MaxParallel      int           `json:"maxParallel"`
	MaxFailures      int           `json:"maxFailures"`
	Drain            bool          `json:"drain,omitempty"`
	ProgressDeadline string        `json:"progressDeadline"`
	Steps            []int         `json:"steps,omitempty"` // canary traffic weights
	Gates            []string      `json:"gates,omitempty"` // e.g. "before: approval by sre"
	Clusters         []PlanCluster `json:"clusters"`
}

// PlanCluster is one cluster of a PlanWave: the release it runs now (the
// rollback target) and its traffic weight.
type PlanCluster struct {
	Name     string `json:"name"`
	Previous string `json:"previous,omitempty"`
	Weight   int    `json:"weight"`
}

// RolloutActionRequest is the optional body of a rollout action; To is the
// release a rollback goes to (default: each cluster's previous release).
type RolloutActionRequest struct {
	To string `json:"to,omitempty"`
}
