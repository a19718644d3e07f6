-- Library: notifier (notifier/). Owns the notification outbox and the
-- per-destination delivery state.
-- Apply after: webhook_receiver (no foreign keys; the receiver, the incident
-- engine and the notice engine insert into the outbox).
-- Baseline: equal to the final state of the legacy migrations (exporter 0001-0010 / receiver 0001-0005).

-- The notification outbox (notifier/): one row per alert state change per (channel, destination),
-- inserted in the transaction that stores the webhook, delivered by bpmc::notifier::Deliverer.
-- alert_status 'acknowledged': acknowledgements are echoed to PagerDuty through the outbox
-- (event_action "acknowledge").
--
-- Autovacuum: the outbox is a queue: every notification is inserted, updated once or a few times
-- (attempts) and then only read. After a storm of tens of thousands of notifications the
-- dead versions left by those updates sit in the partial "queued" indexes that every
-- delivery query walks from the oldest id, and with PostgreSQL's default thresholds
-- (a vacuum after 20 % of the table changed) they stay there for hours on a big table:
-- measured with bench/receiver_bench.sh, 1,000 alerts/s right after a storm had their first
-- delivery attempt 8-16 s late instead of ~0.1 s, until a VACUUM. Vacuum it after every
-- 2,000 changed rows whatever its size, without throttling (the work per vacuum is small),
-- and keep its statistics fresh. autovacuum_naptime (a server setting, 1 min by default)
-- bounds how soon that happens: docs/RECEIVER.md recommends 10 s for a busy receiver.
CREATE TABLE notification_outbox (
  id               BIGSERIAL PRIMARY KEY,
  channel          TEXT NOT NULL,
  destination      TEXT NOT NULL,            -- '' = the channel's single target
  dedup_key        TEXT NOT NULL,
  alert_status     TEXT NOT NULL CHECK (alert_status IN ('firing', 'resolved', 'acknowledged')),
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
) WITH (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 2000,
  autovacuum_vacuum_insert_scale_factor = 0,
  autovacuum_vacuum_insert_threshold = 10000,
  autovacuum_analyze_scale_factor = 0,
  autovacuum_analyze_threshold = 5000,
  autovacuum_vacuum_cost_delay = 0
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
-- Autovacuum as for the outbox (every row is updated on each send): after every 1,000
-- changed rows whatever its size, without throttling.
CREATE TABLE notification_destinations (
  channel        TEXT NOT NULL,
  destination    TEXT NOT NULL,
  -- No message before this (rate limit reached, or the peer's Retry-After).
  blocked_until  TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
  -- Rate limit state (GCRA, notifier/policy.h): the theoretical arrival time of the next
  -- message, Unix microseconds; 0 = never sent.
  rate_tat       BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (channel, destination)
) WITH (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_cost_delay = 0
);
