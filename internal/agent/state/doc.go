// Package state keeps what a Flotilla agent needs to go on enforcing its cluster's desired state
// without the server: the last desired state the server sent, the bytes of every bundle it names,
// the agent's credential, and the bookkeeping of an offline period and of a status report not yet
// acknowledged.
//
// # Model
//
// A Store holds one Snapshot and a set of bundles. Two stores exist: Dir, files in a directory
// (out-of-cluster agents, --state-dir), and Secrets, Secrets in one namespace of the managed
// cluster itself (in-cluster agents, --state-namespace; Secrets because bundles may carry Secret
// manifests). Both use the same encoding: the snapshot is JSON inside an envelope that records its
// SHA-256, and each bundle is stored under its digest as its canonical bytes.
//
// # Invariants
//
//   - Load refuses a snapshot whose checksum does not match and a bundle whose bytes do not hash to
//     its digest (ErrCorrupt): the agent never enforces a state it cannot verify.
//   - Writes replace whole files atomically (write, sync, rename) or whole Secrets, so a crash
//     leaves the old or the new version, never a mix.
//   - The agent saves a snapshot only once every bundle it names is stored, so a loaded snapshot is
//     complete or is refused.
package state
