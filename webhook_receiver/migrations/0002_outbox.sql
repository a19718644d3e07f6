-- The notification outbox (notifier/): one row per alert state change per (channel, destination),
-- inserted in the transaction that stores the webhook, delivered by bpmc::notifier::Deliverer.
CREATE TABLE notification_outbox (
  id               BIGSERIAL PRIMARY KEY,
  channel          TEXT NOT NULL,
  destination      TEXT NOT NULL,            -- '' = the channel's single target
  dedup_key        TEXT NOT NULL,
  alert_status     TEXT NOT NULL CHECK (alert_status IN ('firing', 'resolved')),
  starts_at        TEXT NOT NULL,            -- normalised RFC 3339 (UTC, microseconds) or ''
  alert            JSONB NOT NULL,           -- notifier::ToJson(AlertView)
  state            TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivered', 'failed')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
  next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  first_attempt_at TIMESTAMPTZ,
  done_at          TIMESTAMPTZ,              -- delivered or failed
  last_error       TEXT,
  message_id       TEXT,                     -- idempotency key of the message that carried it
  bundle_size      INTEGER,                  -- alerts in that message
  -- A redelivered or duplicated webhook cannot enqueue the same notification twice.
  UNIQUE (channel, destination, dedup_key, alert_status, starts_at)
);
-- What workers read: the queued rows of one destination, oldest first ...
CREATE INDEX notification_outbox_queued
  ON notification_outbox (channel, destination, id) WHERE state = 'queued';
-- ... and when the next retry of a destination is due.
CREATE INDEX notification_outbox_next_attempt
  ON notification_outbox (channel, destination, next_attempt_at) WHERE state = 'queued';
-- Queue depth and oldest age.
CREATE INDEX notification_outbox_queued_age
  ON notification_outbox (created_at) WHERE state = 'queued';
-- Resolution notices: who got the firing one.
CREATE INDEX notification_outbox_dedup ON notification_outbox (dedup_key, starts_at);

-- Per (channel, destination) delivery state. A worker locks the row (FOR UPDATE SKIP LOCKED)
-- while it sends, so one destination is served by one worker at a time across processes.
CREATE TABLE notification_destinations (
  channel        TEXT NOT NULL,
  destination    TEXT NOT NULL,
  -- No message before this (rate limit reached, or the peer's Retry-After).
  blocked_until  TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
  -- Rate limit state (GCRA, notifier/policy.h): the theoretical arrival time of the next
  -- message, Unix microseconds; 0 = never sent.
  rate_tat       BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (channel, destination)
);
