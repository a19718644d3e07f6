-- On-call overrides made through the API (incidents/include/incidents/overrides.h,
-- docs/ONCALL.md "Overrides through the API"), beside the YAML `overrides:`.
-- Never deleted: DELETE /api/v1/overrides/{id} sets cancelled_at/cancelled_by.
CREATE TABLE oncall_overrides (
    id            BIGSERIAL PRIMARY KEY,
    schedule      TEXT NOT NULL,   -- a schedule id of the config
    person        TEXT NOT NULL,   -- a person id of the config
    starts_at     TIMESTAMPTZ NOT NULL,
    ends_at       TIMESTAMPTZ NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL,   -- users.name
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at  TIMESTAMPTZ,
    cancelled_by  TEXT,
    CHECK (ends_at > starts_at)
);
-- The escalation reads those not cancelled that end after now.
CREATE INDEX oncall_overrides_ends_at ON oncall_overrides (ends_at) WHERE cancelled_at IS NULL;
