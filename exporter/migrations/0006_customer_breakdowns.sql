-- Per-customer breakdowns for the views of one customer (role `user`, or
-- `?customer=`): the distribution by operation and the errors by type of
-- connectors/{id} and errors. Daily only: a customer's hour-granularity
-- request shows these two lists over the whole local days of its period
-- (docs/ANALYTICS.md); its totals and series still come from
-- usage_by_customer_hourly.
CREATE TABLE usage_by_customer_operation_daily (
    customer_id        VARCHAR(100) NOT NULL,
    connector_id       VARCHAR(50) NOT NULL,
    operation          VARCHAR(100) NOT NULL,
    day                DATE NOT NULL,
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    duration_sum_ms    FLOAT8 NOT NULL DEFAULT 0,
    duration_count     BIGINT NOT NULL DEFAULT 0,
    duration_buckets   BIGINT[],
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, connector_id, operation, day)
) WITH (fillfactor = 80);

CREATE TABLE usage_errors_by_customer_daily (
    customer_id        VARCHAR(100) NOT NULL,
    connector_id       VARCHAR(50) NOT NULL,
    operation          VARCHAR(100) NOT NULL,
    error_type         VARCHAR(100) NOT NULL,
    day                DATE NOT NULL,
    error_count        BIGINT NOT NULL DEFAULT 0,
    last_message       TEXT,
    last_seen_at       TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, connector_id, operation, error_type, day)
) WITH (fillfactor = 80);

-- The events already aggregated, in the time zone they were aggregated in.
INSERT INTO usage_by_customer_operation_daily (customer_id, connector_id, operation, day,
    operation_count, error_count, duration_sum_ms, duration_count, duration_buckets)
SELECT customer_id, connector_id, operation, day, sum(n)::bigint, sum(errors)::bigint,
       sum(dur_sum), sum(dur_n)::bigint, bpmc_buckets_agg(bucket, dur_n)
FROM (SELECT k.owner AS customer_id, u.connector_id, u.operation,
             (u."timestamp" AT TIME ZONE s.time_zone)::date AS day,
             bpmc_duration_bucket(u.duration_ms) AS bucket, count(*) AS n,
             count(*) FILTER (WHERE u.status = 'error') AS errors,
             coalesce(sum(u.duration_ms), 0) AS dur_sum, count(u.duration_ms) AS dur_n
      FROM connector_usage u JOIN api_keys k ON k.id = u.api_key_id
           JOIN rollup_state s ON s.name = 'usage'
      WHERE u.seq <= s.last_seq
      GROUP BY 1, 2, 3, 4, 5) f
GROUP BY 1, 2, 3, 4;

INSERT INTO usage_errors_by_customer_daily (customer_id, connector_id, operation, error_type, day,
    error_count, last_message, last_seen_at)
SELECT k.owner, u.connector_id, u.operation, coalesce(u.error_type, 'unknown'),
       (u."timestamp" AT TIME ZONE s.time_zone)::date, count(*),
       (array_agg(u.error_message ORDER BY u."timestamp" DESC, coalesce(u.error_message, '') DESC))[1],
       max(u."timestamp")
FROM connector_usage u JOIN api_keys k ON k.id = u.api_key_id
     JOIN rollup_state s ON s.name = 'usage'
WHERE u.seq <= s.last_seq AND u.status = 'error'
GROUP BY 1, 2, 3, 4, 5;

-- The aggregate tables keep no foreign keys to connectors (no command deletes
-- a connector, and every aggregated row comes from an event whose connector
-- was checked at ingest): the per-row checks slowed every rollup upsert.
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.conrelid::regclass AS tbl, c.conname
           FROM pg_constraint c
           WHERE c.contype = 'f' AND c.confrelid = 'connectors'::regclass
             AND c.conrelid::regclass::text IN (
               'connector_usage_hourly', 'connector_usage_daily', 'connector_usage_monthly',
               'usage_by_operation_hourly', 'usage_by_operation_daily', 'usage_errors_hourly',
               'usage_errors_daily', 'usage_by_customer_hourly', 'usage_by_customer_daily',
               'account_activity_daily', 'account_first_seen')
  LOOP
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
  END LOOP;
END $$;
