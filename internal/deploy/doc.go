// Package deploy turns Git commits into releases and releases into
// assignments: it is the server side of sources, rendering and placement.
//
// # Model
//
// A Controller follows Sources, Services and Clusters in the store and
// keeps three promises:
//
//   - Sources: every Source is fetched at its interval, at once when it is
//     created or changed, and at once when its webhook is called (Trigger).
//     Source.status records the commit the ref resolves to (id, message,
//     author, time), when it was last fetched, and on failure the error in
//     status.message and a Stale=True condition; the last good commit stays.
//     Status is written only when one of these changes, and lastFetched is
//     otherwise refreshed at most every LastFetchedRefresh, so polling an
//     unchanged source adds nothing to the audit trail.
//     Concurrent fetches of one repository share one round trip (package
//     source).
//   - Releases: when a Service's source is at a commit for which the
//     service has no release yet, the service is rendered for every
//     Cluster its placement selects ({} selects all), once per distinct
//     set of effective variables (package render), the bundles are stored
//     by digest, and one immutable Release is created with the commit, a
//     snapshot of the service's spec and the bundle of each cluster.
//     Service.status.latestRelease names it. Then it is handed over: a
//     service with a strategy gets a Pending Rollout named like the release
//     (the rollout runner owns it from there); a service without one is
//     assigned the release on every targeted cluster at once and
//     status.currentRelease names it. A fetch or render failure creates no
//     release: the previous one stays in force and the Service (or Source)
//     carries Stale=True with the reason. A render of every cluster must
//     succeed, so a release is never partial and never empty.
//   - Placement: when a Cluster is created or its labels or variables
//     change, every service whose selector now matches it and that it does
//     not run yet is assigned the service's currentRelease; every service
//     it runs whose selector no longer matches is removed from it. When a
//     service without a strategy is released after its selector changed,
//     the clusters its previous release ran on that are no longer targeted
//     drop it in the same transaction; a deleted service is taken off every
//     cluster any of its releases was placed on (its releases stay). At
//     start-up each service's selector is compared with the clusters its
//     current release lists, so clusters that changed while no controller
//     ran are placed too.
//
// # Release names and immutability
//
// A release is named "<service>-<commit[:10]>-<spec[:6]>", where spec is
// the SHA-256 of the canonical JSON of the service's spec (the service part
// is shortened so the name fits 63 characters). The name is a function of
// what the release is, so the same commit and spec never make two releases,
// a restart or a second replica finds the release already made, and a
// release that exists is never handed over again by the automation (so a
// release a rollout marked failed is not rolled out again).
//
// A release's spec never changes. Its status.bundles only grows: a cluster
// that joins after the release was cut is rendered from the release's own
// commit and spec snapshot and added as a new (cluster, digest) entry;
// entries already there are never changed. Rendering is a function of the
// commit, the spec and the cluster's variables, so the release still means
// exactly "this commit with this spec" for every cluster it lists. Changes
// of an existing cluster's variables take effect with the service's next
// release.
//
// # Leadership
//
// Every server replica runs a Controller, but only the one holding the
// store leadership LeadershipName ("deploy", a lease with an epoch, TTL
// Options.LeaseTTL, renewed every third of it) fetches, releases and
// places; the others wait for the lease. It is separate from the rollout
// runner's leadership so that each loop fails over on its own. A term
// starts from the store alone (every source fetched, every service
// reconciled, placements checked), so nothing is lost with a leader. Writes
// are not fenced by the epoch: a deposed leader that still finishes a cut
// makes the same release name, which the store refuses as a duplicate, so
// leadership saves repeated work rather than guarding correctness.
//
// A webhook may reach any replica. Trigger records the call in the
// Source's status.lastWebhook as WebhookActor; the leader follows the event
// log and fetches the source when it sees that write (a NOTIFY away on
// PostgreSQL), so the request also survives a change of leader.
//
// # Concurrency
//
// Work items (fetch a source, reconcile a service, place a cluster) go
// through one queue served by Options.Workers goroutines; an item is never
// processed twice at once, and one added while it runs is run again after.
// Work on one service (cutting a release, placing it on a cluster) is
// serialised by a per-service lock, so a placement never races a newer
// release. Status writes read-modify-write with retry on store.ErrConflict,
// because the rollout runner writes Service status too.
//
// The controller follows the store's event log (Store.Events and
// WaitForEvent) rather than polling objects, and does nothing for status
// updates, so its own writes do not feed back.
package deploy
