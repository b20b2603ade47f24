package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/bundle"
)

// Format names the snapshot encoding; a snapshot in another format is refused.
const Format = "flotilla.dev/agent-state/v1"

// Errors callers branch on.
var (
	// ErrCorrupt: stored state does not match its checksum or digest, or cannot be decoded.
	ErrCorrupt = errors.New("stored agent state is corrupt")
	// ErrTooLarge: a bundle does not fit the store (a Secret holds at most about 1 MiB).
	ErrTooLarge = errors.New("too large for the agent state store")
)

// Snapshot is the agent's saved state.
type Snapshot struct {
	// Desired is the last desired state the server sent whose bundles are all stored.
	Desired *v1.DesiredState `json:"desired,omitempty"`
	// Offline is the period without the server in progress (Until zero), or ended but not yet
	// acknowledged by the server; Last is the latest acknowledged one, carried in reports.
	Offline *v1.OfflinePeriod `json:"offline,omitempty"`
	Last    *v1.OfflinePeriod `json:"last,omitempty"`
	// Pending is a status report posted without an acknowledgement; it is sent again with the
	// same seq, so the server stores it at most once.
	Pending *v1.AgentStatusReport `json:"pending,omitempty"`
	// Holder is the lease holder name of the agent that saved the snapshot: the agent that
	// replaces it on this state gives that lease up instead of waiting for it to expire.
	Holder string `json:"holder,omitempty"`
	// Seq is the last status sequence number used.
	Seq     int64     `json:"seq,omitempty"`
	SavedAt time.Time `json:"savedAt"`
}

// Store keeps one Snapshot, the bundles it names and the agent's credential.
type Store interface {
	// Load returns the saved snapshot, nil when there is none.
	Load(ctx context.Context) (*Snapshot, error)
	// Save replaces the snapshot.
	Save(ctx context.Context, s *Snapshot) error
	// Bundle returns the stored bytes of digest after checking that they hash to it; nil when
	// the bundle is not stored.
	Bundle(ctx context.Context, digest string) ([]byte, error)
	// PutBundle stores a bundle's bytes under digest; they must hash to it.
	PutBundle(ctx context.Context, digest string, data []byte) error
	// RetainBundles removes every stored bundle whose digest is not in keep.
	RetainBundles(ctx context.Context, keep []string) error
	// Credential returns the stored agent credential, "" when there is none.
	Credential(ctx context.Context) (string, error)
	// SaveCredential stores the agent credential.
	SaveCredential(ctx context.Context, cred string) error
	// String says where the state lives, for logs.
	String() string
}

// envelope is the stored form of a Snapshot: its JSON and that JSON's SHA-256.
type envelope struct {
	Format   string          `json:"format"`
	SHA256   string          `json:"sha256"`
	Snapshot json.RawMessage `json:"snapshot"`
}

// Encode returns the stored form of s.
func Encode(s *Snapshot) ([]byte, error) {
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode agent state: %w", err)
	}
	sum := sha256.Sum256(raw)
	return json.MarshalIndent(envelope{Format: Format, SHA256: hex.EncodeToString(sum[:]), Snapshot: raw}, "", " ")
}

// Decode checks and decodes the stored form of a snapshot; where names it in errors.
func Decode(where string, data []byte) (*Snapshot, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", where, ErrCorrupt, err)
	}
	if env.Format != Format {
		return nil, fmt.Errorf("%s: format %q, want %q: %w", where, env.Format, Format, ErrCorrupt)
	}
	// The envelope is indented for people; the checksum is of the compact JSON.
	var compact bytes.Buffer
	if err := json.Compact(&compact, env.Snapshot); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", where, ErrCorrupt, err)
	}
	sum := sha256.Sum256(compact.Bytes())
	if got := hex.EncodeToString(sum[:]); got != env.SHA256 {
		return nil, fmt.Errorf("%s: checksum %s, recorded %s: %w", where, got, env.SHA256, ErrCorrupt)
	}
	var s Snapshot
	if err := json.Unmarshal(env.Snapshot, &s); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", where, ErrCorrupt, err)
	}
	return &s, nil
}

// checkBundle verifies that data hashes to digest.
func checkBundle(where, digest string, data []byte) error {
	if err := bundle.ValidDigest(digest); err != nil {
		return err
	}
	if got := bundle.Digest(data); got != digest {
		return fmt.Errorf("%s: bundle hashes to %s, want %s: %w", where, got, digest, ErrCorrupt)
	}
	return nil
}

// hexOf returns the hex part of a valid digest.
func hexOf(digest string) string { return digest[len(bundle.DigestPrefix):] }
