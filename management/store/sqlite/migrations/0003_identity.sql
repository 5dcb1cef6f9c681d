-- Schema v3: users signing in through the identity provider, their personal
-- access tokens, and the audit log. New fields of peers (user_id,
-- last_login), groups (idp_managed) and settings (login_expiration) live in
-- the JSON documents; rows written before v3 decode them as zero values.
CREATE TABLE users (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    idp_key    TEXT NOT NULL, -- issuer + " " + subject
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, idp_key)
) STRICT;

CREATE TABLE access_tokens (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
) STRICT;

-- The audit log: append-only, kept (no retention), newest first by seq.
-- AUTOINCREMENT: a seq is never reused, even after the newest row is gone
-- with its account.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL, -- unix nanoseconds
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    data        TEXT NOT NULL -- JSON: actor_email, detail
) STRICT;

CREATE INDEX events_account_seq ON events (account_id, seq);
CREATE INDEX events_account_action ON events (account_id, action, seq);
CREATE INDEX events_account_target ON events (account_id, target_id, seq);
