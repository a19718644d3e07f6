-- Library: webhook_receiver (webhook_receiver/). Owns the webhooks as received,
-- the alert state changes (the dedup key of HA duplicates and retries) and the
-- current state of every alert.
-- Apply after: identity, ingestion, aggregation, billing (no schema dependency
-- on them); notifier, incidents and notices come after it.
-- Baseline: equal to the final state of the legacy migrations (exporter 0001-0010 / receiver 0001-0005).

-- Every accepted webhook, stored before it is answered 200. Kept for
-- `webhook_retention_days` (the receiver deletes older rows hourly).
CREATE TABLE receiver_webhooks (
    id           BIGSERIAL PRIMARY KEY,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    source       TEXT NOT NULL,   -- alertmanager | generic | sentry | datadog | newrelic
    group_key    TEXT NOT NULL DEFAULT '',  -- Alertmanager groupKey
    alerts       INTEGER NOT NULL,
    truncated    BIGINT NOT NULL DEFAULT 0,  -- Alertmanager truncatedAlerts
    payload      JSON NOT NULL    -- the body as received (json keeps it verbatim, \u0000 too)
);
CREATE INDEX receiver_webhooks_received_at ON receiver_webhooks (received_at);

-- One row per alert state change. An HA pair of Alertmanagers and their retries
-- deliver the same (source, dedup_key, status, starts_at) several times: the first
-- insert wins and notifies, the others are duplicates. For sources without a
-- stable start (Sentry, Datadog, generic without starts_at) starts_at is the
-- receipt time of the firing that opened the episode (see receiver_alerts).
CREATE TABLE receiver_alert_events (
    id           BIGSERIAL PRIMARY KEY,
    source       TEXT NOT NULL,
    dedup_key    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at    TIMESTAMPTZ NOT NULL,
    ends_at      TIMESTAMPTZ,
    severity     TEXT NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    -- notified: outbox rows were enqueued; stale: a firing that arrived after its own
    -- resolution; unrouted: no route matched; not_notified: a resolution nobody
    -- was paged for (or whose channels are gone from the config); muted: an alert of
    -- a connector under maintenance (notices' maintenance_windows), stored but paging nobody.
    outcome      TEXT NOT NULL CHECK (outcome IN ('notified', 'stale', 'unrouted', 'not_notified', 'muted')),
    notifications INTEGER NOT NULL,  -- outbox rows enqueued
    alert        JSONB NOT NULL,     -- notifier::ToJson(AlertView) as notified
    routing      JSONB NOT NULL,     -- {"routes": [...], "channels": [...], "escalation_policies": [...]}
    webhook_id   BIGINT NOT NULL,    -- receiver_webhooks.id (no FK: webhooks expire)
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- An alert event the incident engine (incidents/) has not looked at yet; the
    -- receiver sets it when it stores the event, the engine clears it.
    incident_pending BOOLEAN NOT NULL DEFAULT true,
    UNIQUE (source, dedup_key, status, starts_at)
);
CREATE INDEX receiver_alert_events_received_at ON receiver_alert_events (received_at);
-- What the incident engine reads: the events still pending, oldest first.
CREATE INDEX receiver_alert_events_incident_pending ON receiver_alert_events (id)
    WHERE incident_pending;

-- The latest state of every alert the receiver has seen: a later episode
-- (starts_at) wins, and within one episode resolved wins over firing.
CREATE TABLE receiver_alerts (
    source       TEXT NOT NULL,
    dedup_key    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at    TIMESTAMPTZ NOT NULL,
    ends_at      TIMESTAMPTZ,
    severity     TEXT NOT NULL,
    alertname    TEXT NOT NULL,
    labels       JSONB NOT NULL,
    escalation_policies TEXT[] NOT NULL DEFAULT '{}',  -- from the routes, for escalation
    last_event_id BIGINT NOT NULL,   -- receiver_alert_events.id
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, dedup_key)
);
CREATE INDEX receiver_alerts_firing ON receiver_alerts (starts_at) WHERE status = 'firing';
