-- Library: aggregation (aggregation/). Owns the hll extension, the bpmc_*
-- helper functions and aggregates, every aggregate table of connector_usage
-- and the rollup watermark (rollup_state).
-- Apply after: identity, ingestion (the rollup reads connector_usage and
-- api_keys; there are no foreign keys to them).
-- Baseline: equal to the final state of the legacy migrations (exporter 0001-0010 / receiver 0001-0005).

-- Aggregates of connector_usage, kept up to date incrementally by the rollup
-- (aggregation/src/rollup.cpp; docs/AGGREGATION.md explains the algorithm).
-- Every bucket stores sums and counts (never averages), an HLL sketch of the
-- distinct make_account_id values where users are counted, and a fixed
-- log-spaced histogram of durations, so any set of buckets merges exactly
-- (counts, sums, histograms) or as a sketch union (users).
--
-- The aggregate tables keep no foreign keys to connectors (no command deletes
-- a connector, and every aggregated row comes from an event whose connector
-- was checked at ingest): the per-row checks slowed every rollup upsert.

-- postgresql-hll. Every sketch in this schema uses log2m=14, regwidth=5,
-- expthresh=-1 (auto), sparseon=1: standard error 1.04/sqrt(2^14) = 0.81 %,
-- exact up to ~1,280 distinct values (explicit mode); docs/AGGREGATION.md has
-- the measured error. Sketches with other parameters cannot be merged with
-- these: build sketches from raw ids only with
-- hll_add_agg(hll_hash_text(make_account_id), 14, 5, -1, 1).
CREATE EXTENSION IF NOT EXISTS hll;

-- An empty sketch with the parameters above.
CREATE FUNCTION bpmc_users_empty() RETURNS hll
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hll_empty(14, 5, -1, 1) $$;

