-- An event id names one event for as long as events are kept (retention_days).
--
-- connector_usage is partitioned by day of "timestamp", so its unique key must
-- contain "timestamp": (id, "timestamp"). A client that retries with the same
-- event_id but a body built again (a fresh timestamp) got a second row. This
-- table registers every stored id once, whatever its timestamp; the exporter
-- inserts into it in the statement (or transaction) that inserts the row
-- (exporter/src/store.cpp), so a row exists exactly when its id is registered.
--
-- It cannot be partitioned by day like connector_usage: a unique key on a
-- partitioned table must contain the partition column, which is the very bug.
-- Ids are forgotten with their day instead: the retention job deletes the
-- ids whose "timestamp" is older than the oldest kept partition (after
-- dropping the partitions), through the "timestamp" index.
--
-- "timestamp" is the stored event's: with the id it finds the row (its
-- partition and primary key) when a repeat must be compared with it.
CREATE TABLE connector_usage_ids (
    id           UUID NOT NULL,
    "timestamp"  TIMESTAMPTZ NOT NULL
);

-- Existing events: the first stored row of each id (by seq) is the event its
-- id names. Rows stored twice under one id before this migration (the bug)
-- are left as they are: they were counted and aggregated when stored.
INSERT INTO connector_usage_ids (id, "timestamp")
SELECT DISTINCT ON (id) id, "timestamp" FROM connector_usage ORDER BY id, seq;

ALTER TABLE connector_usage_ids ADD PRIMARY KEY (id);
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
