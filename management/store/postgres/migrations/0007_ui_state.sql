-- Schema v7: the dashboard's sessions and sign-ins in progress, for
-- petrel-servers sharing this database (--ha), so that any instance serves
-- a browser whichever instance it signed in through. Keyed by the SHA-256
-- of the browser's cookie value (the table holds no usable cookie); data is
-- JSON; expires_at only lets old rows be swept (the server judges expiry
-- from the data). A single petrel-server keeps them in memory.
CREATE TABLE ui_state (
    kind       TEXT NOT NULL, -- 'session' or 'signin'
    key        BYTEA NOT NULL,
    data       TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX ui_state_expires ON ui_state (expires_at);