-- ---------------------------------------------------------------------------
-- Duration histogram: 52 fixed buckets, defined only here.
-- Lower bounds (ms) B[1..51] = 1.25^k for k = 0..50 (rounded to 1 µs):
-- bucket 1 is [0, 1 ms), bucket i (2..51) is [B[i-1], B[i]), bucket 52 is
-- [70064.923 ms, +Inf). Consecutive bounds differ by a factor of 1.25, so a
-- quantile read from the buckets is within one bucket width of the true one.
CREATE FUNCTION bpmc_duration_bounds() RETURNS float8[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT '{1.000,1.250,1.563,1.953,2.441,3.052,3.815,4.768,5.960,7.451,9.313,11.642,14.552,18.190,22.737,28.422,35.527,44.409,55.511,69.389,86.736,108.420,135.525,169.407,211.758,264.698,330.872,413.590,516.988,646.235,807.794,1009.742,1262.177,1577.722,1972.152,2465.190,3081.488,3851.860,4814.825,6018.531,7523.164,9403.955,11754.944,14693.679,18367.099,22958.874,28698.593,35873.241,44841.551,56051.939,70064.923}'::float8[] $$;

-- The number of buckets (52).
CREATE FUNCTION bpmc_duration_bucket_count() RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT cardinality(bpmc_duration_bounds()) + 1 $$;

-- The 1-based bucket of a duration in ms; NULL for NULL. Inlined by the planner
-- (a single-expression SQL function), so it costs one binary search per row.
CREATE FUNCTION bpmc_duration_bucket(ms float8) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT width_bucket(ms, bpmc_duration_bounds()) + 1 $$;

-- Element-wise sum of two bucket arrays; NULL is the empty histogram, a shorter
-- array is padded with zeros.
CREATE FUNCTION bpmc_buckets_add(a bigint[], b bigint[]) RETURNS bigint[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
DECLARE
    i int;
    tmp bigint[];
BEGIN
    IF a IS NULL THEN RETURN b; END IF;
    IF b IS NULL THEN RETURN a; END IF;
    IF cardinality(b) > cardinality(a) THEN
        tmp := a; a := b; b := tmp;
    END IF;
    FOR i IN 1 .. cardinality(b) LOOP
        a[i] := a[i] + b[i];
    END LOOP;
    RETURN a;
END
$$;

-- Sum of bucket arrays (NULLs skipped; NULL when there are none).
CREATE AGGREGATE bpmc_buckets_sum(bigint[]) (
    SFUNC = bpmc_buckets_add,
    STYPE = bigint[],
    COMBINEFUNC = bpmc_buckets_add,
    PARALLEL = SAFE
);

-- Accumulates (bucket, count) pairs into a bucket array; used by the rollup
-- after grouping raw events by bucket. NULL buckets are skipped.
CREATE FUNCTION bpmc_buckets_accum(state bigint[], bucket int, n bigint) RETURNS bigint[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
BEGIN
    IF state IS NULL THEN
        state := array_fill(0::bigint, ARRAY[bpmc_duration_bucket_count()]);
    END IF;
    IF bucket IS NOT NULL AND n IS NOT NULL THEN
        state[bucket] := state[bucket] + n;
    END IF;
    RETURN state;
END
$$;

CREATE AGGREGATE bpmc_buckets_agg(int, bigint) (
    SFUNC = bpmc_buckets_accum,
    STYPE = bigint[]
);

-- The q-quantile (0..1) in ms of a bucket array, by linear interpolation inside
-- the bucket that holds rank q*total (the +Inf bucket reports its lower bound).
-- NULL when the array is NULL or empty. Error bound: docs/AGGREGATION.md.
CREATE FUNCTION bpmc_buckets_quantile(buckets bigint[], q float8) RETURNS float8
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
DECLARE
    bounds float8[] := bpmc_duration_bounds();
    nb int := cardinality(bounds);
    total numeric := 0;
    cum numeric := 0;
    rank numeric;
    n bigint;
    lo float8;
    hi float8;
    i int;
BEGIN
    IF buckets IS NULL OR q IS NULL THEN RETURN NULL; END IF;
    FOR i IN 1 .. cardinality(buckets) LOOP
        total := total + coalesce(buckets[i], 0);
    END LOOP;
    IF total <= 0 THEN RETURN NULL; END IF;
    rank := greatest(0.0, least(1.0, q))::numeric * total;
    FOR i IN 1 .. cardinality(buckets) LOOP
        n := coalesce(buckets[i], 0);
        IF n > 0 AND cum + n >= rank THEN
            lo := CASE WHEN i = 1 THEN 0 ELSE bounds[least(i - 1, nb)] END;
            IF i > nb THEN RETURN lo; END IF;
            hi := bounds[i];
            RETURN lo + (hi - lo) * greatest(0.0, (rank - cum) / n)::float8;
        END IF;
        cum := cum + n;
    END LOOP;
    RETURN bounds[nb];
END
$$;

-- ---------------------------------------------------------------------------
-- Aggregate rows of the current hour and day are updated by every rollup
-- step: fillfactor 80 leaves room on each page for HOT updates (no index
-- maintenance, the updated columns are not indexed).
--
-- Per connector. hour is the UTC hour start; day and month are
-- calendar days/months in the reporting time zone (rollup_state.time_zone).
-- avg_response_time = duration_sum_ms / duration_count (0 without durations);
-- unique_users = round(hll_cardinality(users)).
CREATE TABLE connector_usage_hourly (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    connector_id       VARCHAR(50) NOT NULL,
    hour               TIMESTAMPTZ NOT NULL,
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    users              hll NOT NULL DEFAULT bpmc_users_empty(),
    unique_users       INTEGER GENERATED ALWAYS AS (coalesce(round(hll_cardinality(users))::int, 0)) STORED,
    duration_sum_ms    FLOAT8 NOT NULL DEFAULT 0,
    duration_count     BIGINT NOT NULL DEFAULT 0,
    duration_buckets   BIGINT[],
    avg_response_time  FLOAT8 GENERATED ALWAYS AS
                           (CASE WHEN duration_count > 0 THEN duration_sum_ms / duration_count ELSE 0 END) STORED,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (connector_id, hour)
) WITH (fillfactor = 80);
CREATE INDEX idx_connector_usage_hourly_hour ON connector_usage_hourly (hour, connector_id);

CREATE TABLE connector_usage_daily (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    connector_id       VARCHAR(50) NOT NULL,
    day                DATE NOT NULL,
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    users              hll NOT NULL DEFAULT bpmc_users_empty(),
    unique_users       INTEGER GENERATED ALWAYS AS (coalesce(round(hll_cardinality(users))::int, 0)) STORED,
    duration_sum_ms    FLOAT8 NOT NULL DEFAULT 0,
    duration_count     BIGINT NOT NULL DEFAULT 0,
    duration_buckets   BIGINT[],
    avg_response_time  FLOAT8 GENERATED ALWAYS AS
                           (CASE WHEN duration_count > 0 THEN duration_sum_ms / duration_count ELSE 0 END) STORED,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (connector_id, day)
) WITH (fillfactor = 80);
CREATE INDEX idx_connector_usage_daily_day ON connector_usage_daily (day, connector_id);

CREATE TABLE connector_usage_monthly (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    connector_id       VARCHAR(50) NOT NULL,
    month              DATE NOT NULL,  -- first day of the month
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    users              hll NOT NULL DEFAULT bpmc_users_empty(),
    unique_users       INTEGER GENERATED ALWAYS AS (coalesce(round(hll_cardinality(users))::int, 0)) STORED,
    duration_sum_ms    FLOAT8 NOT NULL DEFAULT 0,
    duration_count     BIGINT NOT NULL DEFAULT 0,
    duration_buckets   BIGINT[],
    avg_response_time  FLOAT8 GENERATED ALWAYS AS
                           (CASE WHEN duration_count > 0 THEN duration_sum_ms / duration_count ELSE 0 END) STORED,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (connector_id, month),
    CONSTRAINT month_is_first_day CHECK (extract(day FROM month) = 1)
) WITH (fillfactor = 80);
CREATE INDEX idx_connector_usage_monthly_month ON connector_usage_monthly (month, connector_id);

-- Per operation (distribution by operation, per-operation p95).
CREATE TABLE usage_by_operation_hourly (
    connector_id       VARCHAR(50) NOT NULL,
    operation          VARCHAR(100) NOT NULL,
    hour               TIMESTAMPTZ NOT NULL,
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    duration_sum_ms    FLOAT8 NOT NULL DEFAULT 0,
    duration_count     BIGINT NOT NULL DEFAULT 0,
    duration_buckets   BIGINT[],
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, operation, hour)
) WITH (fillfactor = 80);
CREATE INDEX idx_usage_by_operation_hourly_hour ON usage_by_operation_hourly (hour, connector_id);

CREATE TABLE usage_by_operation_daily (
    connector_id       VARCHAR(50) NOT NULL,
    operation          VARCHAR(100) NOT NULL,
    day                DATE NOT NULL,
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    duration_sum_ms    FLOAT8 NOT NULL DEFAULT 0,
    duration_count     BIGINT NOT NULL DEFAULT 0,
    duration_buckets   BIGINT[],
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, operation, day)
) WITH (fillfactor = 80);
CREATE INDEX idx_usage_by_operation_daily_day ON usage_by_operation_daily (day, connector_id);

-- Errors by type. error_type is 'unknown' when the event had none;
-- last_message is the message of the newest error (by event timestamp) in the
-- bucket, last_seen_at that event's timestamp.
CREATE TABLE usage_errors_hourly (
    connector_id       VARCHAR(50) NOT NULL,
    operation          VARCHAR(100) NOT NULL,
    error_type         VARCHAR(100) NOT NULL,
    hour               TIMESTAMPTZ NOT NULL,
    error_count        BIGINT NOT NULL DEFAULT 0,
    last_message       TEXT,
    last_seen_at       TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, operation, error_type, hour)
) WITH (fillfactor = 80);
CREATE INDEX idx_usage_errors_hourly_hour ON usage_errors_hourly (hour, connector_id);

