-- Objects, their labels (indexed for selectors), the event log, the event
-- sequence counter and API tokens. Text keys use the "C" collation so that
-- names sort by bytes, as on SQLite.
CREATE TABLE objects (
	kind             TEXT COLLATE "C" NOT NULL,
	name             TEXT COLLATE "C" NOT NULL,
	uid              TEXT   NOT NULL,
	labels           TEXT   NOT NULL,
	annotations      TEXT   NOT NULL,
	resource_version BIGINT NOT NULL,
	generation       BIGINT NOT NULL,
	created_at       BIGINT NOT NULL,
	updated_at       BIGINT NOT NULL,
	spec             TEXT   NOT NULL,
	status           TEXT   NOT NULL,
	PRIMARY KEY (kind, name)
);

CREATE TABLE object_labels (
	kind  TEXT COLLATE "C" NOT NULL,
	name  TEXT COLLATE "C" NOT NULL,
	key   TEXT COLLATE "C" NOT NULL,
	value TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (kind, name, key)
);

CREATE INDEX object_labels_by_value ON object_labels (kind, key, value, name);

CREATE TABLE events (
	seq           BIGINT PRIMARY KEY,
	time          BIGINT NOT NULL,
	type          TEXT   NOT NULL,
	kind          TEXT COLLATE "C" NOT NULL,
	name          TEXT COLLATE "C" NOT NULL,
	actor_kind    TEXT   NOT NULL,
	actor_name    TEXT   NOT NULL,
	object        TEXT   NOT NULL,
	digest_before TEXT   NOT NULL,
	digest_after  TEXT   NOT NULL
);

CREATE INDEX events_by_object ON events (kind, name, seq);

CREATE TABLE flotilla_seq (
	id    INTEGER PRIMARY KEY,
	value BIGINT  NOT NULL
);

INSERT INTO flotilla_seq (id, value) VALUES (1, 0);

CREATE TABLE tokens (
	id         TEXT   PRIMARY KEY,
	name       TEXT   NOT NULL,
	hash       TEXT   NOT NULL UNIQUE,
	role       TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT,
	created_by TEXT   NOT NULL
);

-- Every statement that appends events notifies the listeners of every
-- replica; the notification is delivered at commit.
CREATE FUNCTION flotilla_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('flotilla_events', '');
	RETURN NULL;
END
$$;

CREATE TRIGGER events_notify AFTER INSERT ON events
	FOR EACH STATEMENT EXECUTE FUNCTION flotilla_notify_events();
