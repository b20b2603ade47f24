// Package kpi computes Flotilla's delivery measures from the rollout history: deployment
// frequency, lead time for changes, change failure rate and time to restore, for the fleet and
// per service, over a period ending now.
//
// The model: a Change is one rollout reduced to what the measures need (its service, final
// phase, the commit time of its release, and when it finished, failed and was restored). Compute
// is a pure function of the changes, the period and the current time; it reads no clock and
// does no I/O, so the same history always gives the same report.
//
// Invariants: a rollout counts in a period by the time it finished (FinishedAt), a restore by the
// time it was restored (RestoredAt). Only Succeeded rollouts are deployments and only they have a
// lead time (commit time to FinishedAt). Finished rollouts are those Succeeded, Failed,
// RolledBack or Aborted; a Superseded one neither delivered nor failed, so it counts in neither
// side of the change failure rate. Failures are the Failed and RolledBack ones. Times are
// medians, robust against the odd release that waited a week for approval.
package kpi
