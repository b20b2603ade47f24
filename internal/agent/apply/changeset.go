package apply

import (
	"errors"
)

// Action is what Apply did with one object.
type Action string

// The actions of a ChangeSet.
const (
	// Created: the object did not exist and was created.
	Created Action = "created"
	// Configured: the object existed and the API server stored a new version.
	Configured Action = "configured"
	// Unchanged: the object was applied and the API server changed nothing.
	Unchanged Action = "unchanged"
	// Skipped: no request was made (desired hash unchanged since the last
	// apply), or a prune candidate was left alone (Reason says why).
	Skipped Action = "skipped"
	// Deleted: the object was pruned (or was already gone).
	Deleted Action = "deleted"
	// Failed: apply or delete failed; Err says why, naming the object first.
	Failed Action = "failed"
)

// Change is what happened to one object.
type Change struct {
	Object ObjectRef `json:"object"`
	Action Action    `json:"action"`
	// Reason explains a Skipped prune candidate or a Failed action.
	Reason string `json:"reason,omitempty"`
	// Err is set when Action is Failed.
	Err error `json:"-"`
}

// ChangeSet is the result of one Apply: one Change per desired object in
// apply order, then one per prune candidate in prune order.
type ChangeSet struct {
	Service string   `json:"service"`
	Release string   `json:"release,omitempty"`
	Changes []Change `json:"changes"`
}

// Count returns how many changes have the action a.
func (c *ChangeSet) Count(a Action) int {
	n := 0
	for _, ch := range c.Changes {
		if ch.Action == a {
			n++
		}
	}
	return n
}

// Err joins the errors of the failed changes; nil when nothing failed.
func (c *ChangeSet) Err() error {
	var errs []error
	for _, ch := range c.Changes {
		if ch.Err != nil {
			errs = append(errs, ch.Err)
		}
	}
	return errors.Join(errs...)
}
