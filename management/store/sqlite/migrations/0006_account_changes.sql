-- Schema v6: the change log (docs/adr-005-ha-control-plane.md). Only
-- petrel-servers sharing a PostgreSQL database (--ha) write it; the table
-- exists here so both dialects stay at the same schema version.
CREATE TABLE account_changes (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    changes    TEXT NOT NULL,
    at         INTEGER NOT NULL, -- unix nanoseconds
    PRIMARY KEY (account_id, version)
) STRICT;
