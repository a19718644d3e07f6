-- Library: incidents (incidents/). Owns incidents, their alerts, timeline,
-- escalation steps done and pages sent.
-- Apply after: webhook_receiver (the engine reads receiver_alert_events through its
-- incident_pending column and index, defined there) and notifier (it enqueues pages,
-- including 'acknowledged' echoes, into notification_outbox). No foreign keys leave
-- this module.
-- Baseline: equal to the final state of the legacy migrations (exporter 0001-0010 / receiver 0001-0005).

-- Incidents (incidents/, docs/INCIDENTS.md): one per Alertmanager group (group_key) or, for
-- the other sources, per alert; their alerts, their timeline and the escalation steps done.
-- Escalation state and timers live here, so a restart (even kill -9) or a second receiver
-- on the same database continues an escalation on time and pages each step once.

CREATE TABLE incidents (
    id                BIGSERIAL PRIMARY KEY,
    -- 'am:<groupKey>' for Alertmanager groups, '<source>:<dedup_key>' for other sources.
    -- One open (triggered or acknowledged) incident per group_key at a time.
    group_key         TEXT NOT NULL,
    title             TEXT NOT NULL,
    severity          TEXT NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    -- The `connector` label common to all alerts of the group ('' when none or mixed).
    connector         TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT 'triggered'
                      CHECK (status IN ('triggered', 'acknowledged', 'resolved')),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    acknowledged_at   TIMESTAMPTZ,
    acknowledged_by   TEXT,
    resolved_at       TIMESTAMPTZ,
    resolved_by       TEXT,      -- a person, or 'alertmanager' when every alert resolved
    -- The escalation policy that pages for it ('' = none: the routes' channels only).
    escalation_policy TEXT NOT NULL DEFAULT '',
    -- When the escalation engine must look at it next; NULL = nothing more is due
    -- (acknowledged, resolved, muted, or the policy is exhausted).
    next_due_at       TIMESTAMPTZ,
    -- In a maintenance window when it was created: recorded, pages nobody.
    muted             BOOLEAN NOT NULL DEFAULT false,
    labels            JSONB NOT NULL DEFAULT '{}'::jsonb,   -- the group's common labels
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()   -- last change of any column
);
CREATE UNIQUE INDEX incidents_open_group ON incidents (group_key)
    WHERE status <> 'resolved';
CREATE INDEX incidents_due ON incidents (next_due_at) WHERE next_due_at IS NOT NULL;
CREATE INDEX incidents_created_at ON incidents (created_at);
CREATE INDEX incidents_connector_open ON incidents (connector, created_at)
    WHERE connector <> '' AND status <> 'resolved';

-- The alerts of an incident (receiver_alerts' key) and their latest state.
CREATE TABLE incident_alerts (
    incident_id  BIGINT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    source       TEXT NOT NULL,
    dedup_key    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    alertname    TEXT NOT NULL DEFAULT '',
    starts_at    TIMESTAMPTZ NOT NULL,
    labels       JSONB NOT NULL DEFAULT '{}'::jsonb,
    alert        JSONB NOT NULL DEFAULT '{}'::jsonb,   -- notifier::ToJson(AlertView)
    first_event_id BIGINT NOT NULL DEFAULT 0,          -- receiver_alert_events.id
    last_event_id  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (incident_id, source, dedup_key)
);
CREATE INDEX incident_alerts_alert ON incident_alerts (source, dedup_key);

-- What happened to an incident, in order. kind is one of:
--   detected, alert_added, alert_resolved, classified, notified, escalated, repeated,
--   nobody_on_call, acknowledged, resolved, note, muted, notice (engineer P's notices)
-- channel/person/result are set for 'notified' rows (result: 'queued', then the
-- delivery result is read from the outbox when the timeline is shown).
CREATE TABLE incident_timeline (
    id           BIGSERIAL PRIMARY KEY,
    incident_id  BIGINT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL DEFAULT '',
    channel      TEXT NOT NULL DEFAULT '',
    person       TEXT NOT NULL DEFAULT '',
    result       TEXT NOT NULL DEFAULT '',
    detail       JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX incident_timeline_incident ON incident_timeline (incident_id, id);

-- Escalation steps done (oncall::PlanSteps' stable step keys). Inserted in the
-- transaction that enqueues the step's notifications: the UNIQUE key makes each step
-- happen once across restarts and receivers.
CREATE TABLE escalation_steps (
    incident_id  BIGINT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    step_key     TEXT NOT NULL,
    due_at       TIMESTAMPTZ NOT NULL,
    done_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    notifications INTEGER NOT NULL DEFAULT 0,
    UNIQUE (incident_id, step_key)
);

-- Who was paged for an incident (for the resolution and the acknowledgement echo):
-- one row per (channel, destination) the escalation enqueued a firing page to.
CREATE TABLE incident_pages (
    incident_id  BIGINT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    channel      TEXT NOT NULL,
    destination  TEXT NOT NULL,
    person       TEXT NOT NULL DEFAULT '',
    first_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    pages        INTEGER NOT NULL DEFAULT 1,   -- firing pages sent to it (repeats get new keys)
    PRIMARY KEY (incident_id, channel, destination)
);
