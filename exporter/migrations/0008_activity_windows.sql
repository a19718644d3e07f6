-- Per-account activity in overlapping two-month windows (docs/AGGREGATION.md;
-- measured in docs/BENCHMARKS.md), replacing account_activity_monthly of 0007.
--
-- account_activity_windows_even / _odd: one row per Make account, customer
-- and window, a window being a local calendar month and the next one
-- (window_start = the first day of the first month). cum_ops[i] = the account's operations on the
-- window's days 1..i (cumulative, 62 elements: two months have at most 62
-- days; the elements after the window's last day repeat its total). Every
-- month is in two windows (starting at it and at the month before), so a
-- period within two calendar months -- the default 30 days always is -- reads
-- one row per account: operations of the window's days a..b = cum_ops[b] -
-- cum_ops[a - 1]. The users endpoint's activity distribution read two rows
-- per account from account_activity_monthly (one per month) and merged them;
-- a longer period reads the windows starting every second month.
--
-- Backfilled exactly from account_activity_daily (which holds every event up
-- to rollup_state.last_seq). The rollup_state row is locked first, so no
-- rollup step of any exporter sharing the database runs between the backfill
-- and the commit. Exporters of an older version keep writing
-- account_activity_monthly, which is gone: upgrade every replica together.
SELECT last_seq FROM rollup_state WHERE name = 'usage' FOR UPDATE;

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

CREATE TABLE account_activity_windows_odd (LIKE account_activity_windows_even INCLUDING DEFAULTS)
    WITH (fillfactor = 80);
ALTER TABLE account_activity_windows_odd
    ADD PRIMARY KEY (make_account_id, customer_id, window_start),
    ADD CONSTRAINT account_activity_windows_odd_start
        CHECK (extract(day FROM window_start) = 1 AND extract(month FROM window_start)::int % 2 = 1);
CREATE INDEX idx_account_activity_windows_odd_start ON account_activity_windows_odd (window_start);
CREATE INDEX idx_account_activity_windows_odd_customer
    ON account_activity_windows_odd (customer_id, window_start);

CREATE TEMPORARY TABLE activity_windows ON COMMIT DROP AS
SELECT d.make_account_id, d.customer_id, w.start AS window_start,
       bpmc_window_cum_agg(d.day - w.start + 1, d.n) AS cum_ops
FROM (SELECT make_account_id, customer_id, day, sum(operation_count)::bigint AS n
      FROM account_activity_daily GROUP BY 1, 2, 3) d
CROSS JOIN LATERAL (VALUES (date_trunc('month', d.day::timestamp)::date),
                           ((date_trunc('month', d.day::timestamp) - interval '1 month')::date)) w(start)
GROUP BY 1, 2, 3;
INSERT INTO account_activity_windows_even (make_account_id, customer_id, window_start, cum_ops)
SELECT * FROM activity_windows WHERE extract(month FROM window_start)::int % 2 = 0;
INSERT INTO account_activity_windows_odd (make_account_id, customer_id, window_start, cum_ops)
SELECT * FROM activity_windows WHERE extract(month FROM window_start)::int % 2 = 1;

DROP TABLE account_activity_monthly;
DROP AGGREGATE bpmc_cum_agg(int, bigint);
DROP FUNCTION bpmc_cum_accum(bigint[], int, bigint);
