-- Logins of the console (identity/sessions.h, docs/CONSOLE.md "Logins").

-- A password is optional (API clients keep their bearer token): an argon2id
-- string from libsodium's crypto_pwhash_str. Failed logins are counted here so
-- that every node sharing the database delays the next attempt alike.
ALTER TABLE users
    ADD COLUMN password_hash TEXT,
    ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN last_failed_login_at TIMESTAMPTZ;

-- One row per console session. Only the SHA-256 of the 256-bit session id is
-- stored. A session is valid while ended_at IS NULL, now() < expires_at (the
-- absolute lifetime) and now() < last_seen_at + idle_timeout (last_seen_at is
-- moved at most once a minute, so idleness is measured to about a minute).
CREATE TABLE user_sessions (
    id_hash       BYTEA PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL,
    idle_timeout  INTERVAL NOT NULL,
    ended_at      TIMESTAMPTZ,
    ip            VARCHAR(64)
);
CREATE INDEX user_sessions_user_idx ON user_sessions (user_id);
