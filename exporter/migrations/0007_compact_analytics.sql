-- Compact aggregates for the analytics API's platform-wide and per-account
-- numbers (docs/AGGREGATION.md, "Compact aggregates"; measured in
-- docs/BENCHMARKS.md). Kept up to date by the rollup like the tables of 0002.
--
-- * platform_usage_hourly / _daily: all connectors together, one row per UTC
--   hour / local day. The unscoped overview, users and errors read 30 rows
--   (one HLL sketch each) for a 30-day period instead of 30 x connectors.
--   Same columns and the same HLL parameters as connector_usage_*: the
--   sketch of a day is the union of the connectors' sketches of that day.
-- * account_activity_monthly: one row per Make account, customer and local
--   calendar month with cum_ops[d] = the account's operations on days 1..d of
--   the month (cumulative, 31 elements), so the operations of any run of days
--   in a month are cum_ops[last] - cum_ops[first - 1]: the activity
--   distribution of a period reads one row per account and month, not one per
--   account, connector and day.
--
-- Backfilled exactly from the aggregates of 0002 (which hold every event up
-- to rollup_state.last_seq). The rollup_state row is locked first, so no
-- rollup step of any exporter sharing the database runs between the backfill
-- and the commit. Exporters of an older version keep stepping without
-- updating these tables: upgrade every replica together, or run
-- `bpmc-exporter reaggregate` over the affected days afterwards.
SELECT last_seq FROM rollup_state WHERE name = 'usage' FOR UPDATE;

CREATE TABLE platform_usage_hourly (
    hour               TIMESTAMPTZ PRIMARY KEY,
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    users              hll NOT NULL DEFAULT bpmc_users_empty(),
    duration_sum_ms    FLOAT8 NOT NULL DEFAULT 0,
    duration_count     BIGINT NOT NULL DEFAULT 0,
    duration_buckets   BIGINT[],
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
) WITH (fillfactor = 80);

CREATE TABLE platform_usage_daily (
    day                DATE PRIMARY KEY,
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    users              hll NOT NULL DEFAULT bpmc_users_empty(),
    duration_sum_ms    FLOAT8 NOT NULL DEFAULT 0,
    duration_count     BIGINT NOT NULL DEFAULT 0,
    duration_buckets   BIGINT[],
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
) WITH (fillfactor = 80);

-- Adds n to the elements d..31 of a cumulative per-day array (NULL state =
-- 31 zeros; NULL d or n add nothing). Days are 1..31.
CREATE FUNCTION bpmc_cum_accum(state bigint[], d int, n bigint) RETURNS bigint[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
DECLARE
    i int;
BEGIN
    IF state IS NULL THEN
        state := array_fill(0::bigint, ARRAY[31]);
    END IF;
    IF d IS NOT NULL AND n IS NOT NULL THEN
        FOR i IN greatest(d, 1) .. 31 LOOP
            state[i] := state[i] + n;
        END LOOP;
    END IF;
    RETURN state;
END
$$;

-- The cumulative array of (day of month, count) pairs; merged element-wise
-- with bpmc_buckets_add.
CREATE AGGREGATE bpmc_cum_agg(int, bigint) (
    SFUNC = bpmc_cum_accum,
    STYPE = bigint[]
);

CREATE TABLE account_activity_monthly (
    make_account_id    VARCHAR(100) NOT NULL,
    customer_id        VARCHAR(100) NOT NULL,
    month              DATE NOT NULL,  -- first day of the local month
    operation_count    BIGINT NOT NULL DEFAULT 0,
    cum_ops            BIGINT[] NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (make_account_id, customer_id, month),
    CONSTRAINT account_activity_monthly_first_day CHECK (extract(day FROM month) = 1)
) WITH (fillfactor = 80);
CREATE INDEX idx_account_activity_monthly_month ON account_activity_monthly (month);
CREATE INDEX idx_account_activity_monthly_customer ON account_activity_monthly (customer_id, month);

INSERT INTO platform_usage_hourly (hour, operation_count, error_count, users, duration_sum_ms,
                                   duration_count, duration_buckets)
SELECT hour, sum(operation_count)::bigint, sum(error_count)::bigint, hll_union_agg(users),
       sum(duration_sum_ms), sum(duration_count)::bigint, bpmc_buckets_sum(duration_buckets)
FROM connector_usage_hourly GROUP BY hour;

INSERT INTO platform_usage_daily (day, operation_count, error_count, users, duration_sum_ms,
                                  duration_count, duration_buckets)
SELECT day, sum(operation_count)::bigint, sum(error_count)::bigint, hll_union_agg(users),
       sum(duration_sum_ms), sum(duration_count)::bigint, bpmc_buckets_sum(duration_buckets)
FROM connector_usage_daily GROUP BY day;

INSERT INTO account_activity_monthly (make_account_id, customer_id, month, operation_count, cum_ops)
SELECT make_account_id, customer_id, date_trunc('month', day::timestamp)::date,
       sum(operation_count)::bigint, bpmc_cum_agg(extract(day FROM day)::int, operation_count)
FROM account_activity_daily GROUP BY 1, 2, 3;
