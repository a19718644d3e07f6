-- Library: webhook_receiver (webhook_receiver/). Heartbeats (check-in monitors,
-- docs/RECEIVER.md "Heartbeats"): one row per configured heartbeat, shared by
-- every receiver on the database. Their interval, grace and token live in the
-- config, not here; rows of heartbeats no longer configured are ignored.
CREATE TABLE receiver_heartbeats (
    name             TEXT PRIMARY KEY,      -- the config key, [a-z0-9_-]{1,64}
    -- The last accepted check-in (POST /v1/heartbeat/{name}); NULL: none yet.
    last_checkin_at  TIMESTAMPTZ,
    -- When a receiver first knew this heartbeat: the clock of one that never
    -- checked in (a heartbeat is missed at coalesce(last_checkin_at,
    -- watched_since) + interval + grace).
    watched_since    TIMESTAMPTZ NOT NULL,
    -- The deadline that was missed (the start of the firing HeartbeatMissed
    -- alert); NULL while healthy. Set and cleared in the transaction that stores
    -- the firing or the resolution, so that one receiver decides each.
    missed_at        TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
