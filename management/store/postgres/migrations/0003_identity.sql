-- Schema v3: users signing in through the identity provider, their personal
-- access tokens, and the audit log. New fields of peers (user_id,
-- last_login), groups (idp_managed) and settings (login_expiration) live in
-- the JSON documents; rows written before v3 decode them as zero values.
CREATE TABLE users (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    idp_key    TEXT NOT NULL, -- issuer + ' ' + subject
    data       JSONB NOT NULL,
    PRIMARY KEY (account_id, id),
    CONSTRAINT users_idp_key_uniq UNIQUE (account_id, idp_key)
);

CREATE TABLE access_tokens (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    token_hash BYTEA NOT NULL,
    data       JSONB NOT NULL,
    PRIMARY KEY (account_id, id),
    CONSTRAINT access_tokens_token_hash_uniq UNIQUE (token_hash)
);

-- The audit log: append-only, kept (no retention), newest first by seq.
CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    at          BIGINT NOT NULL, -- unix nanoseconds
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    data        JSONB NOT NULL -- actor_email, detail
);

CREATE INDEX events_account_seq ON events (account_id, seq);
CREATE INDEX events_account_action ON events (account_id, action, seq);
CREATE INDEX events_account_target ON events (account_id, target_id, seq);
