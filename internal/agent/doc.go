// Package agent is the loop that runs once per cluster: it holds the cluster's lease on the
// control plane, long-polls the cluster's desired state, fetches each assigned bundle by digest,
// converges the cluster with the apply engine (internal/agent/apply) and reports what it applied
// and observed.
//
// Invariants: the agent only ever connects out to the server. It acts only while it holds the
// cluster's lease, and every status report carries that lease's epoch and a sequence number that
// rises across restarts (it starts from the clock), so the server can drop retries and reports
// from an agent that lost the lease. A service is pruned only when the server's desired state,
// read successfully, no longer assigns it; an unreachable server or a failed read never removes
// anything. Bundles are verified against their digest by the client before they are applied.
//
// Not yet here: keeping the last desired state on disk for offline enforcement across
// restarts, and storing the credential in a Secret for in-cluster installs.
package agent
