-- Schema v4: cross-instance signal for petrel-servers sharing this database
-- (--ha, docs/adr-005-ha-control-plane.md). Only --ha instances write here.

-- One row per running instance, refreshed every few seconds; an instance
-- whose heartbeat is older than the TTL is dead and its presence rows are
-- ignored.
CREATE TABLE signal_instances (
    instance  TEXT PRIMARY KEY,
    url       TEXT NOT NULL,   -- where the others forward envelopes to it
    heartbeat TIMESTAMPTZ NOT NULL
);

-- Where each peer's signal stream is registered. The newest registration
-- (highest epoch, from signal_presence_epoch) wins, whatever the commit
-- order; an instance removes a row only while it still holds it.
CREATE TABLE signal_presence (
    peer_key TEXT PRIMARY KEY, -- base64 WireGuard public key
    instance TEXT NOT NULL,
    epoch    BIGINT NOT NULL,
    seen_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX signal_presence_instance ON signal_presence (instance);

CREATE SEQUENCE signal_presence_epoch;