CREATE TABLE usage_errors_daily (
    connector_id       VARCHAR(50) NOT NULL,
    operation          VARCHAR(100) NOT NULL,
    error_type         VARCHAR(100) NOT NULL,
    day                DATE NOT NULL,
    error_count        BIGINT NOT NULL DEFAULT 0,
    last_message       TEXT,
    last_seen_at       TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, operation, error_type, day)
) WITH (fillfactor = 80);
CREATE INDEX idx_usage_errors_daily_day ON usage_errors_daily (day, connector_id);

-- Per customer (api_keys.owner) and connector.
CREATE TABLE usage_by_customer_hourly (
    customer_id        VARCHAR(100) NOT NULL,
    connector_id       VARCHAR(50) NOT NULL,
    hour               TIMESTAMPTZ NOT NULL,
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    users              hll NOT NULL DEFAULT bpmc_users_empty(),
    duration_sum_ms    FLOAT8 NOT NULL DEFAULT 0,
    duration_count     BIGINT NOT NULL DEFAULT 0,
    duration_buckets   BIGINT[],
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, connector_id, hour)
) WITH (fillfactor = 80);
CREATE INDEX idx_usage_by_customer_hourly_hour ON usage_by_customer_hourly (hour, customer_id);

CREATE TABLE usage_by_customer_daily (
    customer_id        VARCHAR(100) NOT NULL,
    connector_id       VARCHAR(50) NOT NULL,
    day                DATE NOT NULL,
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    users              hll NOT NULL DEFAULT bpmc_users_empty(),
    duration_sum_ms    FLOAT8 NOT NULL DEFAULT 0,
    duration_count     BIGINT NOT NULL DEFAULT 0,
    duration_buckets   BIGINT[],
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, connector_id, day)
) WITH (fillfactor = 80);
CREATE INDEX idx_usage_by_customer_daily_day ON usage_by_customer_daily (day, customer_id);

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

