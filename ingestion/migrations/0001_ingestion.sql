-- Library: ingestion (ingestion/). Owns the raw usage events (connector_usage),
-- the registry of their event ids and the quarantine of conflicting replays.
-- Apply after: identity (api_key_id and connector_id name its rows, without
-- foreign keys).
-- Baseline: equal to the final state of the legacy migrations (exporter 0001-0010 / receiver 0001-0005).

-- Raw events, partitioned by day of "timestamp" (UTC). Partitions are created on
-- demand by the exporter (see ingestion/src/store.cpp) and dropped after retention.
-- id is the event id: the client's event_id, or a server-made UUIDv7. A unique
-- key on a partitioned table must contain the partition column, so the primary
-- key is (id, "timestamp"); connector_usage_ids below makes the id alone unique.
-- duration_ms and error_type feed the aggregates; seq orders the events for
-- the incremental rollup.
--
-- The table keeps no foreign keys to api_keys and connectors.
-- Every row is checked before it is written: the exporter refuses an unknown
-- or revoked key (401) and an unknown connector (422) from its directory of
-- keys and connectors, and neither table ever loses a row (keys are revoked
-- and connectors retired by flags; no command deletes them). Foreign-key
-- triggers would re-check both for every inserted row, with a locking lookup
-- each: measured with bench/ingest_bench.sh, they were about a third of
-- PostgreSQL's CPU at 9k single events/s, and dropping them raised the
-- durable single-event rate by 11 %.
CREATE TABLE connector_usage (
    id               UUID NOT NULL,
    seq              BIGSERIAL,
    api_key_id       UUID NOT NULL,
    connector_id     VARCHAR(50) NOT NULL,
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

-- An event id names one event for as long as events are kept (retention_days).
--
-- connector_usage is partitioned by day of "timestamp", so its unique key must
-- contain "timestamp": (id, "timestamp"). A client that retries with the same
-- event_id but a body built again (a fresh timestamp) would get a second row.
-- This table registers every stored id once, whatever its timestamp; the
-- exporter inserts into it in the statement (or transaction) that inserts the
-- row (ingestion/src/store.cpp), so a row exists exactly when its id is registered.
--
-- It cannot be partitioned by day like connector_usage: a unique key on a
-- partitioned table must contain the partition column, which is the very
-- problem. Ids are forgotten with their day instead: the retention job deletes
-- the ids whose "timestamp" is older than the oldest kept partition (after
-- dropping the partitions), through the "timestamp" index.
--
-- "timestamp" is the stored event's: with the id it finds the row (its
-- partition and primary key) when a repeat must be compared with it.
CREATE TABLE connector_usage_ids (
    id           UUID NOT NULL PRIMARY KEY,
    "timestamp"  TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_connector_usage_ids_timestamp ON connector_usage_ids ("timestamp");

-- Events acknowledged through the spool while PostgreSQL was down whose id,
-- when replayed, turned out to name a different event: not stored in
-- connector_usage (nor counted), kept here for an operator to look at
-- (bpmc_exporter_failures_total{reason="replay_event_id_conflict"} counts
-- them; docs/RUNBOOK.md). Forgotten with their day like connector_usage.
CREATE TABLE connector_usage_conflicts (
    id               UUID NOT NULL,
    api_key_id       UUID NOT NULL,
    connector_id     VARCHAR(50) NOT NULL,
    make_account_id  VARCHAR(100) NOT NULL,
    operation        VARCHAR(100) NOT NULL,
    "timestamp"      TIMESTAMPTZ NOT NULL,
    status           VARCHAR(20) NOT NULL,
    error_type       VARCHAR(100),
    error_message    TEXT,
    duration_ms      DOUBLE PRECISION,
    quarantined_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_connector_usage_conflicts_id ON connector_usage_conflicts (id);
