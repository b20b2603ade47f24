package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors of the agent side of the store; callers test them with errors.Is.
var (
	// ErrExpired: a bootstrap token or lease exists but its time is over.
	ErrExpired = errors.New("expired")
	// ErrUsed: a one-time bootstrap token was already redeemed.
	ErrUsed = errors.New("already used")
	// ErrDuplicate: an agent status report repeats a sequence number already
	// recorded (a retry); nothing was written.
	ErrDuplicate = errors.New("duplicate report")
)

// Event kinds the agent side writes to the log. They are not API object
// kinds, so watches of objects never carry them; the audit trail does.
const (
	// KindAssignments events record one SetAssignments call: the name is
	// the services it touched (comma-separated), the spec an
	// AssignmentsChange carrying the whole new desired state of every
	// cluster that changed, so other replicas can wake their agents
	// without reading the store.
	KindAssignments = "Assignments"
	// KindAgentCredential events record bootstrap tokens issued, agents
	// registered and credentials revoked; the name is the cluster.
	KindAgentCredential = "AgentCredential"
	// KindBundle events record bundles stored the first time; the name is
	// the digest.
	KindBundle = "Bundle"
	// KindAgentStatus events record meaningful changes of what an agent
	// reports (health, applied releases, versions, errors); the name is the
	// cluster.
	KindAgentStatus = "AgentStatus"
)

// BootstrapToken is a one-time, short-lived secret that lets an agent
// register a cluster; only the hash is stored.
type BootstrapToken struct {
	Hash      string
	Cluster   string
	CreatedAt time.Time
	ExpiresAt time.Time
	CreatedBy string
}

// AgentCredential is the stored form of a cluster's agent credential.
type AgentCredential struct {
	Cluster   string
	Hash      string
	CreatedAt time.Time
	// RevokedAt is set once the credential is revoked; it then never
	// authenticates again.
	RevokedAt *time.Time
}

// Lease says which agent instance (Holder) drives a cluster. Epoch grows by
// one whenever a different holder takes the lease, or the same holder
// takes it again after it lapsed.
type Lease struct {
	Cluster   string
	Holder    string
	Epoch     int64
	RenewedAt time.Time
	ExpiresAt time.Time
}

// LeaseHeldError says that another live agent holds the lease. It wraps
// ErrConflict.
type LeaseHeldError struct{ Lease Lease }

// Error names the holder and how long its lease lasts.
func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("cluster %s is held by another agent (holder %q, epoch %d) until %s",
		e.Lease.Cluster, e.Lease.Holder, e.Lease.Epoch, e.Lease.ExpiresAt.UTC().Format(time.RFC3339))
}

// Unwrap lets errors.Is(err, ErrConflict) match.
func (e *LeaseHeldError) Unwrap() error { return ErrConflict }

// Assignment says which release (and which bundle of it) one service runs
// on one cluster. Options are opaque JSON the agent needs to apply it (such
// as namespace, prune and self-heal), taken from the release.
type Assignment struct {
	Cluster   string          `json:"-"`
	Service   string          `json:"service"`
	Release   string          `json:"release"`
	Bundle    string          `json:"bundle"`
	Options   json.RawMessage `json:"options,omitempty"`
	UpdatedAt time.Time       `json:"-"`
	UpdatedBy string          `json:"-"`
}

// DesiredState is everything one cluster should run: its assignments sorted
// by service and their digest. Seq is the event that last changed it (0 if
// it never changed).
type DesiredState struct {
	Cluster     string       `json:"cluster"`
	Digest      string       `json:"digest"`
	Assignments []Assignment `json:"assignments"`
	Seq         int64        `json:"-"`
}

// AssignmentsChange is the spec of a KindAssignments event.
type AssignmentsChange struct {
	Changed []DesiredState `json:"changed"`
}

