package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// KindRolloutAudit events record what a rollout transition did, for the
// audit trail: the name is the rollout, the spec the events fed to the
// engine, who fed them and the actions that followed. They are not API
// object kinds, so watches of objects never carry them.
const KindRolloutAudit = "RolloutAudit"

// Leadership is a named lease that at most one holder has at a time (the
// rollout runner's). Epoch grows by one whenever a different holder takes
// it, or the same holder takes it again after it lapsed, so writes can be
// fenced by it.
type Leadership struct {
	Name      string
	Holder    string
	Epoch     int64
	RenewedAt time.Time
	ExpiresAt time.Time
}

// LeadershipHeldError says that another holder has an unexpired lease. It
// wraps ErrConflict.
type LeadershipHeldError struct{ Leadership Leadership }

// Error names the holder and until when it holds the lease.
func (e *LeadershipHeldError) Error() string {
	return fmt.Sprintf("leadership %s is held by %q (epoch %d) until %s", e.Leadership.Name, e.Leadership.Holder,
		e.Leadership.Epoch, e.Leadership.ExpiresAt.UTC().Format(time.RFC3339Nano))
}

// Unwrap lets errors.Is(err, ErrConflict) match.
func (e *LeadershipHeldError) Unwrap() error { return ErrConflict }

// Fence makes a write conditional on a leadership: it fails with
// ErrConflict unless Holder holds Name with Epoch, unexpired at Now.
type Fence struct {
	Name   string
	Holder string
	Epoch  int64
	Now    time.Time
}

// Transition is one step of a rollout as the runner persists it: the
// Rollout object's new status, the runner's own record of the rollout, and
// the assignments the step changes, written together or not at all.
type Transition struct {
	// Rollout carries the name, the new Status and the ResourceVersion the
	// step was computed from; a different stored version is ErrConflict.
	Rollout *Object
	// Record is the runner's full record of the rollout (opaque JSON).
	Record json.RawMessage
	// Done marks a rollout the runner no longer needs to load.
	Done bool
	// Assignments are applied as by SetAssignments.
	Assignments []Assignment
	// Audit, when not nil, is the spec of one KindRolloutAudit event.
	Audit any
	// Fence, when set, must hold for the write to happen.
	Fence *Fence
}

// TransitionResult is what CommitTransition wrote: the Rollout object as
// stored now and the desired state of every cluster whose assignments
// changed.
type TransitionResult struct {
	Rollout *Object
	Changed []DesiredState
}

// RolloutRecord is a Rollout object and the runner's record of it (nil
// before the runner first wrote one), read on one snapshot.
type RolloutRecord struct {
	Object *Object
	Record json.RawMessage
	Done   bool
}

// RolloutStore keeps what the rollout runner needs besides objects.
type RolloutStore interface {
	// AcquireLeadership takes or renews the lease name for holder. A
	// different holder with an unexpired lease gets *LeadershipHeldError.
	AcquireLeadership(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (*Leadership, error)
	// ReleaseLeadership ends holder's lease early (the epoch stays);
	// ErrNotFound if holder does not hold it.
	ReleaseLeadership(ctx context.Context, name, holder string) error
	// CommitTransition writes t in one transaction: the Rollout's status
	// (version-checked; a StatusUpdated event when it changed), the record,
	// the assignments (one KindAssignments event when they change anything)
	// and the audit event. Nothing is written on error.
	CommitTransition(ctx context.Context, t Transition, by Actor) (*TransitionResult, error)
	// RolloutRecords returns the Rollout objects with their records,
	// sorted by name: the named ones (missing names are skipped), or with
	// no names every rollout whose record is not Done.
	RolloutRecords(ctx context.Context, names ...string) ([]RolloutRecord, error)
	// AgentSummaries is AgentStatuses without the full reports (Report is
	// nil): what the runner polls to follow every agent's health and
	// heartbeat without reading every object of every report.
	AgentSummaries(ctx context.Context, clusters ...string) (map[string]*AgentStatus, error)
}
