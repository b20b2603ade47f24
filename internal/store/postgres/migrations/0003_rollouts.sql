-- The rollout runner: named leaderships (one runner per store) and each
-- rollout's record, written with the Rollout's status in one transaction.
CREATE TABLE leaderships (
	name       TEXT COLLATE "C" PRIMARY KEY,
	holder     TEXT    NOT NULL,
	epoch      BIGINT  NOT NULL,
	renewed_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL
);

CREATE TABLE rollout_records (
	name       TEXT COLLATE "C" PRIMARY KEY,
	record     TEXT    NOT NULL,
	done       BOOLEAN NOT NULL,
	updated_at BIGINT  NOT NULL
);
