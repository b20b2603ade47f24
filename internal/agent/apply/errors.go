package apply

import "errors"

// Errors callers branch on. Everything else is reported per object in a
// ChangeSet or Report, or returned wrapped with its subject.
var (
	// ErrEmptyDesired: the request has no objects and does not say the
	// service was removed; Flotilla never prunes a whole service because its
	// desired state came back empty.
	ErrEmptyDesired = errors.New("desired set is empty and the service was not removed: refusing to prune")
	// ErrInvalid: the request or one of its objects is unusable; nothing was
	// written.
	ErrInvalid = errors.New("invalid request")
	// ErrInventory: the service's inventory could not be read or written;
	// nothing was pruned.
	ErrInventory = errors.New("inventory unavailable")
)
