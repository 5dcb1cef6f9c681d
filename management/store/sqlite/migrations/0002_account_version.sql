-- Per-account write version: every committed mutation checks and bumps it
-- (UPDATE ... WHERE version = expected), so a writer holding a stale copy of
-- an account is refused instead of overwriting newer state.
ALTER TABLE accounts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
