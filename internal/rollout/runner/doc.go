// Package runner carries out rollouts: it feeds the pure engine
// (internal/rollout) what happens in the fleet and does what the engine
// asks, persisting every transition.
//
// # Model
//
// One runner per store is active: it holds the store leadership
// LeadershipName (a lease renewed every third of its TTL); the others
// wait. While it leads, it tracks every Rollout whose record is not done.
// A Pending rollout is planned (PlanFor: the service's strategy, the
// clusters the release has a bundle for that match the service's
// placement, each cluster's current assignment as its previous release,
// weights from Cluster.spec.traffic) after every other unfinished rollout
// of the same service ends Superseded; only the newest one runs.
//
// Events come from the store: agent status changes (KindAgentStatus
// events, plus a heartbeat poll that notices silent agents, which count as
// Unknown after DisconnectAfter) become ClusterStatus events for the
// rollout's service; timers are the deadlines, bakes, holds and windows
// the engine state holds; analyses run in goroutines and report back;
// people's actions (Act) are transitions of their own, written by
// whichever replica served them, that the leader reads back from the
// event log.
//
// Each transition is one store.Transition: the Rollout's status, the
// runner's Record (the engine state with the analysis it waits for, the
// analysis runs, FailedAt and RestoredAt) and the assignments of its
// Assign actions, in one database transaction, version-checked against the
// Rollout and fenced by the leadership epoch. Side effects that are not
// database writes are derived from the record after it is stored, so a
// runner that takes over redoes exactly what is outstanding: it runs the
// analysis the record says is open again, and sets the traffic weights the
// record holds (SetWeights is absolute, so repeating it is harmless).
//
// Notifications (Options.Notifier) are handed over after the transition
// that made them is stored, never before: the engine's Notify actions,
// approval requests, restorations, and phase changes that people's
// actions (Act, on any replica) made, once the leader reads them back. A
// takeover does not repeat them; they are a courtesy, the audit trail is
// the record. Metrics (Options.Registry) move only while the runner leads.
//
// The leader's loop is single-threaded: it feeds every rollout what
// changed, steps the engine, and writes the resulting transitions in
// batches (up to CommitParallelism at once, so PostgreSQL commits them
// together). Analysis results are stepped ahead of everything else,
// between batches: a failed analysis sends its clusters back without
// waiting for a pass over every rollout in flight.
//
// # Invariants
//
//   - Nothing the engine decided is lost or done twice: a transition is
//     stored whole or not at all; a conflicting write (a person's action, a
//     lost leadership) discards the step and reads the rollout again, and
//     statuses are fed afresh (the engine takes a repeated status as a
//     no-op).
//   - Only a leader that still holds its epoch writes (Fence).
//   - A rollout's end is reflected once: success sets the service's
//     currentRelease; a failure, rollback or abort marks the release failed
//     (Release.status.failed) so automation leaves it alone until
//     `rollout retry`; after a rollback RestoredAt is recorded once every
//     touched cluster is Healthy on the release it went back to.
//   - Traffic errors pause the rollout with the reason; without a traffic
//     manager weights are recorded as skipped, visibly (status
//     trafficMessage and the audit trail).
//   - Weights that a transition sets before an Assign are in force (set
//     and read back) before the transition, with its assignments, is
//     written: the leader sets them first (leadTraffic); if the router
//     refuses, the same events are stepped again with the rollout paused,
//     so nothing is assigned. A restart in between is harmless: the record
//     still holds the old weights, which the next leader re-asserts. Act,
//     which cannot set weights, hands such actions to the leader
//     (Record.Deferred). Rollbacks are not held up by a router.
//   - A rolled back rollout stays tracked while the engine is Restoring
//     (touched clusters at weight 0 until healthy on their release);
//     RestoredAt waits for their weights to be in force.
package runner
