#include "aggregation/rollup.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "common/time_format.h"

namespace bpmc::aggregation {
namespace {

// The HLL parameters of every sketch (migrations/0002_aggregates.sql).
constexpr const char* kHllAgg = "hll_add_agg(h, 14, 5, -1, 1)";
// Memory for the step's hash aggregates: a 200k-event step stays in memory.
constexpr const char* kStepSettings = "SET LOCAL work_mem = '128MB'; SET LOCAL jit = off";
constexpr const char* kLastSeq =
    "SELECT last_seq, time_zone FROM rollup_state WHERE name = 'usage'";
constexpr const char* kSeqLastValue =
    "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('connector_usage', 'seq')"
    "::regclass), 0)";

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

// SQL: the start of the two-month activity window of month parity
// `parity` that holds the local day `day` (an SQL date expression): the
// day's month when its parity is `parity`, else the month before.
std::string ActivityWindowStartSql(const std::string& day, int parity) {
  return "(date_trunc('month', " + day + "::timestamp) - CASE WHEN extract(month FROM " + day +
         ")::int % 2 = " + std::to_string(parity) +
         " THEN interval '0' ELSE interval '1 month' END)::date";
}

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
  if (inc) {
    ctes.push_back(CountsTarget("i_m", "connector_usage_monthly", "connector_id, month",
                                "connector_id, date_trunc('month', day::timestamp)::date AS month",
                                "fk", "sk", ""));
    // Per account, customer and two-month window (migration 0008): the
    // cumulative operations by day of the window, in the two windows holding
    // each day (starting at its month and at the month before; one is in
    // each table). A rebuild re-derives the windows from
    // account_activity_daily instead (RebuildSlice).
    for (int parity : {0, 1}) {
      const std::string table = ActivityWindowTable(parity);
      ctes.push_back(
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
    ctes.push_back("fm AS (SELECT make_account_id, min(first_ts) AS first_ts FROM ua GROUP BY 1)");
    ctes.push_back(
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
  return "WITH " + Join(ctes, ",\n") + "\nSELECT count(*) FROM ev";
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

using SteadyClock = std::chrono::steady_clock;

}  // namespace

// ---------------------------------------------------------------------------

const char* ActivityWindowTable(int month_parity) {
  return month_parity % 2 == 0 ? "account_activity_windows_even" : "account_activity_windows_odd";
}

bool IsKnownTimeZone(pqxx::connection& conn, const std::string& zone) {
  pqxx::nontransaction tx(conn);
  return tx
      .exec_params("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)", zone)[0][0]
      .as<bool>();
}

struct Rollup::Impl {
  RollupOptions options;
  std::shared_ptr<prometheus::Registry> registry;
  FailureHook on_failure;

  prometheus::Gauge* lag_seconds_gauge = nullptr;
  prometheus::Gauge* lag_events_gauge = nullptr;
  prometheus::Counter* steps_ok = nullptr;
  prometheus::Counter* steps_error = nullptr;
  prometheus::Counter* events_total = nullptr;
  prometheus::Histogram* step_seconds = nullptr;

  std::mutex mu;  // serialises steps; guards conn, zone_checked, lag bookkeeping
  std::unique_ptr<pqxx::connection> conn;
  bool zone_checked = false;
  bool zone_known = true;
  bool zone_warned = false;
  SteadyClock::time_point last_good = SteadyClock::now();
  double last_good_lag = 0;
  std::atomic<double> lag_seconds{0};
  std::atomic<double> lag_events{0};

  std::thread thread;
  std::mutex thread_mu;
  std::condition_variable thread_cv;
  std::atomic<bool> stop{false};
  // The connection of a running step, so Stop can cancel its query.
  std::mutex running_mu;
  pqxx::connection* running = nullptr;

  void RegisterMetrics() {
    lag_seconds_gauge =
        &prometheus::BuildGauge()
             .Name("bpmc_exporter_aggregation_lag_seconds")
             .Help("Age of the oldest event not yet in the aggregates (0 when none).")
             .Register(*registry)
             .Add({});
    lag_events_gauge = &prometheus::BuildGauge()
                            .Name("bpmc_exporter_aggregation_lag_events")
                            .Help("Event sequence numbers not yet aggregated (an upper bound).")
                            .Register(*registry)
                            .Add({});
    auto& steps = prometheus::BuildCounter()
                      .Name("bpmc_exporter_aggregation_steps_total")
                      .Help("Aggregation steps, by result.")
                      .Register(*registry);
    steps_ok = &steps.Add({{"result", "ok"}});
    steps_error = &steps.Add({{"result", "error"}});
    events_total = &prometheus::BuildCounter()
                        .Name("bpmc_exporter_aggregated_events_total")
                        .Help("Raw events added to the aggregates by this process.")
                        .Register(*registry)
                        .Add({});
    step_seconds = &prometheus::BuildHistogram()
                        .Name("bpmc_exporter_aggregation_step_duration_seconds")
                        .Help("Duration of aggregation steps that aggregated events.")
                        .Register(*registry)
                        .Add({}, prometheus::Histogram::BucketBoundaries{
                                     0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  }

  void SetLag(double seconds, double events) {
    lag_seconds = seconds;
    lag_events = events;
    lag_seconds_gauge->Set(seconds);
    lag_events_gauge->Set(events);
  }

  // The step statement is prepared once per connection with a generic plan:
  // planning it over every day partition costs ~50 ms, more than a live
  // step's execution (`seq` cannot prune partitions, so a custom plan gains
  // nothing; measured: no slower for a 100k-event backlog either).
  pqxx::connection& Conn() {
    if (!conn || !conn->is_open()) {
      conn.reset();
      conn = std::make_unique<pqxx::connection>(options.database_url);
      pqxx::nontransaction(*conn).exec("SET plan_cache_mode = force_generic_plan");
      conn->prepare("bpmc_rollup_step", IncrementalSql());
      conn->prepare("bpmc_rollup_lag", LagSql());
    }
    return *conn;
  }

  // Checks the zone once per process, on the first connection.
  void CheckZone(pqxx::connection& c) {
    if (zone_checked) return;
    zone_known = IsKnownTimeZone(c, options.time_zone);
    zone_checked = true;
    if (!zone_known) {
      spdlog::error(
          "reporting_time_zone: unknown time zone '{}' (not in pg_timezone_names); "
          "aggregation is stopped",
          options.time_zone);
      return;
    }
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec(kLastSeq);
    if (r.empty()) return;
    const std::string stored = r[0][1].as<std::string>();
    if (stored != options.time_zone && r[0][0].as<int64_t>() > 0) WarnZone(stored);
  }

  void WarnZone(const std::string& stored) {
    if (zone_warned) return;
    zone_warned = true;
    spdlog::warn(
        "reporting_time_zone is '{}' but the aggregates were built in '{}': new day and month "
        "buckets use '{}'; run `bpmc-exporter reaggregate --from ... --to ...` to rebuild past "
        "ones",
        options.time_zone, stored, options.time_zone);
  }

  // Measures the lag after a step (outside its transaction).
  void MeasureLag(pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_prepared("bpmc_rollup_lag");
    const double seconds = std::max(0.0, r[0][0].as<double>());
    SetLag(seconds, r[0][1].as<double>());
    last_good = SteadyClock::now();
    last_good_lag = seconds;
  }

  // One step; throws on database errors. Called with mu held. *idle is set
  // when nothing was beyond the watermark (the lag is then 0).
  RollupResult StepOrThrow(bool* idle) {
    RollupResult result;
    pqxx::connection& c = Conn();
    {
      std::lock_guard<std::mutex> lock(running_mu);
      running = &c;
    }
    struct Clear {
      Impl* impl;
      ~Clear() {
        std::lock_guard<std::mutex> lock(impl->running_mu);
        impl->running = nullptr;
      }
    } clear{this};
    if (stop) throw std::runtime_error("stopping");
    CheckZone(c);
    if (!zone_known) {
      result.ok = false;
      result.error = "reporting_time_zone: unknown time zone '" + options.time_zone + "'";
      return result;
    }
    {
      // Cheap check first: nothing new means no lock and no write at all.
      pqxx::nontransaction tx(c);
      pqxx::result r = tx.exec(std::string("SELECT (") + kSeqLastValue +
                               ") <= (SELECT last_seq FROM rollup_state WHERE name = 'usage')");
      if (!r.empty() && r[0][0].as<bool>()) {
        result.caught_up = true;
        *idle = true;
        return result;
      }
    }
    const auto started = SteadyClock::now();
    pqxx::work txn(c);
    txn.exec(kStepSettings);
    pqxx::result state = txn.exec(std::string(kLastSeq) + " FOR UPDATE");
    if (state.empty()) throw std::runtime_error("rollup_state has no 'usage' row");
    const int64_t last = state[0][0].as<int64_t>();
    const std::string stored_zone = state[0][1].as<std::string>();
    if (stored_zone != options.time_zone && last > 0) WarnZone(stored_zone);
    int64_t current = 0;
    {
      // Wait for every transaction that is inserting into connector_usage:
      // afterwards no seq <= the sequence's value can still commit. Rolling
      // back to the savepoint releases the lock at once.
      pqxx::subtransaction wait(txn, "wait_inserters");
      wait.exec("SET LOCAL lock_timeout = " + std::to_string(options.lock_timeout_ms));
      wait.exec("LOCK TABLE connector_usage IN EXCLUSIVE MODE");
      current = wait.exec(kSeqLastValue)[0][0].as<int64_t>();
      wait.abort();
    }
    const int64_t cap = last + static_cast<int64_t>(options.max_step_events);
    const int64_t upper = std::min(current, cap);
    result.caught_up = upper >= current;
    if (upper > last) {
      result.events = txn.exec_prepared("bpmc_rollup_step", last, upper, options.time_zone)[0][0]
                          .as<uint64_t>();
      txn.exec_params(
          "UPDATE rollup_state SET last_seq = $1, time_zone = $2, updated_at = now() "
          "WHERE name = 'usage'",
          upper, options.time_zone);
    }
    txn.commit();
    if (result.events > 0) {
      step_seconds->Observe(std::chrono::duration<double>(SteadyClock::now() - started).count());
      events_total->Increment(static_cast<double>(result.events));
    }
    return result;
  }

  RollupResult StepLocked() {
    RollupResult result;
    try {
      bool idle = false;
      result = StepOrThrow(&idle);
      if (result.ok && idle) {
        SetLag(0, 0);
        last_good = SteadyClock::now();
        last_good_lag = 0;
      } else if (result.ok && conn) {
        MeasureLag(*conn);
      }
    } catch (const std::exception& e) {
      conn.reset();  // the next step reconnects
      result.ok = false;
      result.error = e.what();
    }
    if (result.ok) {
      steps_ok->Increment();
    } else if (stop) {
      // Cancelled by Stop: not a failure.
    } else {
      steps_error->Increment();
      if (on_failure) on_failure("rollup");
      // Without a fresh measurement the lag grows with the time since the
      // last good one, so an alert on it fires while aggregation is broken.
      const double since = std::chrono::duration<double>(SteadyClock::now() - last_good).count();
      SetLag(last_good_lag + since, lag_events);
      spdlog::warn("aggregation step failed: {}", result.error);
    }
    return result;
  }

  void Loop() {
    for (;;) {
      RollupResult r;
      {
        std::lock_guard<std::mutex> lock(mu);
        r = StepLocked();
      }
      std::unique_lock<std::mutex> lock(thread_mu);
      if (stop) return;
      if (r.ok && !r.caught_up) continue;  // backlog: go on at once
      thread_cv.wait_for(lock, std::chrono::milliseconds(options.interval_ms),
                         [&] { return stop.load(); });
      if (stop) return;
    }
  }
};

Rollup::Rollup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Rollup::~Rollup() { Stop(); }

std::unique_ptr<Rollup> Rollup::Create(RollupOptions options,
                                       std::shared_ptr<prometheus::Registry> registry,
                                       FailureHook on_failure, std::string* error) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->registry = registry ? std::move(registry) : std::make_shared<prometheus::Registry>();
  impl->on_failure = std::move(on_failure);
  impl->RegisterMetrics();
  try {
    impl->CheckZone(impl->Conn());
  } catch (const std::exception& e) {
    impl->conn.reset();
    impl->zone_checked = false;
    spdlog::warn("aggregation: cannot reach the database now ({}); will retry", e.what());
  }
  if (impl->zone_checked && !impl->zone_known) {
    *error = "reporting_time_zone: unknown time zone '" + impl->options.time_zone +
             "' (not in pg_timezone_names)";
    return nullptr;
  }
  return std::unique_ptr<Rollup>(new Rollup(std::move(impl)));
}

RollupResult Rollup::Step() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->StepLocked();
}

RollupResult Rollup::CatchUp() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  RollupResult total;
  for (;;) {
    RollupResult r = impl_->StepLocked();
    total.events += r.events;
    if (impl_->stop && !r.caught_up) {
      total.ok = false;
      total.error = "stopping";
      return total;
    }
    if (!r.ok) {
      total.ok = false;
      total.error = r.error;
      return total;
    }
    if (r.caught_up) {
      total.caught_up = true;
      return total;
    }
  }
}

void Rollup::StartBackground() {
  std::lock_guard<std::mutex> lock(impl_->thread_mu);
  if (impl_->thread.joinable() || impl_->stop) return;
  Impl* impl = impl_.get();
  impl_->thread = std::thread([impl] { impl->Loop(); });
}

void Rollup::Stop() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->thread_mu);
    impl_->stop = true;
  }
  impl_->thread_cv.notify_all();
  {
    // A long step (a backlog) would delay shutdown: cancel its query; the
    // transaction rolls back and the next start redoes it.
    std::lock_guard<std::mutex> lock(impl_->running_mu);
    if (impl_->running) {
      try {
        impl_->running->cancel_query();
      } catch (const std::exception&) {
      }
    }
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

double Rollup::lag_seconds() const { return impl_->lag_seconds; }
double Rollup::lag_events() const { return impl_->lag_events; }

// --- Reaggregate ----------------------------------------------------------

namespace {

bool AllDigits(std::string_view s) {
  for (char ch : s)
    if (ch < '0' || ch > '9') return false;
  return !s.empty();
}

}  // namespace

std::optional<TimeBound> ParseTimeBound(std::string_view text) {
  if (text.size() == 10 && text[4] == '-' && text[7] == '-' && AllDigits(text.substr(0, 4)) &&
      AllDigits(text.substr(5, 2)) && AllDigits(text.substr(8, 2))) {
    const int y = std::stoi(std::string(text.substr(0, 4)));
    const int m = std::stoi(std::string(text.substr(5, 2)));
    const int d = std::stoi(std::string(text.substr(8, 2)));
    static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || d > kDays[m - 1]) return std::nullopt;
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap) return std::nullopt;
    return TimeBound{true, std::string(text)};
  }
  const std::optional<int64_t> micros = ParseRfc3339Micros(text);
  if (!micros) return std::nullopt;
  return TimeBound{false, FormatRfc3339Micros(*micros)};
}

namespace {

constexpr const char* kHourlyTables[] = {"connector_usage_hourly", "usage_by_operation_hourly",
                                         "usage_errors_hourly", "usage_by_customer_hourly",
                                         "platform_usage_hourly"};
constexpr const char* kDailyTables[] = {"connector_usage_daily",
                                        "usage_by_operation_daily",
                                        "usage_errors_daily",
                                        "usage_by_customer_daily",
                                        "account_activity_daily",
                                        "usage_by_customer_operation_daily",
                                        "usage_errors_by_customer_daily",
                                        "platform_usage_daily"};

// The local day a bound falls in; for an upper bound, the first day not
// included (a bound after midnight rounds up).
std::string BoundDay(pqxx::transaction_base& tx, const TimeBound& b, const std::string& zone,
                     bool upper) {
  if (b.is_date) return b.text;
  return tx
      .exec_params(
          "SELECT (CASE WHEN $3 AND ($1::timestamptz AT TIME ZONE $2)::time <> '00:00' "
          "THEN ($1::timestamptz AT TIME ZONE $2)::date + 1 "
          "ELSE ($1::timestamptz AT TIME ZONE $2)::date END)::text",
          b.text, zone, upper)[0][0]
      .as<std::string>();
}

// account_first_seen for the local days [d0, d1), after their
// account_activity_daily rows were rebuilt. Aggregates outside the range are
// trusted: an account recorded as first seen before the range keeps its row;
// for every other account seen in the range, or recorded inside it, the
// first event is on the earliest of: its activity before the range, its
// first raw event in the range, its activity after the range; an account
// with none of these loses its row.
void RebuildFirstSeen(pqxx::work& txn, const std::string& d0, const std::string& d1,
                      const std::string& zone, int64_t last) {
  pqxx::result t = txn.exec_params(
      "SELECT ($1::date::timestamp AT TIME ZONE $3)::text, ($2::date::timestamp AT TIME ZONE "
      "$3)::text",
      d0, d1, zone);
  const std::string t0 = t[0][0].as<std::string>(), t1 = t[0][1].as<std::string>();
  txn.exec_params(
      "CREATE TEMP TABLE bpmc_first_seen_pick ON COMMIT DROP AS "
      "WITH r AS (SELECT DISTINCT ON (u.make_account_id) u.make_account_id, k.owner AS "
      "customer_id, "
      "u.connector_id, u.\"timestamp\" AS ts FROM connector_usage u JOIN api_keys k ON "
      "k.id = u.api_key_id WHERE u.\"timestamp\" >= $1 AND u.\"timestamp\" < $2 AND u.seq <= $3 "
      "ORDER BY u.make_account_id, u.\"timestamp\", k.owner, u.connector_id), "
      "x AS (SELECT make_account_id FROM r UNION SELECT make_account_id FROM account_first_seen "
      "WHERE first_seen >= $1 AND first_seen < $2), "
      "c AS (SELECT x.make_account_id FROM x LEFT JOIN account_first_seen f USING "
      "(make_account_id) "
      "WHERE f.first_seen IS NULL OR f.first_seen >= $1) "
      "SELECT c.make_account_id, coalesce(b.day, CASE WHEN r.ts IS NULL THEN a.day END) AS day, "
      "coalesce(b.customer_id, r.customer_id, a.customer_id) AS customer_id, "
      "coalesce(b.connector_id, r.connector_id, a.connector_id) AS connector_id, "
      "CASE WHEN b.day IS NOT NULL THEN b.day::timestamp AT TIME ZONE $6 "
      "WHEN r.ts IS NOT NULL THEN r.ts ELSE a.day::timestamp AT TIME ZONE $6 END AS first_seen "
      "FROM c LEFT JOIN r USING (make_account_id) "
      "LEFT JOIN LATERAL (SELECT day, customer_id, connector_id FROM account_activity_daily d "
      "WHERE d.make_account_id = c.make_account_id AND d.day < $4::date "
      "ORDER BY day, customer_id, connector_id LIMIT 1) b ON true "
      "LEFT JOIN LATERAL (SELECT day, customer_id, connector_id FROM account_activity_daily d "
      "WHERE d.make_account_id = c.make_account_id AND d.day >= $5::date "
      "ORDER BY day, customer_id, connector_id LIMIT 1) a ON true",
      t0, t1, last, d0, d1, zone);
  txn.exec(
      "DELETE FROM account_first_seen WHERE make_account_id IN "
      "(SELECT make_account_id FROM bpmc_first_seen_pick WHERE first_seen IS NULL)");
  txn.exec(
      "INSERT INTO account_first_seen AS t (make_account_id, customer_id, connector_id, "
      "first_seen) SELECT make_account_id, customer_id, connector_id, first_seen FROM "
      "bpmc_first_seen_pick WHERE first_seen IS NOT NULL ON CONFLICT (make_account_id) DO UPDATE "
      "SET customer_id = EXCLUDED.customer_id, connector_id = EXCLUDED.connector_id, "
      "first_seen = EXCLUDED.first_seen, updated_at = now()");
  // A first event on a day outside the range: its exact time from the raw
  // events of that day (rare: only after a correction; when retention has
  // dropped the day, the day's local midnight stays).
  pqxx::result span = txn.exec_params(
      "SELECT (min(day)::timestamp AT TIME ZONE $1)::text, "
      "((max(day) + 1)::timestamp AT TIME ZONE $1)::text FROM bpmc_first_seen_pick "
      "WHERE day IS NOT NULL",
      zone);
  if (span[0][0].is_null()) return;
  txn.exec_params(
      "WITH looked AS (SELECT DISTINCT ON (u.make_account_id) u.make_account_id, "
      "k.owner AS customer_id, u.connector_id, u.\"timestamp\" AS ts FROM connector_usage u "
      "JOIN bpmc_first_seen_pick p ON p.make_account_id = u.make_account_id "
      "AND u.\"timestamp\" >= p.day::timestamp AT TIME ZONE $4 "
      "AND u.\"timestamp\" < (p.day + 1)::timestamp AT TIME ZONE $4 "
      "JOIN api_keys k ON k.id = u.api_key_id WHERE p.day IS NOT NULL AND u.seq <= $3 "
      "AND u.\"timestamp\" >= $1 AND u.\"timestamp\" < $2 "
      "ORDER BY u.make_account_id, u.\"timestamp\", k.owner, u.connector_id) "
      "UPDATE account_first_seen t SET customer_id = l.customer_id, connector_id = l.connector_id, "
      "first_seen = l.ts, updated_at = now() FROM looked l WHERE t.make_account_id = "
      "l.make_account_id",
      span[0][0].as<std::string>(), span[0][1].as<std::string>(), last, zone);
}

// Rebuilds the local days [d0, d1), all inside one calendar month, in one
// transaction. Returns the raw events read.
uint64_t RebuildSlice(pqxx::connection& conn, const std::string& d0, const std::string& d1,
                      const std::string& zone) {
  pqxx::work txn(conn);
  txn.exec(kStepSettings);
  const int64_t last = txn.exec(std::string(kLastSeq) + " FOR UPDATE")[0][0].as<int64_t>();
  // The UTC hours covering the days (whole hours: a half-hour zone's
  // midnight lies inside one).
  pqxx::result h = txn.exec_params(
      "SELECT date_trunc('hour', $1::date::timestamp AT TIME ZONE $3, 'UTC')::text, "
      "(date_trunc('hour', ($2::date::timestamp AT TIME ZONE $3) - interval '1 microsecond', "
      "'UTC') + interval '1 hour')::text",
      d0, d1, zone);
  const std::string h0 = h[0][0].as<std::string>(), h1 = h[0][1].as<std::string>();
  for (const char* t : kHourlyTables)
    txn.exec_params(std::string("DELETE FROM ") + t + " WHERE hour >= $1 AND hour < $2", h0, h1);
  for (const char* t : kDailyTables)
    txn.exec_params(std::string("DELETE FROM ") + t + " WHERE day >= $1::date AND day < $2::date",
                    d0, d1);
  const uint64_t events =
      txn.exec_params(RebuildSql(), h0, h1, zone, last, d0, d1)[0][0].as<uint64_t>();

  // The month's row from its daily rows (sums and sketch unions merge exactly).
  txn.exec_params(
      "DELETE FROM connector_usage_monthly WHERE month = date_trunc('month', $1::date)::date", d0);
  txn.exec_params(
      "INSERT INTO connector_usage_monthly (connector_id, month, operation_count, error_count, "
      "users, duration_sum_ms, duration_count, duration_buckets) "
      "SELECT connector_id, date_trunc('month', $1::date)::date, sum(operation_count)::bigint, "
      "sum(error_count)::bigint, hll_union_agg(users), sum(duration_sum_ms), "
      "sum(duration_count)::bigint, bpmc_buckets_sum(duration_buckets) "
      "FROM connector_usage_daily WHERE day >= date_trunc('month', $1::date)::date "
      "AND day < (date_trunc('month', $1::date) + interval '1 month')::date GROUP BY 1",
      d0);
  // The two windows holding the month (starting at it and at the month
  // before, one in each table), likewise from account_activity_daily.
  for (int parity : {0, 1}) {
    const std::string table = ActivityWindowTable(parity);
    const std::string start = ActivityWindowStartSql("$1::date", parity);
    txn.exec_params("DELETE FROM " + table + " WHERE window_start = " + start, d0);
    txn.exec_params("INSERT INTO " + table +
                        " (make_account_id, customer_id, window_start, cum_ops) "
                        "SELECT make_account_id, customer_id, w.start, "
                        "bpmc_window_cum_agg(day - w.start + 1, operation_count) FROM (SELECT " +
                        start +
                        " AS start) w JOIN account_activity_daily d ON d.day >= w.start "
                        "AND d.day < (w.start + interval '2 months')::date GROUP BY 1, 2, 3",
                    d0);
  }

  RebuildFirstSeen(txn, d0, d1, zone, last);
  txn.commit();
  return events;
}

}  // namespace

ReaggregateResult Reaggregate(pqxx::connection& conn, const TimeBound& from, const TimeBound& to,
                              const std::string& time_zone) {
  ReaggregateResult result;
  try {
    std::string d0, d1;
    std::vector<std::pair<std::string, std::string>> slices;
    {
      pqxx::work txn(conn);
      d0 = BoundDay(txn, from, time_zone, false);
      d1 = BoundDay(txn, to, time_zone, true);
      if (d0 >= d1) {  // both are YYYY-MM-DD
        result.ok = false;
        result.error = "--to: the range is empty (to must be after from; to is exclusive)";
        return result;
      }
      // Raw events older than the oldest day partition are gone (retention):
      // rebuilding their buckets would erase them.
      pqxx::result oldest = txn.exec_params(
          "SELECT p.day::text, date_trunc('hour', $1::date::timestamp AT TIME ZONE $2, 'UTC') "
          ">= p.day::timestamp AT TIME ZONE 'UTC' FROM (SELECT to_date(substr(min(c.relname), "
          "length('connector_usage_p') + 1), 'YYYYMMDD') AS day FROM pg_inherits i JOIN pg_class "
          "c ON c.oid = i.inhrelid WHERE i.inhparent = 'connector_usage'::regclass AND c.relname "
          "~ '^connector_usage_p[0-9]{8}$') p",
          d0, time_zone);
      if (oldest[0][0].is_null() || !oldest[0][1].as<bool>()) {
        result.ok = false;
        result.error = oldest[0][0].is_null()
                           ? "--from: no raw events are retained; nothing can be rebuilt"
                           : "--from: raw events before " + oldest[0][0].as<std::string>() +
                                 " (UTC) were dropped by retention; rebuilding earlier days "
                                 "would erase their aggregates";
        return result;
      }
      pqxx::result r = txn.exec_params(
          "SELECT greatest(m::date, $1::date)::text, "
          "least((m + interval '1 month')::date, $2::date)::text, "
          "($2::date - 1)::text FROM generate_series(date_trunc('month', $1::date::timestamp), "
          "$2::date::timestamp - interval '1 day', interval '1 month') m ORDER BY m",
          d0, d1);
      for (const auto& row : r)
        slices.emplace_back(row[0].as<std::string>(), row[1].as<std::string>());
      result.last_day = r[0][2].as<std::string>();
      txn.commit();
    }
    result.first_day = d0;
    for (const auto& [s0, s1] : slices) {
      result.events += RebuildSlice(conn, s0, s1, time_zone);
      ++result.transactions;
      spdlog::info("reaggregate: rebuilt local days [{}, {}) ({} events so far)", s0, s1,
                   result.events);
    }
  } catch (const std::exception& e) {
    result.ok = false;
    result.error = e.what();
  }
  return result;
}

}  // namespace bpmc::aggregation
