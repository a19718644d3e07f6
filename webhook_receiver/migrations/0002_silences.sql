-- Silences (webhook_receiver/include/webhook_receiver/silences.h, docs/RECEIVER.md
-- "Silences"): Alertmanager-style matchers that, while now() is in
-- [starts_at, ends_at), keep new firings they match from paging anyone. Rows are
-- never deleted: DELETE /api/v1/silences/{id} ends a silence (ends_at = now,
-- expired_by) and the list keeps it.
CREATE TABLE silences (
    id          BIGSERIAL PRIMARY KEY,
    matchers    JSONB NOT NULL CHECK (jsonb_typeof(matchers) = 'array'),  -- ["name=\"v\"", ...]
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL,
    comment     TEXT NOT NULL,
    created_by  TEXT NOT NULL,   -- users.name
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expired_by  TEXT,            -- users.name of who ended it early, if anyone
    CHECK (ends_at >= starts_at)
);
-- The mute hook reads the silences active now: those not yet ended.
CREATE INDEX silences_ends_at ON silences (ends_at);

-- A firing an active silence matched: stored, paging nobody, opening no incident
-- (until its silence ends while it still fires: ReleaseEndedSilences).
ALTER TABLE receiver_alert_events DROP CONSTRAINT receiver_alert_events_outcome_check;
ALTER TABLE receiver_alert_events ADD CONSTRAINT receiver_alert_events_outcome_check
    CHECK (outcome IN ('notified', 'stale', 'unrouted', 'not_notified', 'muted', 'silenced'));
-- ReleaseEndedSilences looks for these every second.
CREATE INDEX receiver_alert_events_silenced ON receiver_alert_events (id)
    WHERE outcome = 'silenced';
