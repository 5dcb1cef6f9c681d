-- Schema v5: singleton jobs and last-seen times (docs/adr-005-ha-control-plane.md).
-- Only petrel-servers sharing a PostgreSQL database (--ha) use these tables;
-- they exist here so both dialects stay at the same schema version.
CREATE TABLE peer_seen (
    peer_id TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL -- unix nanoseconds
) STRICT;

CREATE TABLE job_runs (
    job      TEXT NOT NULL,
    slot     INTEGER NOT NULL,
    instance TEXT NOT NULL,
    ran_at   INTEGER NOT NULL, -- unix nanoseconds
    PRIMARY KEY (job, slot)
) STRICT;
