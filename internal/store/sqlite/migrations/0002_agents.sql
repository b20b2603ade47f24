-- The agent protocol: one-time bootstrap tokens, per-cluster agent
-- credentials, leases, assignments with each cluster's desired-state
-- digest, content-addressed bundles and the latest agent status.
CREATE TABLE bootstrap_tokens (
	hash       TEXT    PRIMARY KEY,
	cluster    TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	created_by TEXT    NOT NULL,
	used_at    INTEGER
);

CREATE INDEX bootstrap_tokens_by_cluster ON bootstrap_tokens (cluster);

CREATE TABLE agent_credentials (
	cluster    TEXT    PRIMARY KEY,
	hash       TEXT    NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);

CREATE TABLE agent_leases (
	cluster    TEXT    PRIMARY KEY,
	holder     TEXT    NOT NULL,
	epoch      INTEGER NOT NULL,
	renewed_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);

CREATE TABLE assignments (
	cluster    TEXT    NOT NULL,
	service    TEXT    NOT NULL,
	release    TEXT    NOT NULL,
	bundle     TEXT    NOT NULL,
	options    TEXT    NOT NULL,
	updated_at INTEGER NOT NULL,
	updated_by TEXT    NOT NULL,
	PRIMARY KEY (cluster, service)
) WITHOUT ROWID;

CREATE INDEX assignments_by_bundle ON assignments (cluster, bundle);

CREATE TABLE desired_states (
	cluster TEXT    PRIMARY KEY,
	digest  TEXT    NOT NULL,
	seq     INTEGER NOT NULL
);

CREATE TABLE bundles (
	digest     TEXT    PRIMARY KEY,
	data       BLOB    NOT NULL,
	size       INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE agent_status (
	cluster            TEXT    PRIMARY KEY,
	seq                INTEGER NOT NULL,
	epoch              INTEGER NOT NULL,
	agent_version      TEXT    NOT NULL,
	kubernetes_version TEXT    NOT NULL,
	health             TEXT    NOT NULL,
	applied_digest     TEXT    NOT NULL,
	summary            TEXT    NOT NULL,
	report             TEXT    NOT NULL,
	last_heartbeat     INTEGER NOT NULL
);
