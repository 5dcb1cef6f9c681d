-- Schema v6: the change log of petrel-servers sharing this database (--ha,
-- docs/adr-005-ha-control-plane.md). Every transaction of an --ha instance
-- that advances an account's version writes, in the same transaction, the
-- row of that version: the objects it put or deleted and the settings it
-- saved. Another instance applies the rows after its own copy's version in
-- order, and reloads the whole account only when the log no longer holds
-- them (pruned, or written by a server without the log). Pruned by the
-- janitor's slot winner.
CREATE TABLE account_changes (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    version    BIGINT NOT NULL,
    changes    TEXT NOT NULL, -- JSON: the writes of this version, in order
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, version)
);
CREATE INDEX account_changes_at ON account_changes (at);
