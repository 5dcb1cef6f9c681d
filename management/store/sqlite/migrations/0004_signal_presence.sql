-- Schema v4: cross-instance signal (docs/adr-005-ha-control-plane.md). Only
-- petrel-servers sharing a PostgreSQL database (--ha) use these tables; they
-- exist here so both dialects stay at the same schema version.
CREATE TABLE signal_instances (
    instance  TEXT PRIMARY KEY,
    url       TEXT NOT NULL,
    heartbeat INTEGER NOT NULL -- unix nanoseconds
) STRICT;

CREATE TABLE signal_presence (
    peer_key TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    epoch    INTEGER NOT NULL,
    seen_at  INTEGER NOT NULL -- unix nanoseconds
) STRICT;
