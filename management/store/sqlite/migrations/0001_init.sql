-- Petrel schema v1 (SQLite). Times are unix nanoseconds (UTC); JSON
-- documents in "data" hold the fields no constraint or lookup needs.
CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    network    TEXT NOT NULL,
    created_at INTEGER,
    settings   TEXT NOT NULL
) STRICT;

CREATE TABLE peers (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    public_key TEXT NOT NULL,
    ip         TEXT NOT NULL,
    dns_label  TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, public_key),
    UNIQUE (account_id, ip),
    UNIQUE (account_id, dns_label)
) STRICT;

CREATE TABLE "groups" (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, name)
) STRICT;

CREATE TABLE setup_keys (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    key_hash    BLOB NOT NULL UNIQUE,
    reusable    INTEGER NOT NULL,
    usage_limit INTEGER NOT NULL,
    used_times  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked     INTEGER NOT NULL,
    last_used   INTEGER,
    data        TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
) STRICT;

CREATE TABLE policies (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
) STRICT;

CREATE TABLE routes (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
) STRICT;

CREATE TABLE nameserver_groups (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
) STRICT;

CREATE TABLE dns_zones (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
) STRICT;

CREATE TABLE admin_tokens (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
) STRICT;

CREATE TABLE server_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    private_key TEXT NOT NULL
) STRICT;
