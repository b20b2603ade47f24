package v1

import "time"

// KPIReport is the delivery performance of the fleet and of each service over one period,
// computed from the rollout history (GET /api/v1/kpis).
type KPIReport struct {
	// Period is the length asked for ("7d"); From and To bound it (To is when it was computed).
	Period string    `json:"period"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Service is the service the report was narrowed to, "" for the whole fleet.
	Service string `json:"service,omitempty"`
	// Fleet covers every rollout (of Service when set); Services each service apart, by name.
	Fleet    KPIs         `json:"fleet"`
	Services []ServiceKPI `json:"services,omitempty"`
}

// ServiceKPI is the KPIs of one service.
type ServiceKPI struct {
	Service string `json:"service"`
	KPIs    `json:",inline"`
}

// KPIs are the four delivery measures over a period. A measure with nothing to measure (no
// deployment, no finished rollout, no restore) is absent rather than zero.
type KPIs struct {
	// Deployments counts rollouts that succeeded in the period; DeploymentsPerDay is that
	// count over the period's days.
	Deployments       int     `json:"deployments"`
	DeploymentsPerDay float64 `json:"deploymentsPerDay"`
	// LeadTimeSeconds is the median time from a release's commit to its rollout succeeding.
	LeadTimeSeconds *float64 `json:"leadTimeSeconds,omitempty"`
	// Finished counts rollouts that ended in the period (succeeded, failed, rolled back or
	// aborted); Failures those that failed or were rolled back. ChangeFailureRate is their ratio.
	Finished          int      `json:"finished"`
	Failures          int      `json:"failures"`
	ChangeFailureRate *float64 `json:"changeFailureRate,omitempty"`
	// Restores counts failures restored in the period; TimeToRestoreSeconds is the median time
	// from a failure being detected to every touched cluster being healthy again.
	Restores             int      `json:"restores"`
	TimeToRestoreSeconds *float64 `json:"timeToRestoreSeconds,omitempty"`
	// Buckets split the period for charts (hours for periods up to two days, else days).
	Buckets []KPIBucket `json:"buckets,omitempty"`
}

// KPIBucket is one slice of a period.
type KPIBucket struct {
	Start           time.Time `json:"start"`
	Deployments     int       `json:"deployments"`
	Failures        int       `json:"failures"`
	LeadTimeSeconds *float64  `json:"leadTimeSeconds,omitempty"`
}
