-- Objects, their labels (indexed for selectors), the event log, the event
-- sequence counter and API tokens.
CREATE TABLE objects (
	kind             TEXT    NOT NULL,
	name             TEXT    NOT NULL,
	uid              TEXT    NOT NULL,
	labels           TEXT    NOT NULL,
	annotations      TEXT    NOT NULL,
	resource_version INTEGER NOT NULL,
	generation       INTEGER NOT NULL,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	spec             TEXT    NOT NULL,
	status           TEXT    NOT NULL,
	PRIMARY KEY (kind, name)
);

CREATE TABLE object_labels (
	kind  TEXT NOT NULL,
	name  TEXT NOT NULL,
	key   TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (kind, name, key)
) WITHOUT ROWID;

CREATE INDEX object_labels_by_value ON object_labels (kind, key, value, name);

CREATE TABLE events (
	seq           INTEGER PRIMARY KEY,
	time          INTEGER NOT NULL,
	type          TEXT    NOT NULL,
	kind          TEXT    NOT NULL,
	name          TEXT    NOT NULL,
	actor_kind    TEXT    NOT NULL,
	actor_name    TEXT    NOT NULL,
	object        TEXT    NOT NULL,
	digest_before TEXT    NOT NULL,
	digest_after  TEXT    NOT NULL
);

CREATE INDEX events_by_object ON events (kind, name, seq);

CREATE TABLE flotilla_seq (
	id    INTEGER PRIMARY KEY,
	value INTEGER NOT NULL
);

INSERT INTO flotilla_seq (id, value) VALUES (1, 0);

CREATE TABLE tokens (
	id         TEXT    PRIMARY KEY,
	name       TEXT    NOT NULL,
	hash       TEXT    NOT NULL UNIQUE,
	role       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER,
	created_by TEXT    NOT NULL
);