// DesiredDigest returns "sha256:<hex>" of the canonical form of a set of
// assignments (sorted by service; cluster and bookkeeping excluded). The
// digest depends only on content, so an agent that holds it holds exactly
// that state.
func DesiredDigest(as []Assignment) string {
	sorted := slices.Clone(as)
	slices.SortFunc(sorted, func(a, b Assignment) int { return strings.Compare(a.Service, b.Service) })
	h := sha256.New()
	for _, a := range sorted {
		opts, err := Canonical(a.Options)
		if err != nil || len(a.Options) == 0 {
			opts = nil
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\n", a.Service, a.Release, a.Bundle, opts)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// AgentStatus is the latest report of a cluster's agent. Report holds the
// full report as opaque JSON; Summary the part whose change is worth an
// event (health, applied releases, versions, error count).
type AgentStatus struct {
	Cluster           string
	Seq               int64
	Epoch             int64
	AgentVersion      string
	KubernetesVersion string
	Health            string
	AppliedDigest     string
	Summary           json.RawMessage
	Report            json.RawMessage
	LastHeartbeat     time.Time
}

// AgentStore keeps what the agent protocol needs. Bootstrap tokens and
// credentials are stored hashed; assignments change a cluster's desired
// state and write one KindAssignments event per call, in one
// transaction; heartbeats write no event unless the summary changes.
type AgentStore interface {
	// CreateBootstrapToken stores a one-time token for a cluster and
	// records a KindAgentCredential event.
	CreateBootstrapToken(ctx context.Context, t BootstrapToken, by Actor) error
	// RedeemBootstrapToken marks the token with hash used and stores cred
	// as the credential of the token's cluster (replacing any earlier one),
	// in one transaction. Errors: ErrNotFound (unknown), ErrUsed, ErrExpired.
	RedeemBootstrapToken(ctx context.Context, hash string, cred AgentCredential, now time.Time) (cluster string, err error)
	// AgentByHash returns the live credential with that hash, or
	// ErrNotFound when it is unknown or revoked.
	AgentByHash(ctx context.Context, hash string) (*AgentCredential, error)
	// RevokeAgent revokes a cluster's credential, drops its lease and its
	// unused bootstrap tokens, and records an event. ErrNotFound when the
	// cluster has neither a credential nor a bootstrap token.
	RevokeAgent(ctx context.Context, cluster string, by Actor) error
	// AcquireLease takes or renews the lease of cluster for holder. A
	// different holder with an unexpired lease gets *LeaseHeldError.
	AcquireLease(ctx context.Context, cluster, holder string, ttl time.Duration, now time.Time) (*Lease, error)
	// ReleaseLease ends holder's lease early; ErrNotFound if holder does
	// not hold it.
	ReleaseLease(ctx context.Context, cluster, holder string) error
	// GetLease returns the lease of cluster (expired or not) or ErrNotFound.
	GetLease(ctx context.Context, cluster string) (*Lease, error)
	// SetAssignments applies every change in one transaction: an
	// Assignment with an empty Release removes (Cluster, Service). It
	// returns the new desired state of each cluster whose state changed;
	// their Seq is that of the call's one event.
	SetAssignments(ctx context.Context, as []Assignment, by Actor) ([]DesiredState, error)
	// Desired returns the desired state of cluster (empty, with the digest
	// of no assignments, when it has none).
	Desired(ctx context.Context, cluster string) (*DesiredState, error)
	// BundleAssigned reports whether some assignment of cluster names
	// digest.
	BundleAssigned(ctx context.Context, cluster, digest string) (bool, error)
	// PutBundle stores data under digest once; storing it again is a no-op
	// that returns created=false. The caller verifies the digest.
	PutBundle(ctx context.Context, digest string, data []byte, by Actor) (created bool, err error)
	// GetBundle returns the bytes of a bundle or ErrNotFound.
	GetBundle(ctx context.Context, digest string) ([]byte, error)
	// HasBundle reports whether a bundle is stored.
	HasBundle(ctx context.Context, digest string) (bool, error)
	// RecordAgentStatus stores st if st.Seq is greater than the stored
	// one, else returns ErrDuplicate. It writes a KindAgentStatus event
	// (and returns changed) only when the summary differs from the stored
	// one.
	RecordAgentStatus(ctx context.Context, st AgentStatus) (changed bool, err error)
	// AgentStatuses returns the stored status of each named cluster that
	// has one; no names returns all.
	AgentStatuses(ctx context.Context, clusters ...string) (map[string]*AgentStatus, error)
}
