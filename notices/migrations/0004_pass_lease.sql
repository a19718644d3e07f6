-- Library: notices (notices/). One notice engine pass at a time across receivers
-- when they reach PostgreSQL through PgBouncer in transaction mode, where a session
-- advisory lock would stay on whichever server connection took it (docs/SCALING.md
-- "PgBouncer"): a lease row with an expiry, taken and released in transactions of
-- their own. Directly connected receivers keep the session advisory lock.
CREATE TABLE notice_pass_lease (
  name        TEXT PRIMARY KEY,
  holder      TEXT NOT NULL,
  expires_at  TIMESTAMPTZ NOT NULL
);
