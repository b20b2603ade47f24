// Package sqlstore implements store.Store once, in SQL that both SQLite and
// PostgreSQL accept ($1..$N parameters, INSERT ... RETURNING, integer
// timestamps in Unix nanoseconds, text columns for JSON). The backends
// (store/sqlite, store/postgres) supply a Backend: how to run a serialised
// write transaction, a consistent read, and how to recognise a unique
// violation; and their own migrations, because column types and collations
// differ.
//
// Model: table objects holds one row per (kind, name); object_labels one row
// per label, indexed by (kind, key, value) so selector listing is an index
// lookup; events is the append-only log keyed by seq; flotilla_seq is a
// one-row counter. Every write transaction first increments that counter
// ("UPDATE ... RETURNING"): on PostgreSQL the row lock it takes serialises
// writers until commit, so Seq order is commit order; on SQLite BEGIN
// IMMEDIATE already does. A transaction that fails or changes nothing rolls
// back, so Seq has no gaps.
//
// Migrations are a small hand-written runner rather than goose: they are
// forward-only numbered SQL files embedded per backend, applied in one
// transaction each and recorded in schema_migrations. That is all Flotilla
// needs, and it avoids goose's package-level dialect and file-system state,
// which two backends in one binary would share.
package sqlstore
