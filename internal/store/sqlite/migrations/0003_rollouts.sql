-- The rollout runner: named leaderships (one runner per store) and each
-- rollout's record, written with the Rollout's status in one transaction.
CREATE TABLE leaderships (
	name       TEXT    PRIMARY KEY,
	holder     TEXT    NOT NULL,
	epoch      INTEGER NOT NULL,
	renewed_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);

CREATE TABLE rollout_records (
	name       TEXT    PRIMARY KEY,
	record     TEXT    NOT NULL,
	done       INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
