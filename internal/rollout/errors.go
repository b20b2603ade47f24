package rollout

import "errors"

// Errors returned by Plan and Step. Callers branch on them with errors.Is;
// the wrapped message names the cluster, wave or event concerned.
var (
	// ErrInvalidStrategy means the strategy cannot be planned as written.
	ErrInvalidStrategy = errors.New("invalid strategy")
	// ErrUnplacedCluster means a targeted cluster falls in no wave.
	ErrUnplacedCluster = errors.New("cluster in no wave")
	// ErrUnknownCluster means an event names a cluster outside the plan.
	ErrUnknownCluster = errors.New("unknown cluster")
	// ErrFinished means the rollout is in a terminal phase and accepts no
	// further transition.
	ErrFinished = errors.New("rollout is finished")
	// ErrNotPermitted means an approval came from a principal without an
	// allowed role.
	ErrNotPermitted = errors.New("not permitted")
	// ErrIllegalEvent means the event makes no sense in the current state
	// (resume when not paused, an analysis result nobody waits for, ...).
	ErrIllegalEvent = errors.New("illegal event")
)
