// Package store defines how Flotilla keeps its state: API objects (as opaque
// JSON spec and status), an append-only event log, and API tokens, behind one
// Store interface with two implementations (store/sqlite, the default, and
// store/postgres) that pass one conformance suite (store/storetest).
//
// Invariants every implementation keeps:
//   - Every mutation writes the object and exactly one Event in one
//     transaction; nothing is half-written, and Apply is all or nothing.
//   - An object's ResourceVersion is the Seq of the event that last wrote it,
//     so versions grow across the whole store, not per object.
//   - Writes are serialised, so Seq order is commit order: a reader that has
//     seen Seq n will never later find a new event with Seq <= n. Watchers
//     resume with Events(after) without gaps or duplicates.
//   - Optimistic concurrency: Update, UpdateStatus, Delete and Apply with a
//     stale version fail with ErrConflict and write nothing.
//   - Generation grows only when spec, labels or annotations change; an
//     update that changes nothing is not written.
//
// Event digests are the SHA-256 of a canonical JSON form of {labels,
// annotations, spec} (see Digest), so an audit can show what changed
// without storing diffs.
package store
