// Package agent is the loop that runs once per cluster: it holds the cluster's lease on the
// control plane, long-polls the cluster's desired state, fetches each assigned bundle by digest,
// converges the cluster with the apply engine (internal/agent/apply) and reports what it applied
// and observed.
//
// # Offline
//
// Every desired state the server sends is kept, with the bytes of its bundles, in a state store
// (package state: a directory or Secrets in the cluster) before it is applied. When the server
// cannot be reached (no connection, timeout, 5xx, 429) the agent goes on enforcing the last
// desired state it has, from memory or, after a restart, from the store: it applies what is not
// applied and, every observe interval, corrects drift where self-heal is on. What it did is
// recorded in an offline period (v1.OfflinePeriod), kept in the store too, and sent with the first
// status report the server takes afterwards; a report that got no answer is sent again with the
// same seq, so the server stores it once.
//
// # Invariants
//
//   - The agent only ever connects out to the server.
//   - It acts on the cluster while it holds the cluster's lease, or while the server cannot be
//     reached; never after the server refused it (another agent holds the lease: 409, or its
//     credential was revoked: 401/403).
//   - An agent started from a snapshot saved under another holder name is that agent's
//     replacement (same state store): it gives that lease up once before taking its own. Agents
//     with different state stores never do; the second one is refused until the first is gone.
//   - Every status report carries the lease epoch and a sequence number that rises across
//     restarts (it starts from the clock and from the saved seq), so the server drops retries
//     and reports from an agent that lost the lease.
//   - A service is removed (pruned) only on a desired state the server sent during this run and
//     that does not assign it; candidates are the services assigned before and every service with
//     an inventory in the cluster (unassigned while the agent was down). A saved state, an
//     unreachable server, a failed read or a bundle that cannot be fetched never removes anything.
//   - Bundles are verified against their digest before they are applied or stored, and again
//     when they are loaded from the store; a saved state that does not verify is not enforced.
package agent
