// The SQL text of the rollup (rollup_sql.h): the one aggregation statement in
// its incremental and rebuild forms, and the lag query. Builders only; nothing
// here talks to the database.

#include "rollup_sql.h"

#include <string>
#include <vector>

#include "aggregation/rollup.h"

namespace bpmc::aggregation {
namespace {

// The HLL parameters of every sketch (migrations/0002_aggregates.sql).
constexpr const char* kHllAgg = "hll_add_agg(h, 14, 5, -1, 1)";

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = list.find(", ", start);
    out.push_back(list.substr(start, comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 2;
  }
}

// --- The aggregation statement ------------------------------------------
//
// One statement of data-modifying CTEs. `ev` is the slice of raw events;
// the intermediate CTEs shrink it step by step (per connector, operation,
// customer, UTC hour, local day and duration bucket; per account), and each
// target is an INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE that
// adds to what the table holds. Every event carries its UTC hour and its
// local day (a zone with a half-hour offset splits an hour between days).

enum class Mode {
  // Parameters: $1 last_seq (exclusive), $2 upper seq (inclusive), $3 zone.
  kIncremental,
  // Parameters: $1..$2 the UTC hour range [h0, h1), $3 zone, $4 last_seq,
  // $5..$6 the local day range [d0, d1). The buckets were deleted before;
  // monthly rows and account_first_seen are rebuilt by separate statements.
  kRebuild,
};

constexpr const char* kCountsSet =
    "operation_count = t.operation_count + EXCLUDED.operation_count, "
    "error_count = t.error_count + EXCLUDED.error_count, "
    "duration_sum_ms = t.duration_sum_ms + EXCLUDED.duration_sum_ms, "
    "duration_count = t.duration_count + EXCLUDED.duration_count, "
    "duration_buckets = bpmc_buckets_add(t.duration_buckets, EXCLUDED.duration_buckets), "
    "updated_at = now()";

// A target with counts, durations and histogram; with `users_source`, also an
// HLL sketch united from that CTE's per-bucket sketches.
std::string CountsTarget(const std::string& cte, const std::string& table, const std::string& keys,
                         const std::string& key_exprs, const std::string& source,
                         const std::string& users_source, const std::string& filter) {
  const std::vector<std::string> key_list = Split(keys);
  std::vector<std::string> c_keys, cols = key_list;
  for (const auto& k : key_list) c_keys.push_back("c." + k);
  const bool users = !users_source.empty();
  std::string group;
  for (size_t i = 1; i <= key_list.size(); ++i) group += (i > 1 ? ", " : "") + std::to_string(i);
  std::string sql =
      cte + " AS (INSERT INTO " + table + " AS t (" + keys + ", operation_count, error_count" +
      (users ? ", users" : "") + ", duration_sum_ms, duration_count, duration_buckets) SELECT " +
      Join(c_keys, ", ") + ", c.n, c.errors" + (users ? ", u.users" : "") +
      ", c.dur_sum, c.dur_n, c.buckets FROM (SELECT " + key_exprs +
      ", sum(n)::bigint AS n, sum(errors)::bigint AS errors, sum(dur_sum) AS dur_sum,"
      " sum(dur_n)::bigint AS dur_n, bpmc_buckets_agg(bucket, dur_n) AS buckets FROM " +
      source + filter + " GROUP BY " + group + ") c";
  if (users) {
    sql += " JOIN (SELECT " + key_exprs + ", hll_union_agg(users) AS users FROM " + users_source +
           filter + " GROUP BY " + group + ") u USING (" + keys + ")";
  }
  sql += " ON CONFLICT (" + keys + ") DO UPDATE SET " + kCountsSet;
  if (users) sql += ", users = hll_union(t.users, EXCLUDED.users)";
  sql += " RETURNING 1)";
  return sql;
}

// An errors target keyed by `keys` (ending in error_type) and `time`.
std::string ErrorsTarget(const std::string& cte, const std::string& table, const std::string& keys,
                         const std::string& time, const std::string& filter) {
  std::string group;
  for (size_t i = 1; i <= Split(keys).size() + 1; ++i)
    group += (i > 1 ? ", " : "") + std::to_string(i);
  return cte + " AS (INSERT INTO " + table + " AS t (" + keys + ", " + time +
         ", error_count, last_message, last_seen_at)"
         " SELECT " +
         keys + ", " + time +
         ", sum(n)::bigint, (array_agg(last_message ORDER BY last_ts DESC,"
         " coalesce(last_message, '') DESC))[1], max(last_ts) FROM er" +
         filter + " GROUP BY " + group + " ON CONFLICT (" + keys + ", " + time +
         ") DO UPDATE SET"
         " error_count = t.error_count + EXCLUDED.error_count,"
         " last_message = CASE WHEN t.last_seen_at IS NULL OR EXCLUDED.last_seen_at > "
         "t.last_seen_at"
         " OR (EXCLUDED.last_seen_at = t.last_seen_at"
         " AND coalesce(EXCLUDED.last_message, '') > coalesce(t.last_message, ''))"
         " THEN EXCLUDED.last_message ELSE t.last_message END,"
         " last_seen_at = greatest(t.last_seen_at, EXCLUDED.last_seen_at), updated_at = now()"
         " RETURNING 1)";
}

// The targets only the incremental statement has: the monthly rows, the
// activity windows and account_first_seen (a rebuild re-derives them with
// separate statements, reaggregate.cpp).
void AppendIncrementalTargets(std::vector<std::string>* ctes) {
  ctes->push_back(CountsTarget("i_m", "connector_usage_monthly", "connector_id, month",
                               "connector_id, date_trunc('month', day::timestamp)::date AS month",
                               "fk", "sk", ""));
  // Per account, customer and two-month window (migration 0008): the
  // cumulative operations by day of the window, in the two windows holding
  // each day (starting at its month and at the month before; one is in
  // each table). A rebuild re-derives the windows from
  // account_activity_daily instead (RebuildSlice).
  for (int parity : {0, 1}) {
    const std::string table = ActivityWindowTable(parity);
    ctes->push_back(
        "i_aw" + std::to_string(parity) + " AS (INSERT INTO " + table +
        " AS t (make_account_id, customer_id, window_start, cum_ops) SELECT make_account_id,"
        " customer_id, start, bpmc_window_cum_agg(day - start + 1, n) FROM (SELECT"
        " make_account_id, customer_id, day, " +
        ActivityWindowStartSql("day", parity) +
        " AS start, sum(n)::bigint AS n FROM ua GROUP BY 1, 2, 3) ad GROUP BY 1, 2, 3"
        " ON CONFLICT (make_account_id, customer_id, window_start) DO UPDATE SET"
        " cum_ops = bpmc_buckets_add(t.cum_ops, EXCLUDED.cum_ops), updated_at = now()"
        " RETURNING 1)");
  }
  // Only accounts new or seen earlier than recorded reach the upsert, so a
  // step does not lock every known account's row.
  ctes->push_back("fm AS (SELECT make_account_id, min(first_ts) AS first_ts FROM ua GROUP BY 1)");
  ctes->push_back(
      "i_fs AS (INSERT INTO account_first_seen AS t (make_account_id, customer_id,"
      " connector_id, first_seen) SELECT DISTINCT ON (ua.make_account_id) ua.make_account_id,"
      " ua.customer_id, ua.connector_id, ua.first_ts FROM fm JOIN ua ON ua.make_account_id ="
      " fm.make_account_id AND ua.first_ts = fm.first_ts WHERE NOT EXISTS (SELECT 1 FROM"
      " account_first_seen a WHERE a.make_account_id = fm.make_account_id AND"
      " a.first_seen <= fm.first_ts) ORDER BY ua.make_account_id, ua.customer_id,"
      " ua.connector_id ON CONFLICT (make_account_id) DO UPDATE SET customer_id ="
      " EXCLUDED.customer_id, connector_id = EXCLUDED.connector_id, first_seen ="
      " EXCLUDED.first_seen, updated_at = now() WHERE EXCLUDED.first_seen < t.first_seen"
      " RETURNING 1)");
}

// The statement as a list of CTEs: mostly SQL text, the table data of the
// aggregates (one entry per intermediate CTE or target table).
std::string AggregationSql(Mode mode) {
  const bool inc = mode == Mode::kIncremental;
  const std::string ev_where =
      inc ? "u.seq > $1 AND u.seq <= $2"
          : "u.\"timestamp\" >= $1 AND u.\"timestamp\" < $2 AND u.seq <= $4";
  // Daily targets of a rebuild take only the days being rebuilt (the hour
  // range may reach into a neighbouring day for half-hour zones).
  const std::string dayf = inc ? "" : " WHERE day >= $5 AND day < $6";
  const std::string sums =
      "sum(n)::bigint AS n, sum(errors)::bigint AS errors, sum(dur_sum) AS dur_sum,"
      " sum(dur_n)::bigint AS dur_n";
  std::vector<std::string> ctes = {
      "ev AS MATERIALIZED (SELECT u.connector_id, u.operation, k.owner AS customer_id,"
      " u.make_account_id, u.\"timestamp\" AS ts, date_trunc('hour', u.\"timestamp\", 'UTC') AS "
      "hour,"
      " (u.\"timestamp\" AT TIME ZONE $3)::date AS day, (u.status = 'error') AS is_error,"
      " u.error_type, u.error_message, u.duration_ms, bpmc_duration_bucket(u.duration_ms) AS bucket"
      " FROM connector_usage u JOIN api_keys k ON k.id = u.api_key_id WHERE " +
          ev_where + ")",
      // Finest counts.
      "f AS MATERIALIZED (SELECT connector_id, operation, customer_id, hour, day, bucket,"
      " count(*) AS n, count(*) FILTER (WHERE is_error) AS errors,"
      " coalesce(sum(duration_ms), 0) AS dur_sum, count(duration_ms) AS dur_n"
      " FROM ev GROUP BY 1, 2, 3, 4, 5, 6)",
      "fo AS MATERIALIZED (SELECT connector_id, operation, hour, day, bucket, " + sums +
          " FROM f GROUP BY 1, 2, 3, 4, 5)",
      "fc AS MATERIALIZED (SELECT customer_id, connector_id, hour, day, bucket, " + sums +
          " FROM f GROUP BY 1, 2, 3, 4, 5)",
      "fk AS MATERIALIZED (SELECT connector_id, hour, day, bucket, " + sums +
          " FROM fo GROUP BY 1, 2, 3, 4)",
      // Per account: sketch inputs, exact activity, first-seen candidates.
      "ua AS MATERIALIZED (SELECT connector_id, customer_id, make_account_id, hour, day,"
      " hll_hash_text(make_account_id) AS h, count(*) AS n,"
      " count(*) FILTER (WHERE is_error) AS errors, min(ts) AS first_ts"
      " FROM ev GROUP BY 1, 2, 3, 4, 5)",
      // Sketches per customer from the accounts, per connector by union
      // (a union of sketches equals the sketch of the union).
      std::string("skc AS MATERIALIZED (SELECT customer_id, connector_id, hour, day, ") + kHllAgg +
          " AS users FROM ua GROUP BY 1, 2, 3, 4)",
      "sk AS MATERIALIZED (SELECT connector_id, hour, day, hll_union_agg(users) AS users"
      " FROM skc GROUP BY 1, 2, 3)",
      "er AS MATERIALIZED (SELECT customer_id, connector_id, operation, coalesce(error_type,"
      " 'unknown') AS error_type, hour, day, count(*) AS n, max(ts) AS last_ts,"
      " (array_agg(error_message ORDER BY ts DESC, coalesce(error_message, '') DESC))[1]"
      " AS last_message FROM ev WHERE is_error GROUP BY 1, 2, 3, 4, 5, 6)",
      CountsTarget("i_h", "connector_usage_hourly", "connector_id, hour", "connector_id, hour",
                   "fk", "sk", ""),
      CountsTarget("i_d", "connector_usage_daily", "connector_id, day", "connector_id, day", "fk",
                   "sk", dayf),
      // All connectors together (migration 0007): the union of the
      // connectors' sketches of the hour / day.
      CountsTarget("i_ph", "platform_usage_hourly", "hour", "hour", "fk", "sk", ""),
      CountsTarget("i_pd", "platform_usage_daily", "day", "day", "fk", "sk", dayf),
      CountsTarget("i_oh", "usage_by_operation_hourly", "connector_id, operation, hour",
                   "connector_id, operation, hour", "fo", "", ""),
      CountsTarget("i_od", "usage_by_operation_daily", "connector_id, operation, day",
                   "connector_id, operation, day", "fo", "", dayf),
      CountsTarget("i_ch", "usage_by_customer_hourly", "customer_id, connector_id, hour",
                   "customer_id, connector_id, hour", "fc", "skc", ""),
      CountsTarget("i_cd", "usage_by_customer_daily", "customer_id, connector_id, day",
                   "customer_id, connector_id, day", "fc", "skc", dayf),
      CountsTarget("i_cod", "usage_by_customer_operation_daily",
                   "customer_id, connector_id, operation, day",
                   "customer_id, connector_id, operation, day", "f", "", dayf),
      ErrorsTarget("i_eh", "usage_errors_hourly", "connector_id, operation, error_type", "hour",
                   ""),
      ErrorsTarget("i_ed", "usage_errors_daily", "connector_id, operation, error_type", "day",
                   dayf),
      ErrorsTarget("i_ecd", "usage_errors_by_customer_daily",
                   "customer_id, connector_id, operation, error_type", "day", dayf),
      "i_aa AS (INSERT INTO account_activity_daily AS t (make_account_id, customer_id,"
      " connector_id, day, operation_count, error_count) SELECT make_account_id, customer_id,"
      " connector_id, day, sum(n)::bigint, sum(errors)::bigint FROM ua" +
          dayf +
          " GROUP BY 1, 2, 3, 4 ON CONFLICT (make_account_id, customer_id, connector_id, day)"
          " DO UPDATE SET operation_count = t.operation_count + EXCLUDED.operation_count,"
          " error_count = t.error_count + EXCLUDED.error_count, updated_at = now() RETURNING 1)",
  };
  if (inc) AppendIncrementalTargets(&ctes);
  return "WITH " + Join(ctes, ",\n") + "\nSELECT count(*) FROM ev";
}

}  // namespace

// SQL: the start of the two-month activity window of month parity
// `parity` that holds the local day `day` (an SQL date expression): the
// day's month when its parity is `parity`, else the month before.
std::string ActivityWindowStartSql(const std::string& day, int parity) {
  return "(date_trunc('month', " + day + "::timestamp) - CASE WHEN extract(month FROM " + day +
         ")::int % 2 = " + std::to_string(parity) +
         " THEN interval '0' ELSE interval '1 month' END)::date";
}

const std::string& IncrementalSql() {
  static const std::string sql = AggregationSql(Mode::kIncremental);
  return sql;
}
const std::string& RebuildSql() {
  static const std::string sql = AggregationSql(Mode::kRebuild);
  return sql;
}

// Lag: age of the oldest event above the watermark (DB clock), and the
// sequence numbers above it. The watermark is a scalar subquery so that the
// planner seeks the seq index from it (a join with the CTE read every
// partition's seq index in full: 3 s at 1M rows).
const std::string& LagSql() {
  static const std::string sql =
      "WITH s AS (SELECT last_seq FROM rollup_state WHERE name = 'usage') "
      "SELECT coalesce(extract(epoch FROM clock_timestamp() - (SELECT u.created_at FROM "
      "connector_usage u WHERE u.seq > (SELECT last_seq FROM s) ORDER BY u.seq LIMIT 1)), "
      "0)::float8, greatest((" +
      std::string(kSeqLastValue) +
      ") - (SELECT last_seq FROM s), "
      "0)::float8";
  return sql;
}

const char* ActivityWindowTable(int month_parity) {
  return month_parity % 2 == 0 ? "account_activity_windows_even" : "account_activity_windows_odd";
}

}  // namespace bpmc::aggregation
