-- The agent protocol: one-time bootstrap tokens, per-cluster agent
-- credentials, leases, assignments with each cluster's desired-state
-- digest, content-addressed bundles and the latest agent status.
CREATE TABLE bootstrap_tokens (
	hash       TEXT COLLATE "C" PRIMARY KEY,
	cluster    TEXT COLLATE "C" NOT NULL,
	created_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL,
	created_by TEXT    NOT NULL,
	used_at    BIGINT
);

CREATE INDEX bootstrap_tokens_by_cluster ON bootstrap_tokens (cluster);

CREATE TABLE agent_credentials (
	cluster    TEXT COLLATE "C" PRIMARY KEY,
	hash       TEXT    NOT NULL UNIQUE,
	created_at BIGINT  NOT NULL,
	revoked_at BIGINT
);

CREATE TABLE agent_leases (
	cluster    TEXT COLLATE "C" PRIMARY KEY,
	holder     TEXT    NOT NULL,
	epoch      BIGINT  NOT NULL,
	renewed_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL
);

CREATE TABLE assignments (
	cluster    TEXT COLLATE "C" NOT NULL,
	service    TEXT COLLATE "C" NOT NULL,
	release    TEXT    NOT NULL,
	bundle     TEXT    NOT NULL,
	options    TEXT    NOT NULL,
	updated_at BIGINT  NOT NULL,
	updated_by TEXT    NOT NULL,
	PRIMARY KEY (cluster, service)
);

CREATE INDEX assignments_by_bundle ON assignments (cluster, bundle);

CREATE TABLE desired_states (
	cluster TEXT COLLATE "C" PRIMARY KEY,
	digest  TEXT    NOT NULL,
	seq     BIGINT  NOT NULL
);

CREATE TABLE bundles (
	digest     TEXT COLLATE "C" PRIMARY KEY,
	data       BYTEA   NOT NULL,
	size       BIGINT  NOT NULL,
	created_at BIGINT  NOT NULL
);

CREATE TABLE agent_status (
	cluster            TEXT COLLATE "C" PRIMARY KEY,
	seq                BIGINT  NOT NULL,
	epoch              BIGINT  NOT NULL,
	agent_version      TEXT    NOT NULL,
	kubernetes_version TEXT    NOT NULL,
	health             TEXT    NOT NULL,
	applied_digest     TEXT    NOT NULL,
	summary            TEXT    NOT NULL,
	report             TEXT    NOT NULL,
	last_heartbeat     BIGINT  NOT NULL
);
