package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Errors returned by every Store; callers test them with errors.Is.
var (
	// ErrNotFound: the object (or token) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: Create found an object with the same kind and name.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the resourceVersion given is not the stored one.
	ErrConflict = errors.New("conflict: the object was changed since it was read")
	// ErrInvalid: the request itself is malformed (missing kind or name,
	// spec that is not JSON, a bad continue token, duplicates in an Apply).
	ErrInvalid = errors.New("invalid")
)

// Object is the stored form of any API object. The store treats Spec and
// Status as opaque JSON; the server converts API objects to and from it.
type Object struct {
	Kind        string
	Name        string
	UID         string
	Labels      map[string]string
	Annotations map[string]string
	// ResourceVersion is the Seq of the event that last wrote the object; it
	// is 0 in a Create request.
	ResourceVersion int64
	// Generation grows by one whenever Spec, Labels or Annotations change.
	Generation int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Spec       json.RawMessage
	Status     json.RawMessage
}

// ListOptions narrow and page a List.
type ListOptions struct {
	// Selector filters by labels; nil selects everything.
	Selector labels.Selector
	// Limit is the page size; 0 means no limit.
	Limit int
	// Continue is the token of the previous page.
	Continue string
}

// ObjectList is one page of a List, sorted by name. Continue is empty on the
// last page. ResourceVersion is the latest Seq when the page was read.
type ObjectList struct {
	Items           []*Object
	Continue        string
	ResourceVersion int64
}

// Actor is who made a change: a person, an API token, a cluster agent or the
// system itself.
type Actor struct {
	Kind string // user | token | agent | system
	Name string
}

// Actor kinds.
const (
	ActorUser   = "user"
	ActorToken  = "token"
	ActorAgent  = "agent"
	ActorSystem = "system"
)

// EventType says what a change did.
type EventType string

// Event types.
const (
	Created       EventType = "Created"
	Updated       EventType = "Updated"
	StatusUpdated EventType = "StatusUpdated"
	Deleted       EventType = "Deleted"
)

// Event is one entry of the append-only change log; Seq grows by one per
// change and its order is the commit order.
type Event struct {
	Seq   int64
	Time  time.Time
	Type  EventType
	Kind  string
	Name  string
	Actor Actor
	// Object is the state after the change; for Deleted the last state.
	Object *Object
	// DigestBefore and DigestAfter are Digest of the object before and after
	// the change; "" where there is no object.
	DigestBefore string
	DigestAfter  string
}

// EventFilter narrows Events; zero fields do not filter.
type EventFilter struct {
	Kinds []string
	Name  string
	// Actor matches the actor's name.
	Actor string
	// Since and Until bound the event time, inclusive and exclusive.
	Since time.Time
	Until time.Time
}

// ApplyResult says what Apply did to one object.
type ApplyResult struct {
	Object *Object
	Action string // created | updated | unchanged
}

// Apply actions.
const (
	ActionCreated   = "created"
	ActionUpdated   = "updated"
	ActionUnchanged = "unchanged"
)

// KindToken events record API tokens created and revoked; the name is the
// token's name and the spec its id, role and expiry, never its hash.
const KindToken = "Token"

// Token is an API token; only the hash of its secret is stored.
type Token struct {
	ID        string
	Name      string
	Hash      string
	Role      string
	CreatedAt time.Time
	ExpiresAt *time.Time
	CreatedBy string
}

// Store keeps API objects, the event log and API tokens. Every mutation
// writes the object and its event in one transaction; writes are serialised
// so that event order is commit order.
type Store interface {
	// Create stores a new object; obj.ResourceVersion must be 0. The store
	// sets UID, ResourceVersion, Generation (1) and the timestamps.
	Create(ctx context.Context, obj *Object, by Actor) (*Object, error)
	// Get returns one object or ErrNotFound.
	Get(ctx context.Context, kind, name string) (*Object, error)
	// List returns objects of one kind sorted by name, filtered and paged.
	List(ctx context.Context, kind string, opts ListOptions) (*ObjectList, error)
	// Update replaces labels, annotations and spec and keeps Status;
	// obj.ResourceVersion must equal the stored one, else ErrConflict. An
	// update that changes nothing writes nothing and returns the stored
	// object.
	Update(ctx context.Context, obj *Object, by Actor) (*Object, error)
	// UpdateStatus replaces only Status, under the same version check.
	UpdateStatus(ctx context.Context, obj *Object, by Actor) (*Object, error)
	// Delete removes an object; resourceVersion 0 deletes unconditionally.
	// It returns the last state.
	Delete(ctx context.Context, kind, name string, resourceVersion int64, by Actor) (*Object, error)
	// Apply creates or updates every object in one transaction: all or
	// nothing. A non-zero ResourceVersion must match; Status is kept.
	Apply(ctx context.Context, objs []*Object, by Actor) ([]ApplyResult, error)
	// Events returns up to limit events with Seq > after in ascending order
	// (limit 0 means a default of 1000).
	Events(ctx context.Context, after int64, limit int, f EventFilter) ([]Event, error)
	// WaitForEvent returns nil as soon as an event with Seq > after exists,
	// or ctx's error.
	WaitForEvent(ctx context.Context, after int64) error
	// LatestSeq returns the highest Seq, 0 when the log is empty.
	LatestSeq(ctx context.Context) (int64, error)
	// CreateToken stores a token; a duplicate ID or hash is ErrAlreadyExists.
	// A KindToken event records who created it.
	CreateToken(ctx context.Context, t Token, by Actor) error
	// TokenByHash finds a token by the hash of its secret or ErrNotFound.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	// ListTokens returns every token sorted by ID.
	ListTokens(ctx context.Context) ([]Token, error)
	// DeleteToken removes a token or returns ErrNotFound.
	// A KindToken event records who revoked it.
	DeleteToken(ctx context.Context, id string, by Actor) error
	// AgentStore keeps the agent protocol's records (see agent.go).
	AgentStore
	// RolloutStore keeps the rollout runner's leadership and records (see
	// rollout.go).
	RolloutStore
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}
