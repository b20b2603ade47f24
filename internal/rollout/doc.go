// Package rollout is Flotilla's rollout engine core: a pure state machine
// that moves one release of one service across a fleet, wave by wave.
//
// # Model
//
// NewPlan applies a v1.RolloutStrategySpec to the targeted clusters. Every
// cluster belongs to the first wave whose selector matches it; a cluster in
// no wave is an error naming it (ErrUnplacedCluster). A canary is the first
// wave with traffic steps; a blue/green plan has two waves: the idle group
// (the one with less traffic, green on a tie) and the live group.
//
// State is the rollout as the runner persists it: plain JSON-serialisable
// data holding the plan, the phase, the position (Wave, Stage, Step, Gate),
// one ClusterState per cluster, the gate results and every timer as an
// absolute deadline. Step(state, event, now) returns the next state and the
// actions to carry out, in order: Assign (the engine's only effect on
// clusters: the assignment of a release), SetTraffic, StartAnalysis,
// StopAnalysis, RequestApproval, SetTimer and Notify.
//
// A wave runs its stages in order: window (wait for the time windows),
// before gates, update (at most MaxParallel clusters Updating at once; with
// Drain a cluster's weight goes to 0 before its Assign and back once it is
// Healthy), canary steps (the wave's share of traffic, then the step's
// analyses, one after the other, then its bake), after gates, and for blue/green the traffic switch
// and the hold. Gates run one at a time: an analysis waits for its
// AnalysisResult, an approval for an Approval from a user holding one of
// its roles (others get ErrNotPermitted), a bake for the wave's clusters
// to stay Healthy for its duration.
//
// # Invariants
//
//   - Step does no I/O and reads no clock; the same state, event and time
//     give the same result. Time zones are loaded once per process and
//     cached (NewPlan loads them first).
//   - On error the state is returned unchanged and no action is due. Step
//     reuses the memory of the state it is given; callers keep only the
//     returned state (or Clone first).
//   - A terminal phase (Succeeded, Failed, RolledBack, Aborted, Superseded)
//     accepts no event (ErrFinished), except that a rollback still
//     Restoring takes ClusterStatus reports: they only give clusters their
//     weight back.
//   - A cluster loses its traffic (drain, or the canary before its Assign)
//     only when the clusters left in rotation can carry it within their
//     declared capacities (ClusterInfo.Capacity) and some cluster keeps
//     traffic; otherwise the wave assigns fewer clusters or waits, says why
//     in State.Message, and goes on when weights come back or when a person
//     promotes (the next batch is then drained anyway).
//   - No cluster of wave N+1 is assigned before every cluster of wave N is
//     Healthy or Failed within the wave's budget and every gate of wave N
//     passed. A cluster's health counts only while its wave is current and
//     only for the release it is assigned.
//   - Unknown (an unreachable agent) never counts as healthy and never
//     fails a cluster by itself: the cluster stays Updating until it
//     reports or its progress deadline passes, then it counts as failed.
//   - A regression (Progressing or Degraded) of a Healthy cluster makes it
//     Updating again with a fresh progress deadline and restarts a running
//     bake once every cluster is Healthy again; Unknown holds a bake's end
//     without restarting it. A Failed report fails the cluster at once.
//   - Failure (a failed gate, or more failed clusters than MaxFailures) with
//     onFailure rollback sets the traffic first, then assigns every touched
//     cluster the release it had before (phase RolledBack at once; Failed
//     when nothing was touched). Untouched clusters get their planned
//     weight back at once; touched clusters (they ran the failed release)
//     get weight 0 and their planned weight once they report Healthy on
//     the release they went back to (the rollout is Restoring until then).
//     When no untouched cluster has planned traffic, every cluster gets
//     its planned weight at once instead. With onFailure pause the rollout
//     pauses: Resume or Retry re-runs the failed gate or reassigns the
//     failed clusters, Promote skips the gate or accepts the failures,
//     Abort rolls back. An Inconclusive analysis always pauses.
//   - Pause (also before Start) stops all progress; deadlines, bakes and
//     holds move by the time spent paused. A failure while paused is still
//     handled.
//   - Abort rolls back like a failure and ends Aborted; Rollback{To} sends
//     every touched cluster To (or its previous release), with the same
//     traffic. Superseded stops analyses and restores every planned weight
//     but reassigns nothing.
//   - Time windows are checked when a wave starts; a wave already running
//     is not stopped when a window closes. Outside them the rollout waits,
//     says why in State.Message, and sets a timer for the next opening
//     (found within 8 days, minute by minute).
//
// Canary steps give the canary wave Weight percent of the traffic, split
// evenly over its clusters, and the rest to the others; after the canary
// wave the weights found at planning come back. The runner executes
// actions in order, persists the state with them in one transaction, and
// turns SetTimer into a later Tick (extra ticks are harmless). Duplicate
// deliveries of an analysis result get ErrIllegalEvent and may be dropped.
//
// # Tests
//
// testdata/*.txt are scripts: a plan (strategy and clusters) then
// timestamped events, each followed by the actions and a compact state.
// TestScripts replays them; `go test ./internal/rollout -run TestScripts
// -update` rewrites the expected output after a deliberate change.
// TestRandomSequences checks the invariants above over random events.
package rollout
