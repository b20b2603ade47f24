// Package postgres hosts the store on PostgreSQL through pgx (pgxpool), for
// production and for several server replicas on one database.
//
// Model: writes run at READ COMMITTED under the row lock of the one-row
// event sequence (see store/sqlstore), which serialises writers until they
// commit, so Seq order is commit order on every replica. Because that lock
// is held through the WAL flush, writes are group-committed: one goroutine
// runs the writes waiting at that moment in one transaction, numbering
// their events in memory and pipelining the statements whose results are
// not needed (batch.go explains the failure handling).
// Reads that need one snapshot (a list page and its resourceVersion) run in
// REPEATABLE READ read-only transactions. A trigger on the events table
// sends NOTIFY flotilla_events at commit; each store keeps one dedicated
// connection LISTENing and wakes its WaitForEvent callers, so a write on one
// replica wakes watchers on all of them. The listener reconnects on its own
// and wakes everyone after reconnecting, and WaitForEvent still polls as a
// fallback. Migrations run under a transaction-level advisory lock, so
// replicas starting together migrate once.
package postgres
