// Package analysis runs AnalysisTemplates: it measures metrics on clusters
// and judges each result with CEL conditions, in the shape of Argo
// Rollouts' analysis.
//
// # Model
//
// Analyzer.Run takes a Request (a template's spec, the arguments per
// cluster as the rollout engine rendered them, the service, release and
// rollout) and measures every metric on every cluster named in Args: one
// task per (metric, cluster), running concurrently, Count measurements
// Interval apart, the first after InitialDelay (default at once). Before
// anything is measured, Run resolves each cluster's arguments (given values, else the template's
// defaults, themselves templates), renders every provider's templates
// (Go text/template with missingkey=error over .Args, .Cluster (Name,
// Labels, Vars from the stored Cluster), .Service, .Release, .Rollout)
// and compiles each metric's conditions once. Any error there ends the
// run Inconclusive, naming the metric and cluster: a broken template says
// nothing about the release, so the rollout pauses for a person instead of
// rolling back.
//
// Providers give a result; the result types are:
//   - prometheus: an instant query. A scalar or a one-sample vector is a
//     double; several samples a list of doubles (ordered by series labels);
//     no samples or NaN is no data;
//   - webhook: GET, JSON (at most 1 MiB), the value at a JSONPath subset
//     ($.a.b[0]['c']); a missing path or null is no data;
//   - health: the service's health in the latest agent report of the
//     cluster: 1 Healthy, 0.5 Progressing, 0 Degraded or Failed; no
//     report, a stale one, another release or Unknown is no data.
//     Default conditions: success result == 1.0, failure result == 0.0;
//   - job: a Kubernetes Job run in the cluster through its agent (see
//     job.go): 1 when it completed, 0 when it failed, read from the Job's
//     health in the agent report (a running Job is Progressing, a
//     completed one Healthy; the "Job Completed" message is checked too,
//     for agents older than that rule). Default condition: success
//     result == 1.0.
//
// Check(spec) finds broken conditions, templates and JSON paths without
// measuring, as a *v1.ValidationError naming each field; the server runs
// it whenever a template is created, updated or applied and refuses the
// template (422, nothing written).
//
// # Verdicts and counting
//
// A measurement is Failed when the failure condition is true, or when
// there is only a success condition and it is false; Successful when the
// success condition is true (or the failure condition alone is false);
// Inconclusive when both conditions exist and neither is true, or the
// provider had no data; Error when the provider or the evaluation failed.
// Errors count as inconclusive: they say nothing about the release. A
// metric on a cluster fails as soon as it has more Failed measurements
// than FailureLimit, is inconclusive as soon as Inconclusive plus Error
// exceed InconclusiveLimit, and after Count measurements passes if at
// least one succeeded (else it is inconclusive). The first failed or
// inconclusive metric ends the run (its remaining measurements stop); the
// run's phase is the worst metric phase, Failed over Inconclusive over
// Passed.
//
// # Invariants
//
//   - Run returns only Passed, Failed or Inconclusive, or Running when ctx
//     was cancelled; a measurement cut short by cancellation is not
//     recorded.
//   - progress is called one call at a time, when the measurements start,
//     after each measurement and with the final run, each time with a copy
//     the caller may keep.
//   - A condition is compiled once per metric; one evaluation is bounded
//     by a CEL cost limit and the condition text by 4 KiB.
//   - Every provider call has a timeout (Options.Timeout, JobTimeout).
//   - The Job provider removes its temporary assignment when a measurement
//     ends, also when ctx is cancelled.
package analysis
