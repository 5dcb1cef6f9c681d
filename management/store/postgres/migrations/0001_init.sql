-- Petrel schema v1 (PostgreSQL). Times are unix nanoseconds (UTC) in BIGINT
-- so they round-trip exactly; JSONB "data" holds the fields no constraint
-- or lookup needs. Constraint names are mapped to field names in errors.go.
CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    network    TEXT NOT NULL,
    created_at BIGINT,
    settings   JSONB NOT NULL
);

CREATE TABLE peers (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    public_key TEXT NOT NULL,
    ip         TEXT NOT NULL,
    dns_label  TEXT NOT NULL,
    data       JSONB NOT NULL,
    PRIMARY KEY (account_id, id),
    CONSTRAINT peers_public_key_uniq UNIQUE (account_id, public_key),
    CONSTRAINT peers_ip_uniq UNIQUE (account_id, ip),
    CONSTRAINT peers_dns_label_uniq UNIQUE (account_id, dns_label)
);

CREATE TABLE "groups" (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    data       JSONB NOT NULL,
    PRIMARY KEY (account_id, id),
    CONSTRAINT groups_name_uniq UNIQUE (account_id, name)
);

CREATE TABLE setup_keys (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    key_hash    BYTEA NOT NULL,
    reusable    BOOLEAN NOT NULL,
    usage_limit BIGINT NOT NULL,
    used_times  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked     BOOLEAN NOT NULL,
    last_used   BIGINT,
    data        JSONB NOT NULL,
    PRIMARY KEY (account_id, id),
    CONSTRAINT setup_keys_key_hash_uniq UNIQUE (key_hash)
);

CREATE TABLE policies (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    data       JSONB NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE routes (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    data       JSONB NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE nameserver_groups (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    data       JSONB NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE dns_zones (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    data       JSONB NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE admin_tokens (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    token_hash BYTEA NOT NULL,
    data       JSONB NOT NULL,
    PRIMARY KEY (account_id, id),
    CONSTRAINT admin_tokens_token_hash_uniq UNIQUE (token_hash)
);

CREATE TABLE server_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    private_key TEXT NOT NULL
);
