-- Schema v5: singleton jobs and last-seen times for petrel-servers sharing
-- this database (--ha, docs/adr-005-ha-control-plane.md). Only --ha
-- instances write here.

-- When a peer was last connected to any instance. The instance holding a
-- peer's Sync stream refreshes it in one batched statement per interval
-- (no account version, no notification); the ephemeral-peer cleanup reads
-- it, so no instance removes a peer that is connected to another one.
CREATE TABLE peer_seen (
    peer_id TEXT PRIMARY KEY,
    seen_at TIMESTAMPTZ NOT NULL
);

-- One row per run of a singleton job and time slot: the instance whose
-- insert succeeds runs the job for that slot, every other instance skips
-- it. Pruned by the job itself.
CREATE TABLE job_runs (
    job      TEXT NOT NULL,
    slot     BIGINT NOT NULL,
    instance TEXT NOT NULL,
    ran_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job, slot)
);
