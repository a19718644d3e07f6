-- Core schema of bpmc-exporter: connectors, API keys, raw usage events.
-- The seed's connector_usage with what later work needs: duration_ms, error_type,
-- seq for incremental rollups, and idempotency through (id, "timestamp").

CREATE TABLE connectors (
    id          VARCHAR(50) PRIMARY KEY,
    name        VARCHAR(200) NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- API keys: only a SHA-256 of the key is stored (keys are 256-bit random, so a
-- fast hash is enough); key_prefix lets an operator recognise a key in lists.
CREATE TABLE api_keys (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner       VARCHAR(100) NOT NULL,
    key_hash    BYTEA NOT NULL UNIQUE,
    key_prefix  VARCHAR(16) NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX idx_api_keys_owner ON api_keys (owner);

-- Raw events, partitioned by day of "timestamp" (UTC). Partitions are created on
-- demand by the exporter (see store.cpp) and dropped after retention.
-- id is the event id: the client's event_id, or a server-made UUIDv7. A unique
-- key on a partitioned table must contain the partition column, so idempotency
-- is on (id, "timestamp"): a retry carries the same body, hence the same pair.
CREATE TABLE connector_usage (
    id               UUID NOT NULL,
    seq              BIGSERIAL,
    api_key_id       UUID NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    connector_id     VARCHAR(50) NOT NULL REFERENCES connectors(id),
    make_account_id  VARCHAR(100) NOT NULL,
    operation        VARCHAR(100) NOT NULL,
    "timestamp"      TIMESTAMPTZ NOT NULL,
    status           VARCHAR(20) NOT NULL,
    error_type       VARCHAR(100),
    error_message    TEXT,
    duration_ms      DOUBLE PRECISION,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT status_check CHECK (status IN ('success', 'error')),
    CONSTRAINT duration_check CHECK (duration_ms IS NULL OR duration_ms >= 0),
    PRIMARY KEY (id, "timestamp")
) PARTITION BY RANGE ("timestamp");

-- Queries: per connector over time (analytics, Grafana), per key/customer over
-- time (support, user views), and by seq for incremental aggregation.
CREATE INDEX idx_connector_usage_connector_ts ON connector_usage (connector_id, "timestamp");
CREATE INDEX idx_connector_usage_api_key_ts ON connector_usage (api_key_id, "timestamp");
CREATE INDEX idx_connector_usage_seq ON connector_usage (seq);