-- Exact per-account activity per day (activity distribution, exact daily
-- active users). One row per account, customer, connector and active day.
CREATE TABLE account_activity_daily (
    make_account_id    VARCHAR(100) NOT NULL,
    customer_id        VARCHAR(100) NOT NULL,
    connector_id       VARCHAR(50) NOT NULL,
    day                DATE NOT NULL,
    operation_count    BIGINT NOT NULL DEFAULT 0,
    error_count        BIGINT NOT NULL DEFAULT 0,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (make_account_id, customer_id, connector_id, day)
) WITH (fillfactor = 80);
CREATE INDEX idx_account_activity_daily_day ON account_activity_daily (day, connector_id);
CREATE INDEX idx_account_activity_daily_customer ON account_activity_daily (customer_id, day);

-- The first event of each Make account ("new users"): its timestamp and the
-- customer and connector of that event. Only ever moves earlier.
CREATE TABLE account_first_seen (
    make_account_id    VARCHAR(100) PRIMARY KEY,
    customer_id        VARCHAR(100) NOT NULL,
    connector_id       VARCHAR(50) NOT NULL,
    first_seen         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
) WITH (fillfactor = 80);
CREATE INDEX idx_account_first_seen_first_seen ON account_first_seen (first_seen, connector_id);
CREATE INDEX idx_account_first_seen_customer ON account_first_seen (customer_id, first_seen);

-- Compact aggregates for the analytics API's platform-wide numbers
-- (docs/AGGREGATION.md, "Compact aggregates"; measured in docs/BENCHMARKS.md),
-- kept up to date by the rollup like the per-connector tables.
--
-- platform_usage_hourly / _daily: all connectors together, one row per UTC
-- hour / local day. The unscoped overview, users and errors read 30 rows
-- (one HLL sketch each) for a 30-day period instead of 30 x connectors.
-- Same columns and the same HLL parameters as connector_usage_*: the sketch
-- of a day is the union of the connectors' sketches of that day.

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

