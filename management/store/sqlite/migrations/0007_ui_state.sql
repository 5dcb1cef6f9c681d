-- Schema v7: dashboard sessions and sign-ins shared by petrel-servers on one
-- PostgreSQL database (--ha). A single petrel-server keeps them in memory;
-- the table exists here so both dialects stay at the same schema version.
CREATE TABLE ui_state (
    kind       TEXT NOT NULL,
    key        BLOB NOT NULL,
    data       TEXT NOT NULL,
    expires_at INTEGER NOT NULL, -- unix nanoseconds
    PRIMARY KEY (kind, key)
) STRICT;