-- Per-account activity in overlapping two-month windows (docs/AGGREGATION.md;
-- measured in docs/BENCHMARKS.md).
--
-- account_activity_windows_even / _odd: one row per Make account, customer
-- and window, a window being a local calendar month and the next one
-- (window_start = the first day of the first month). cum_ops[i] = the account's operations on the
-- window's days 1..i (cumulative, 62 elements: two months have at most 62
-- days; the elements after the window's last day repeat its total). Every
-- month is in two windows (starting at it and at the month before), so a
-- period within two calendar months -- the default 30 days always is -- reads
-- one row per account: operations of the window's days a..b = cum_ops[b] -
-- cum_ops[a - 1]. The users endpoint's activity distribution reads one row
-- per account for such a period; a longer period reads the windows starting
-- every second month.

-- Adds n to element d of a per-day array of 62 elements (NULL state = zeros;
-- d outside 1..62 or NULL n add nothing).
CREATE FUNCTION bpmc_window_accum(state bigint[], d int, n bigint) RETURNS bigint[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
BEGIN
    IF state IS NULL THEN
        state := array_fill(0::bigint, ARRAY[62]);
    END IF;
    IF d BETWEEN 1 AND 62 AND n IS NOT NULL THEN
        state[d] := state[d] + n;
    END IF;
    RETURN state;
END
$$;

-- The running sum of a per-day array.
CREATE FUNCTION bpmc_window_cumulate(state bigint[]) RETURNS bigint[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
DECLARE
    i int;
BEGIN
    IF state IS NULL THEN
        RETURN NULL;
    END IF;
    FOR i IN 2 .. cardinality(state) LOOP
        state[i] := state[i] + state[i - 1];
    END LOOP;
    RETURN state;
END
$$;

-- The cumulative array of (day of window, count) pairs: O(1) per pair, one
-- running sum at the end; merged element-wise with bpmc_buckets_add.
CREATE AGGREGATE bpmc_window_cum_agg(int, bigint) (
    SFUNC = bpmc_window_accum,
    STYPE = bigint[],
    FINALFUNC = bpmc_window_cumulate
);

-- Two tables: the windows starting in even months (February, April, ...,
-- December) and those starting in odd ones. A day is in one window of each,
-- and a request reads windows of one parity only (they start every second
-- month), so the rows a request reads are not interleaved with the rows of
-- the other windows being written at the same time: half the pages read.
CREATE TABLE account_activity_windows_even (
    make_account_id    VARCHAR(100) NOT NULL,
    customer_id        VARCHAR(100) NOT NULL,
    window_start       DATE NOT NULL,  -- first day of the window's first local month
    cum_ops            BIGINT[] NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (make_account_id, customer_id, window_start),
    CONSTRAINT account_activity_windows_even_start
        CHECK (extract(day FROM window_start) = 1 AND extract(month FROM window_start)::int % 2 = 0)
) WITH (fillfactor = 80);
CREATE INDEX idx_account_activity_windows_even_start ON account_activity_windows_even (window_start);
CREATE INDEX idx_account_activity_windows_even_customer
    ON account_activity_windows_even (customer_id, window_start);

CREATE TABLE account_activity_windows_odd (
    make_account_id    VARCHAR(100) NOT NULL,
    customer_id        VARCHAR(100) NOT NULL,
    window_start       DATE NOT NULL,  -- first day of the window's first local month
    cum_ops            BIGINT[] NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (make_account_id, customer_id, window_start),
    CONSTRAINT account_activity_windows_odd_start
        CHECK (extract(day FROM window_start) = 1 AND extract(month FROM window_start)::int % 2 = 1)
) WITH (fillfactor = 80);
CREATE INDEX idx_account_activity_windows_odd_start ON account_activity_windows_odd (window_start);
CREATE INDEX idx_account_activity_windows_odd_customer
    ON account_activity_windows_odd (customer_id, window_start);

-- The rollup watermark: every event with seq <= last_seq is in the aggregates
-- (and no event with a larger seq is). time_zone is the reporting time zone the
-- newest buckets were built in. The row is locked (FOR UPDATE) by each rollup
-- step and by reaggregate, which serialises exporters sharing the database.
CREATE TABLE rollup_state (
    name        TEXT PRIMARY KEY,
    last_seq    BIGINT NOT NULL,
    time_zone   TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO rollup_state (name, last_seq, time_zone) VALUES ('usage', 0, 'UTC');
