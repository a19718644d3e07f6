// Incremental aggregation against a real PostgreSQL: every aggregate table is
// compared with a GROUP BY over the raw events written here, independently of
// the product's SQL (the bucket bounds are restated below); late events,
// duplicates, concurrent replicas, the reporting time zone, reaggregate, p95
// error and the lag gauge. The step over many events prints its throughput
// (BPMC_ROLLUP_BENCH_EVENTS=1000000 for the 1M figure in docs/AGGREGATION.md).
#include "aggregation/rollup.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "common/clock.h"
#include "common/testing/temp_dir.h"
#include "common/time.h"
#include "exporter/service.h"
#include "ingestion/store.h"
#include "testing/exporter_harness.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using aggregation::ParseTimeBound;
using aggregation::Reaggregate;
using aggregation::Rollup;
using aggregation::RollupOptions;

int64_t NowMicros() { return SystemClock::Get().NowMicros(); }

// Raw events joined with their customer, as the oracle queries read them.
// `bucket` is the histogram bucket of the duration, restated from the
// documented bounds (1.25^k ms rounded to 1 µs, k = 0..50; bucket 1 below
// 1 ms) rather than taken from the schema's functions.
const char* kRaw =
    "bounds AS (SELECT array_agg(round(power(1.25::numeric, k), 3)::float8 ORDER BY k) AS b "
    "FROM generate_series(0, 50) k), "
    "r AS (SELECT u.connector_id, u.operation, k.owner AS customer_id, u.make_account_id, "
    "u.\"timestamp\" AS ts, u.status, coalesce(u.error_type, 'unknown') AS error_type, "
    "u.error_message, u.duration_ms, width_bucket(u.duration_ms, (SELECT b FROM bounds)) + 1 "
    "AS bucket FROM connector_usage u JOIN api_keys k ON k.id = u.api_key_id)";
const char* kExpectedBucket = "r.bucket";

class RollupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>(SharedCluster());
    conn_ = std::make_unique<pqxx::connection>(db_->url);
    // A second customer, so per-customer tables have more than one.
    identity::CreateApiKey(*conn_, "globex");
    ingestion::EnsureDayPartitions(*conn_, NowMicros() - 70 * kMicrosPerDay,
                                   NowMicros() + 2 * kMicrosPerDay);
  }

  std::unique_ptr<Rollup> MakeRollup(const std::string& zone = "UTC",
                                     uint64_t max_step_events = 200000,
                                     std::shared_ptr<prometheus::Registry> registry = nullptr) {
    RollupOptions o;
    o.database_url = db_->url;
    o.time_zone = zone;
    o.max_step_events = max_step_events;
    std::string error;
    auto r = Rollup::Create(o, std::move(registry), {}, &error);
    EXPECT_TRUE(r) << error;
    return r;
  }

  long long Scalar(const std::string& sql) { return db_->Scalar(sql); }

  // Inserts n synthetic events with timestamps uniform in
  // [now - days_back days, now - days_back days + span_seconds), `accounts`
  // distinct Make accounts, two connectors, two customers, five operations,
  // 10 % errors and 10 % without duration. Deterministic for a given seed.
  void InsertSynthetic(long long n, double days_back, double span_seconds, int accounts,
                       double seed) {
    pqxx::work txn(*conn_);
    txn.exec_params("SELECT setseed($1)", seed);
    txn.exec_params(
        "INSERT INTO connector_usage (id, api_key_id, connector_id, make_account_id, operation, "
        "\"timestamp\", status, error_type, error_message, duration_ms) "
        "SELECT gen_random_uuid(), k.keys[1 + floor(g.r[1] * cardinality(k.keys))::int], "
        "(ARRAY['crm-connector', 'payment-connector'])[1 + floor(g.r[2] * 2)::int], "
        "'acct-' || floor(g.r[3] * $2)::int, 'op' || floor(g.r[4] * 5)::int, "
        "now() - $3 * interval '1 day' + g.r[5] * $4 * interval '1 second', "
        "CASE WHEN g.r[6] < 0.1 THEN 'error' ELSE 'success' END, "
        "CASE WHEN g.r[6] < 0.05 THEN 'timeout' WHEN g.r[6] < 0.08 THEN 'auth_error' END, "
        "CASE WHEN g.r[6] < 0.1 THEN 'message ' || g.i END, "
        "CASE WHEN g.r[7] < 0.1 THEN NULL ELSE round(exp(g.r[8] * 10)::numeric, 3)::float8 END "
        "FROM (SELECT i, ARRAY[random(), random(), random(), random(), random(), random(), "
        "random(), random()] AS r FROM generate_series(1, $1) i) g, "
        "(SELECT array_agg(id ORDER BY owner) AS keys FROM api_keys) k",
        n, accounts, days_back, span_seconds);
    txn.commit();
  }

  // Inserts one event (idempotently on (id, timestamp), like the writer).
  void InsertOne(const std::string& id, const std::string& ts, const std::string& account = "a1",
                 const std::string& connector = "crm-connector",
                 const std::string& status = "success", double duration_ms = 10) {
    pqxx::work txn(*conn_);
    txn.exec_params(
        "INSERT INTO connector_usage (id, api_key_id, connector_id, make_account_id, operation, "
        "\"timestamp\", status, duration_ms) SELECT $1::uuid, id, $2, $3, 'getContact', "
        "$4::timestamptz, $5, $6 FROM api_keys WHERE owner = 'acme' "
        "ON CONFLICT DO NOTHING",
        id, connector, account, ts, status, duration_ms);
    txn.commit();
  }

  // Rows that differ between an aggregate table and the GROUP BY over raw
  // events (missing on either side, or any value different). `keys` are the
  // table's key columns, `raw_keys` the same expressions over `r`.
  long long CountMismatch(const std::string& table, const std::string& keys,
                          const std::string& raw_keys, bool users, bool durations,
                          const std::string& raw_filter = "") {
    const std::string dur_cols =
        durations ? ", coalesce(sum(duration_ms), 0) AS dur_sum, count(duration_ms) AS dur_n" : "";
    const std::string user_cols = users ? ", count(DISTINCT make_account_id) AS users" : "";
    std::string group;
    const int nkeys = static_cast<int>(std::count(keys.begin(), keys.end(), ',')) + 1;
    for (int i = 1; i <= nkeys; ++i) group += (i > 1 ? ", " : "") + std::to_string(i);
    std::string sql = std::string("WITH ") + kRaw + ", e AS (SELECT " + raw_keys +
                      ", count(*) AS n, count(*) FILTER (WHERE status = 'error') AS errors" +
                      dur_cols + user_cols + " FROM r " + raw_filter + " GROUP BY " + group +
                      "), a AS (SELECT " + keys + ", operation_count AS n, error_count AS errors" +
                      (durations ? ", duration_sum_ms AS dur_sum, duration_count AS dur_n" : "") +
                      (users ? ", round(hll_cardinality(users)) AS users" : "") + " FROM " + table +
                      ") SELECT count(*) FROM a FULL JOIN e USING (" + keys +
                      ") WHERE a.n IS DISTINCT FROM e.n OR a.errors IS DISTINCT FROM e.errors";
    if (durations)
      sql +=
          " OR a.dur_n IS DISTINCT FROM e.dur_n OR NOT (abs(a.dur_sum - e.dur_sum) <= "
          "1e-6 * greatest(1, abs(e.dur_sum)))";
    // Exact for small sets (HLL's explicit mode holds up to 1,280 ids),
    // otherwise within three standard errors (3 x 0.81 %).
    if (users)
      sql +=
          " OR (e.users <= 1280 AND a.users IS DISTINCT FROM e.users) "
          "OR NOT (abs(a.users - e.users) <= 0.0244 * e.users)";
    const long long bad = Scalar(sql);
    if (bad > 0) {  // show a few for the failure message
      pqxx::work txn(*conn_);
      const std::string head = "SELECT count(*) FROM a FULL JOIN";
      std::string rows_sql = sql;
      rows_sql.replace(rows_sql.find(head), head.size(), "SELECT * FROM a FULL JOIN");
      rows_sql += " LIMIT 5";
      for (const auto& row : txn.exec(rows_sql)) {
        std::string line = table + ":";
        for (const auto& f : row) line += " " + std::string(f.is_null() ? "NULL" : f.c_str());
        std::printf("%s\n", line.c_str());
      }
    }
    return bad;
  }

  // (key, bucket, count) rows that differ between the stored histograms and
  // the expected bucket of each raw duration.
  long long CountBucketMismatch(const std::string& table, const std::string& keys,
                                const std::string& raw_keys) {
    const int nkeys = static_cast<int>(std::count(keys.begin(), keys.end(), ',')) + 1;
    std::string group;
    for (int i = 1; i <= nkeys + 1; ++i) group += (i > 1 ? ", " : "") + std::to_string(i);
    const std::string sql =
        std::string("WITH ") + kRaw + ", e AS (SELECT " + raw_keys + ", " + kExpectedBucket +
        " AS b, count(*) AS n FROM r WHERE duration_ms IS NOT NULL GROUP BY " + group +
        "), a AS (SELECT " + keys + ", x.b::bigint AS b, x.n FROM " + table +
        ", unnest(duration_buckets) WITH ORDINALITY x(n, b) WHERE x.n > 0) "
        "SELECT count(*) FROM ((SELECT * FROM a EXCEPT ALL SELECT * FROM e) "
        "UNION ALL (SELECT * FROM e EXCEPT ALL SELECT * FROM a)) d";
    return Scalar(sql);
  }

  // Every aggregate table against raw events, in reporting time zone `zone`.
  void ExpectAllMatchRaw(const std::string& zone) {
    const std::string day = "(ts AT TIME ZONE '" + zone + "')::date AS day";
    const std::string hour = "date_trunc('hour', ts, 'UTC') AS hour";
    const std::string month =
        "date_trunc('month', (ts AT TIME ZONE '" + zone + "'))::date AS month";
    EXPECT_EQ(CountMismatch("connector_usage_hourly", "connector_id, hour", "connector_id, " + hour,
                            true, true),
              0);
    EXPECT_EQ(CountMismatch("connector_usage_daily", "connector_id, day", "connector_id, " + day,
                            true, true),
              0);
    EXPECT_EQ(CountMismatch("connector_usage_monthly", "connector_id, month",
                            "connector_id, " + month, true, true),
              0);
    EXPECT_EQ(CountMismatch("usage_by_operation_hourly", "connector_id, operation, hour",
                            "connector_id, operation, " + hour, false, true),
              0);
    EXPECT_EQ(CountMismatch("usage_by_operation_daily", "connector_id, operation, day",
                            "connector_id, operation, " + day, false, true),
              0);
    EXPECT_EQ(CountMismatch("usage_by_customer_hourly", "customer_id, connector_id, hour",
                            "customer_id, connector_id, " + hour, true, true),
              0);
    EXPECT_EQ(CountMismatch("usage_by_customer_daily", "customer_id, connector_id, day",
                            "customer_id, connector_id, " + day, true, true),
              0);
    EXPECT_EQ(CountMismatch("usage_by_customer_operation_daily",
                            "customer_id, connector_id, operation, day",
                            "customer_id, connector_id, operation, " + day, false, true),
              0);
    EXPECT_EQ(
        CountMismatch("account_activity_daily", "make_account_id, customer_id, connector_id, day",
                      "make_account_id, customer_id, connector_id, " + day, false, false),
        0);
    // All connectors together (migration 0007).
    EXPECT_EQ(CountMismatch("platform_usage_hourly", "hour", hour, true, true), 0);
    EXPECT_EQ(CountMismatch("platform_usage_daily", "day", day, true, true), 0);
    EXPECT_EQ(CountBucketMismatch("platform_usage_daily", "day", day), 0);
    // Per account, customer and two-month window (a local month and the
    // next): cum_ops[i] = operations on the window's days 1..i (a running sum
    // over 62 days); every day is in the windows starting at its month and
    // at the month before.
    EXPECT_EQ(
        Scalar(std::string("WITH ") + kRaw + ", e AS (SELECT make_account_id, customer_id, " + day +
               ", count(*) AS n FROM r GROUP BY 1, 2, 3), "
               "ew AS (SELECT e.*, w.start FROM e CROSS JOIN LATERAL (VALUES "
               "(date_trunc('month', e.day::timestamp)::date), "
               "((date_trunc('month', e.day::timestamp) - interval '1 month')::date)) w(start)), "
               "k AS (SELECT DISTINCT make_account_id, customer_id, start FROM ew), "
               "g AS (SELECT k.make_account_id, k.customer_id, k.start, i, "
               "coalesce(ew.n, 0) AS n FROM k CROSS JOIN generate_series(1, 62) i "
               "LEFT JOIN ew ON ew.make_account_id = k.make_account_id AND ew.customer_id = "
               "k.customer_id AND ew.start = k.start AND ew.day = k.start + i - 1), "
               "c AS (SELECT make_account_id, customer_id, start AS window_start, "
               "array_agg(cum ORDER BY i)::bigint[] AS cum FROM (SELECT *, sum(n) OVER "
               "(PARTITION BY make_account_id, customer_id, start ORDER BY i) AS cum "
               "FROM g) w GROUP BY 1, 2, 3) "
               "SELECT count(*) FROM (SELECT * FROM account_activity_windows_even UNION ALL "
               "SELECT * FROM account_activity_windows_odd) a FULL JOIN c USING "
               "(make_account_id, customer_id, window_start) "
               "WHERE a.cum_ops IS DISTINCT FROM c.cum"),
        0);
    EXPECT_GT(Scalar("SELECT count(*) FROM account_activity_windows_even"), 0);
    EXPECT_GT(Scalar("SELECT count(*) FROM account_activity_windows_odd"), 0);
    EXPECT_EQ(CountBucketMismatch("connector_usage_hourly", "connector_id, hour",
                                  "connector_id, " + hour),
              0);
    EXPECT_EQ(
        CountBucketMismatch("connector_usage_daily", "connector_id, day", "connector_id, " + day),
        0);
    EXPECT_EQ(CountBucketMismatch("connector_usage_monthly", "connector_id, month",
                                  "connector_id, " + month),
              0);
    EXPECT_EQ(CountBucketMismatch("usage_by_operation_daily", "connector_id, operation, day",
                                  "connector_id, operation, " + day),
              0);
    EXPECT_EQ(CountBucketMismatch("usage_by_customer_hourly", "customer_id, connector_id, hour",
                                  "customer_id, connector_id, " + hour),
              0);
    // Errors: counts by type ('unknown' when none) and the newest message.
    struct ErrorsTable {
      std::string table, time, keys;
    };
    for (const auto& [table, key, keys] :
         {ErrorsTable{"usage_errors_hourly", hour, "connector_id, operation, error_type"},
          ErrorsTable{"usage_errors_daily", day, "connector_id, operation, error_type"},
          ErrorsTable{"usage_errors_by_customer_daily", day,
                      "customer_id, connector_id, operation, error_type"}}) {
      const std::string col = key.substr(key.rfind(' ') + 1);
      const std::string group = keys.find("customer_id") == 0 ? "1, 2, 3, 4, 5" : "1, 2, 3, 4";
      EXPECT_EQ(Scalar(std::string("WITH ") + kRaw + ", e AS (SELECT " + keys + ", " + key +
                       ", count(*) AS n, (array_agg(error_message ORDER BY ts DESC))[1] AS msg, "
                       "max(ts) AS last FROM r WHERE status = 'error' GROUP BY " +
                       group +
                       ") "
                       "SELECT count(*) FROM " +
                       table + " a FULL JOIN e USING (" + keys + ", " + col +
                       ") WHERE a.error_count IS DISTINCT FROM e.n OR a.last_message IS DISTINCT "
                       "FROM e.msg OR a.last_seen_at IS DISTINCT FROM e.last"),
                0)
          << table;
    }
    // First seen: the earliest event of each account, with its customer.
    EXPECT_EQ(Scalar(std::string("WITH ") + kRaw +
                     ", e AS (SELECT DISTINCT ON (make_account_id) make_account_id, customer_id, "
                     "connector_id, ts FROM r ORDER BY make_account_id, ts) "
                     "SELECT count(*) FROM account_first_seen a FULL JOIN e USING "
                     "(make_account_id) WHERE a.first_seen IS DISTINCT FROM e.ts OR "
                     "a.customer_id IS DISTINCT FROM e.customer_id OR a.connector_id IS "
                     "DISTINCT FROM e.connector_id"),
              0);
    // Derived columns.
    EXPECT_EQ(Scalar("SELECT count(*) FROM connector_usage_daily WHERE unique_users <> "
                     "round(hll_cardinality(users)) OR avg_response_time <> CASE WHEN "
                     "duration_count > 0 THEN duration_sum_ms / duration_count ELSE 0 END"),
              0);
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<pqxx::connection> conn_;
};

TEST_F(RollupTest, EveryTableMatchesRawGroupBy) {
  InsertSynthetic(12000, 45, 45 * 86400.0, 400, 0.11);
  auto rollup = MakeRollup("UTC", 2500);  // several steps
  const auto r = rollup->CatchUp();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.events, 12000u);
  EXPECT_TRUE(r.caught_up);
  ExpectAllMatchRaw("UTC");
  // More events in the same buckets merge into the existing rows.
  InsertSynthetic(3000, 45, 45 * 86400.0, 400, 0.12);
  ASSERT_TRUE(rollup->CatchUp().ok);
  ExpectAllMatchRaw("UTC");
  EXPECT_EQ(Scalar("SELECT last_seq FROM rollup_state WHERE name = 'usage'"),
            Scalar("SELECT max(seq) FROM connector_usage"));
}

TEST_F(RollupTest, UniqueUsersWithinStatedErrorAndExactWhenSmall) {
  // 20,000 distinct accounts in one day of one connector, 3 events each.
  {
    pqxx::work txn(*conn_);
    txn.exec(
        "INSERT INTO connector_usage (id, api_key_id, connector_id, make_account_id, operation, "
        "\"timestamp\", status) SELECT gen_random_uuid(), (SELECT id FROM api_keys WHERE owner = "
        "'acme'), 'crm-connector', 'user-' || (i % 20000), 'op', date_trunc('day', now() - "
        "interval '2 days') + (i % 86400) * interval '1 second', 'success' "
        "FROM generate_series(1, 60000) i");
    // 37 accounts on the other connector: exact.
    txn.exec(
        "INSERT INTO connector_usage (id, api_key_id, connector_id, make_account_id, operation, "
        "\"timestamp\", status) SELECT gen_random_uuid(), (SELECT id FROM api_keys WHERE owner = "
        "'acme'), 'payment-connector', 'user-' || (i % 37), 'op', date_trunc('day', now() - "
        "interval '2 days') + i * interval '1 second', 'success' FROM generate_series(1, 300) i");
    txn.commit();
  }
  auto rollup = MakeRollup();
  ASSERT_TRUE(rollup->CatchUp().ok);
  const long long big =
      Scalar("SELECT unique_users FROM connector_usage_daily WHERE connector_id = 'crm-connector'");
  const double err = std::abs(static_cast<double>(big) - 20000.0) / 20000.0;
  std::printf("unique_users for 20000 accounts: %lld (error %.3f %%)\n", big, err * 100);
  EXPECT_LE(err, 0.02);
  EXPECT_EQ(Scalar("SELECT unique_users FROM connector_usage_daily WHERE connector_id = "
                   "'payment-connector'"),
            37);
  // Across hours the union is taken, not the sum of hourly counts.
  EXPECT_GT(Scalar("SELECT sum(unique_users) FROM connector_usage_hourly WHERE connector_id = "
                   "'crm-connector'"),
            big * 2);
  const long long merged = Scalar(
      "SELECT round(hll_cardinality(hll_union_agg(users))) FROM connector_usage_hourly WHERE "
      "connector_id = 'crm-connector'");
  EXPECT_LE(std::abs(merged - 20000), 400);
}

TEST_F(RollupTest, LateEventsLandInTheirOldBuckets) {
  InsertSynthetic(2000, 1, 3600, 50, 0.2);
  auto rollup = MakeRollup();
  ASSERT_TRUE(rollup->CatchUp().ok);
  const std::string late_ts = FormatRfc3339Micros(NowMicros() - 10 * kMicrosPerDay);
  const std::string hour_sql = "date_trunc('hour', '" + late_ts + "'::timestamptz, 'UTC')";
  EXPECT_EQ(Scalar("SELECT count(*) FROM connector_usage_hourly WHERE hour = " + hour_sql), 0);
  InsertOne("00000000-0000-7000-8000-000000000001", late_ts, "late-account");
  InsertOne("00000000-0000-7000-8000-000000000002", late_ts, "late-account");
  const auto r = rollup->Step();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.events, 2u);
  EXPECT_EQ(Scalar("SELECT operation_count FROM connector_usage_hourly WHERE connector_id = "
                   "'crm-connector' AND hour = " +
                   hour_sql),
            2);
  EXPECT_EQ(Scalar("SELECT operation_count FROM connector_usage_daily WHERE connector_id = "
                   "'crm-connector' AND day = ('" +
                   late_ts + "'::timestamptz AT TIME ZONE 'UTC')::date"),
            2);
  EXPECT_EQ(Scalar("SELECT unique_users FROM connector_usage_hourly WHERE connector_id = "
                   "'crm-connector' AND hour = " +
                   hour_sql),
            1);
  // The account's first_seen moves back to the late event.
  EXPECT_EQ(Scalar("SELECT count(*) FROM account_first_seen WHERE make_account_id = "
                   "'late-account' AND first_seen = '" +
                   late_ts + "'"),
            1);
  ExpectAllMatchRaw("UTC");
}

TEST_F(RollupTest, DuplicatesAreCountedOnce) {
  auto rollup = MakeRollup();
  const std::string ts = FormatRfc3339Micros(NowMicros() - 3600'000'000LL);
  const std::string id = "00000000-0000-7000-8000-0000000000aa";
  InsertOne(id, ts);
  ASSERT_TRUE(rollup->Step().ok);
  InsertOne(id, ts);  // a replay after the step
  InsertOne(id, ts);
  const auto r = rollup->CatchUp();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(Scalar("SELECT sum(operation_count) FROM connector_usage_hourly"), 1);
  EXPECT_EQ(Scalar("SELECT sum(operation_count) FROM connector_usage_monthly"), 1);
  // The replays consumed sequence numbers; the watermark passed them.
  EXPECT_EQ(rollup->lag_events(), 0);
  ExpectAllMatchRaw("UTC");
}

TEST_F(RollupTest, ConcurrentReplicasNeverDoubleCount) {
  auto a = MakeRollup("UTC", 300);
  auto b = MakeRollup("UTC", 500);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<long long> steps{0};
  auto stepper = [&](Rollup* r) {
    while (!stop) {
      if (!r->Step().ok) ++failures;
      ++steps;
    }
  };
  std::thread ta(stepper, a.get()), tb(stepper, b.get());
  // Inserters: many small transactions (some late, some duplicates) while
  // both replicas step.
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      pqxx::connection c(db_->url);
      for (int i = 0; i < 150; ++i) {
        pqxx::work txn(c);
        txn.exec_params(
            "INSERT INTO connector_usage (id, api_key_id, connector_id, make_account_id, "
            "operation, \"timestamp\", status, duration_ms) SELECT md5($1 || '-' || j)::uuid, "
            "(SELECT id FROM api_keys WHERE owner = 'acme'), 'crm-connector', 'acct-' || (j % 97), "
            "'op', date_trunc('hour', now()) - ((j % 5) * interval '1 day'), "
            "CASE WHEN j % 9 = 0 THEN 'error' ELSE 'success' END, j FROM generate_series(1, 40) j "
            "ON CONFLICT DO NOTHING",
            // Writer 1 repeats writer 0's ids half of the time: duplicates.
            std::to_string(w == 1 && i % 2 == 0 ? 0 : w) + "-" + std::to_string(i));
        txn.commit();
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  ta.join();
  tb.join();
  EXPECT_EQ(failures, 0);
  ASSERT_TRUE(a->CatchUp().ok);
  ASSERT_TRUE(b->CatchUp().ok);
  std::printf("%lld steps by two replicas\n", static_cast<long long>(steps));
  EXPECT_EQ(Scalar("SELECT sum(operation_count) FROM connector_usage_hourly"), db_->Rows());
  ExpectAllMatchRaw("UTC");
}

TEST_F(RollupTest, ReportingTimeZoneMovesLateEveningToNextDay) {
  // 22:30 UTC is 01:30 the next day in Moscow (UTC+3).
  const int64_t day_start = (NowMicros() / kMicrosPerDay - 3) * kMicrosPerDay;
  const std::string ts = FormatRfc3339Micros(day_start + (22 * 60 + 30) * 60'000'000LL);
  InsertOne("00000000-0000-7000-8000-0000000000bb", ts);
  auto rollup = MakeRollup("Europe/Moscow");
  ASSERT_TRUE(rollup->CatchUp().ok);
  EXPECT_EQ(Scalar("SELECT (day - ('" + ts +
                   "'::timestamptz AT TIME ZONE 'UTC')::date) FROM "
                   "connector_usage_daily"),
            1);
  EXPECT_EQ(Scalar("SELECT extract(hour FROM hour AT TIME ZONE 'UTC')::int FROM "
                   "connector_usage_hourly"),
            22);
  EXPECT_EQ(Scalar("SELECT count(*) FROM rollup_state WHERE time_zone = 'Europe/Moscow'"), 1);
  InsertSynthetic(5000, 40, 40 * 86400.0, 100, 0.3);
  ASSERT_TRUE(rollup->CatchUp().ok);
  ExpectAllMatchRaw("Europe/Moscow");
}

TEST_F(RollupTest, UnknownTimeZoneIsAConfigError) {
  RollupOptions o;
  o.database_url = db_->url;
  o.time_zone = "Mars/Olympus_Mons";
  std::string error;
  EXPECT_FALSE(Rollup::Create(o, nullptr, {}, &error));
  EXPECT_NE(error.find("reporting_time_zone"), std::string::npos) << error;
}

// A stable digest of every aggregate table (ids and timestamps of the rows
// themselves left out).
std::string Digest(TestDatabase& db) {
  pqxx::connection c(db.url);
  pqxx::work txn(c);
  std::string out;
  for (const char* q :
       {"SELECT connector_id, hour, operation_count, error_count, users::text, "
        "round(duration_sum_ms::numeric, 3), duration_count, duration_buckets FROM "
        "connector_usage_hourly",
        "SELECT connector_id, day, operation_count, error_count, users::text, "
        "round(duration_sum_ms::numeric, 3), duration_count, duration_buckets FROM "
        "connector_usage_daily",
        "SELECT connector_id, month, operation_count, error_count, "
        "round(hll_cardinality(users)), round(duration_sum_ms::numeric, 3), duration_count, "
        "duration_buckets FROM connector_usage_monthly",
        "SELECT connector_id, operation, hour, operation_count, error_count, duration_count, "
        "duration_buckets FROM usage_by_operation_hourly",
        "SELECT connector_id, operation, day, operation_count, error_count, duration_count, "
        "duration_buckets FROM usage_by_operation_daily",
        "SELECT connector_id, operation, error_type, hour, error_count, last_message, "
        "last_seen_at FROM usage_errors_hourly",
        "SELECT connector_id, operation, error_type, day, error_count, last_message, "
        "last_seen_at FROM usage_errors_daily",
        "SELECT customer_id, connector_id, hour, operation_count, users::text, "
        "duration_buckets FROM usage_by_customer_hourly",
        "SELECT customer_id, connector_id, day, operation_count, users::text, "
        "duration_buckets FROM usage_by_customer_daily",
        "SELECT make_account_id, customer_id, connector_id, day, operation_count, error_count "
        "FROM account_activity_daily",
        "SELECT customer_id, connector_id, operation, day, operation_count, error_count, "
        "duration_count, duration_buckets FROM usage_by_customer_operation_daily",
        "SELECT customer_id, connector_id, operation, error_type, day, error_count, "
        "last_message, last_seen_at FROM usage_errors_by_customer_daily",
        "SELECT make_account_id, customer_id, connector_id, first_seen FROM "
        "account_first_seen",
        "SELECT hour, operation_count, error_count, users::text, "
        "round(duration_sum_ms::numeric, 3), duration_count, duration_buckets FROM "
        "platform_usage_hourly",
        "SELECT day, operation_count, error_count, users::text, "
        "round(duration_sum_ms::numeric, 3), duration_count, duration_buckets FROM "
        "platform_usage_daily",
        "SELECT make_account_id, customer_id, window_start, cum_ops FROM "
        "account_activity_windows_even",
        "SELECT make_account_id, customer_id, window_start, cum_ops FROM "
        "account_activity_windows_odd"}) {
    out += txn.exec(std::string("SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), "
                                "'')) FROM (") +
                    q + ") x")[0][0]
               .as<std::string>() +
           "\n";
  }
  return out;
}

TEST_F(RollupTest, ReaggregateRestoresCorruptedRowsExactly) {
  InsertSynthetic(8000, 50, 50 * 86400.0, 300, 0.4);
  auto rollup = MakeRollup("Europe/Moscow", 6000);
  ASSERT_TRUE(rollup->CatchUp().ok);
  const std::string before = Digest(*db_);

  // Corrupt rows 19..11 days ago (inside the range rebuilt below).
  {
    pqxx::work txn(*conn_);
    txn.exec(
        "UPDATE connector_usage_hourly SET operation_count = operation_count + 7 "
        "WHERE hour > now() - interval '15 days' AND hour < now() - interval '12 days'");
    txn.exec("DELETE FROM connector_usage_daily WHERE day = (now() - interval '14 days')::date");
    txn.exec(
        "UPDATE connector_usage_monthly SET error_count = 0 WHERE month IN "
        "(date_trunc('month', now() - interval '19 days')::date, "
        "date_trunc('month', now() - interval '11 days')::date)");
    txn.exec(
        "UPDATE usage_by_customer_daily SET users = bpmc_users_empty() "
        "WHERE day = (now() - interval '13 days')::date");
    txn.exec(
        "DELETE FROM usage_errors_hourly WHERE hour > now() - interval '15 days' "
        "AND hour < now() - interval '11 days'");
    txn.exec(
        "INSERT INTO account_activity_daily VALUES ('ghost', 'acme', 'crm-connector', "
        "(now() - interval '13 days')::date, 5, 0)");
    txn.exec(
        "UPDATE platform_usage_hourly SET users = bpmc_users_empty(), error_count = 0 "
        "WHERE hour > now() - interval '15 days' AND hour < now() - interval '12 days'");
    txn.exec("DELETE FROM platform_usage_daily WHERE day = (now() - interval '16 days')::date");
    for (const char* t : {"account_activity_windows_even", "account_activity_windows_odd"})
      txn.exec(std::string("UPDATE ") + t +
               " SET cum_ops = bpmc_buckets_add(cum_ops, array_fill(1::bigint, ARRAY[62])) "
               "WHERE window_start IN (date_trunc('month', now() - interval '14 days')::date, "
               "(date_trunc('month', now() - interval '14 days') - interval '1 month')::date)");
    // First seen long before: corrupted to a time inside the range.
    txn.exec(
        "UPDATE account_first_seen SET first_seen = now() - interval '14 days' "
        "WHERE make_account_id IN ('acct-1', 'acct-2')");
    txn.exec(
        "INSERT INTO account_first_seen VALUES ('ghost', 'acme', 'crm-connector', "
        "now() - interval '13 days')");
    txn.commit();
  }
  ASSERT_NE(Digest(*db_), before);
  const auto from = ParseTimeBound(FormatRfc3339Micros(NowMicros() - 20 * kMicrosPerDay));
  const auto to = ParseTimeBound(FormatRfc3339Micros(NowMicros() - 10 * kMicrosPerDay));
  ASSERT_TRUE(from && to);
  const auto result = Reaggregate(*conn_, *from, *to, "Europe/Moscow");
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_GE(result.transactions, 1);
  EXPECT_GT(result.events, 1000u);
  EXPECT_EQ(Digest(*db_), before);

  // Events not yet aggregated when reaggregate runs are left to the
  // incremental rollup: neither lost nor doubled.
  InsertSynthetic(1000, 13, 86400.0, 300, 0.5);
  ASSERT_TRUE(Reaggregate(*conn_, *from, *to, "Europe/Moscow").ok);
  ASSERT_TRUE(rollup->CatchUp().ok);
  ExpectAllMatchRaw("Europe/Moscow");
}

TEST_F(RollupTest, ReaggregateOfARangeEqualsAFreshRollup) {
  InsertSynthetic(6000, 40, 40 * 86400.0, 200, 0.6);
  auto rollup = MakeRollup("Europe/Moscow", 4000);
  ASSERT_TRUE(rollup->CatchUp().ok);
  const std::string before = Digest(*db_);
  {
    pqxx::work txn(*conn_);
    txn.exec(
        "UPDATE connector_usage_hourly SET operation_count = operation_count * 2, "
        "users = bpmc_users_empty(), duration_buckets = NULL");
    txn.exec("UPDATE connector_usage_daily SET duration_count = 1");
    txn.exec("UPDATE usage_by_operation_hourly SET error_count = error_count + 1");
    txn.exec("DELETE FROM usage_by_customer_hourly WHERE hour < now() - interval '20 days'");
    txn.exec("DELETE FROM account_activity_daily WHERE day < (now() - interval '5 days')::date");
    txn.exec("UPDATE account_first_seen SET first_seen = first_seen + interval '1 hour'");
    txn.exec("UPDATE usage_errors_daily SET last_message = 'corrupt'");
    txn.commit();
  }
  // Whole days, given as dates (to is exclusive); covers every event.
  const std::string d0 = FormatRfc3339Micros(NowMicros() - 45 * kMicrosPerDay).substr(0, 10);
  const std::string d1 = FormatRfc3339Micros(NowMicros() + 2 * kMicrosPerDay).substr(0, 10);
  const auto result =
      Reaggregate(*conn_, *ParseTimeBound(d0), *ParseTimeBound(d1), "Europe/Moscow");
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.events, 6000u);
  EXPECT_EQ(result.first_day, d0);
  EXPECT_EQ(Digest(*db_), before);
}

TEST_F(RollupTest, ReaggregateFixesAChangedTimeZone) {
  InsertSynthetic(5000, 20, 20 * 86400.0, 100, 0.7);
  {
    auto utc = MakeRollup("UTC");
    ASSERT_TRUE(utc->CatchUp().ok);
  }
  ExpectAllMatchRaw("UTC");
  // Restart in Moscow: a warning, new buckets in Moscow, reaggregate fixes the past.
  auto msk = MakeRollup("Europe/Moscow");
  InsertSynthetic(500, 1, 3600, 100, 0.8);
  ASSERT_TRUE(msk->CatchUp().ok);
  const auto result = Reaggregate(
      *conn_, *ParseTimeBound(FormatRfc3339Micros(NowMicros() - 25 * kMicrosPerDay)),
      *ParseTimeBound(FormatRfc3339Micros(NowMicros() + kMicrosPerDay)), "Europe/Moscow");
  ASSERT_TRUE(result.ok) << result.error;
  // Daily rows in UTC days that no Moscow day equals are gone.
  ExpectAllMatchRaw("Europe/Moscow");
}

// The command line: `bpmc-exporter reaggregate` restores corrupted rows;
// bad flags and an unknown zone exit 2.
TEST_F(RollupTest, ReaggregateCommand) {
  InsertSynthetic(3000, 10, 10 * 86400.0, 50, 0.45);
  auto rollup = MakeRollup("Europe/Moscow");
  ASSERT_TRUE(rollup->CatchUp().ok);
  const std::string before = Digest(*db_);
  {
    pqxx::work txn(*conn_);
    txn.exec("UPDATE connector_usage_daily SET operation_count = 1");
    txn.exec("DELETE FROM usage_by_operation_hourly");
    txn.commit();
  }
  auto run = [&](const std::vector<std::string>& args, const std::string& zone) {
    std::vector<std::string> argv = {BinPath("bpmc-exporter"), "reaggregate"};
    argv.insert(argv.end(), args.begin(), args.end());
    char tmpl[] = "/tmp/bpmc-rollup-cfg-XXXXXX";
    const int fd = mkstemp(tmpl);
    const std::string yaml = "reporting_time_zone: " + zone + "\n";
    EXPECT_EQ(write(fd, yaml.data(), yaml.size()), static_cast<ssize_t>(yaml.size()));
    close(fd);
    argv.push_back("--config");
    argv.push_back(tmpl);
    Process p(argv, {"BPMC_DATABASE_URL=" + db_->url});
    const int code = p.Wait(std::chrono::seconds(120));
    unlink(tmpl);
    return std::make_pair(code, p.Stdout() + p.Stderr());
  };
  const std::string d0 = FormatRfc3339Micros(NowMicros() - 11 * kMicrosPerDay).substr(0, 10);
  const std::string to = FormatRfc3339Micros(NowMicros() + kMicrosPerDay);
  auto [code, out] = run({"--from", d0, "--to=" + to}, "Europe/Moscow");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("rebuilt days " + d0), std::string::npos) << out;
  EXPECT_EQ(Digest(*db_), before);
  std::tie(code, out) = run({"--from", d0}, "Europe/Moscow");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--to"), std::string::npos) << out;
  std::tie(code, out) = run({"--from", "2026-13-01", "--to", d0}, "Europe/Moscow");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--from"), std::string::npos) << out;
  std::tie(code, out) = run({"--from", d0, "--to", d0}, "Europe/Moscow");
  EXPECT_EQ(code, 2) << out;
  std::tie(code, out) = run({"--from", d0, "--to", to}, "Atlantis/Capital");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("reporting_time_zone"), std::string::npos) << out;
}

TEST_F(RollupTest, ReaggregateRejectsAnEmptyRange) {
  const auto r =
      Reaggregate(*conn_, *ParseTimeBound("2026-03-02"), *ParseTimeBound("2026-03-02"), "UTC");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("--to"), std::string::npos) << r.error;
  // Before the oldest retained raw partition: refused, nothing erased.
  const std::string too_old = FormatRfc3339Micros(NowMicros() - 100 * kMicrosPerDay).substr(0, 10);
  const auto old_range = Reaggregate(*conn_, *ParseTimeBound(too_old),
                                     *ParseTimeBound(FormatRfc3339Micros(NowMicros())), "UTC");
  EXPECT_FALSE(old_range.ok);
  EXPECT_NE(old_range.error.find("retention"), std::string::npos) << old_range.error;
  EXPECT_FALSE(ParseTimeBound("2026-02-30"));
  EXPECT_FALSE(ParseTimeBound("2025-02-29"));
  EXPECT_TRUE(ParseTimeBound("2024-02-29"));
  EXPECT_FALSE(ParseTimeBound("yesterday"));
  const auto ts = ParseTimeBound("2026-03-02T10:00:00+03:00");
  ASSERT_TRUE(ts);
  EXPECT_FALSE(ts->is_date);
  EXPECT_EQ(ts->text, "2026-03-02T07:00:00.000000Z");
}

TEST_F(RollupTest, P95FromBucketsIsWithinOneBucketWidth) {
  // Log-normal durations (median ~150 ms) for one connector and day.
  {
    pqxx::work txn(*conn_);
    txn.exec("SELECT setseed(0.9)");
    txn.exec(
        "INSERT INTO connector_usage (id, api_key_id, connector_id, make_account_id, operation, "
        "\"timestamp\", status, duration_ms) SELECT gen_random_uuid(), (SELECT id FROM api_keys "
        "WHERE owner = 'acme'), 'crm-connector', 'a', 'op', date_trunc('day', now() - interval "
        "'3 days') + (i % 80000) * interval '1 second', 'success', "
        "exp(5 + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) "
        "FROM generate_series(1, 20000) i");
    txn.commit();
  }
  auto rollup = MakeRollup();
  ASSERT_TRUE(rollup->CatchUp().ok);
  pqxx::work txn(*conn_);
  for (double q : {0.5, 0.95, 0.99}) {
    const double truth = txn.exec_params(
                                "SELECT percentile_disc($1) WITHIN GROUP (ORDER BY "
                                "duration_ms) FROM connector_usage",
                                q)[0][0]
                             .as<double>();
    const double est = txn.exec_params(
                              "SELECT bpmc_buckets_quantile(duration_buckets, $1) FROM "
                              "connector_usage_daily",
                              q)[0][0]
                           .as<double>();
    const double merged = txn.exec_params(
                                 "SELECT bpmc_buckets_quantile(bpmc_buckets_sum("
                                 "duration_buckets), $1) FROM connector_usage_hourly",
                                 q)[0][0]
                              .as<double>();
    const double err = std::abs(est - truth) / truth;
    std::printf("q=%.2f true %.2f ms, from buckets %.2f ms (error %.2f %%)\n", q, truth, est,
                err * 100);
    EXPECT_LE(err, 0.2504) << q;
    EXPECT_NEAR(merged, est, 1e-9 * truth) << "hourly buckets merge to the daily ones";
  }
  // Edge cases: empty, below 1 ms, above the last bound.
  EXPECT_TRUE(txn.exec("SELECT bpmc_buckets_quantile(NULL, 0.95)")[0][0].is_null());
  EXPECT_TRUE(txn.exec("SELECT bpmc_buckets_quantile(array_fill(0::bigint, ARRAY[52]), 0.95)")[0][0]
                  .is_null());
  EXPECT_EQ(txn.exec("SELECT bpmc_duration_bucket(0.5)")[0][0].as<int>(), 1);
  EXPECT_EQ(txn.exec("SELECT bpmc_duration_bucket(1e9)")[0][0].as<int>(), 52);
  EXPECT_NEAR(
      txn.exec("SELECT bpmc_buckets_quantile(bpmc_buckets_agg(52, 1), 0.95)")[0][0].as<double>(),
      70064.923, 1e-6);
}

TEST_F(RollupTest, LagGaugeFallsToZeroAfterCatchUp) {
  InsertSynthetic(3000, 0.01, 60, 20, 0.95);
  auto registry = std::make_shared<prometheus::Registry>();
  auto rollup = MakeRollup("UTC", 1000, registry);
  auto metrics = [&] { return prometheus::TextSerializer().Serialize(registry->Collect()); };
  const auto first = rollup->Step();
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(first.events, 1000u);
  EXPECT_FALSE(first.caught_up);
  EXPECT_GT(rollup->lag_seconds(), 0);
  EXPECT_GE(rollup->lag_events(), 2000);
  EXPECT_GT(MetricValue(metrics(), "bpmc_exporter_aggregation_lag_seconds"), 0);
  ASSERT_TRUE(rollup->CatchUp().ok);
  const std::string m = metrics();
  EXPECT_EQ(MetricValue(m, "bpmc_exporter_aggregation_lag_seconds"), 0) << m;
  EXPECT_EQ(MetricValue(m, "bpmc_exporter_aggregation_lag_events"), 0);
  EXPECT_EQ(MetricValue(m, "bpmc_exporter_aggregated_events_total"), 3000);
  EXPECT_GE(MetricValue(m, R"(bpmc_exporter_aggregation_steps_total{result="ok"})"), 3);
  EXPECT_EQ(MetricValue(m, R"(bpmc_exporter_aggregation_steps_total{result="error"})"), 0);
}

TEST_F(RollupTest, StepFailuresAreCountedAndLagGrows) {
  auto registry = std::make_shared<prometheus::Registry>();
  RollupOptions o;
  o.database_url = db_->url;
  std::atomic<int> hook{0};
  std::string error;
  auto rollup = Rollup::Create(
      o, registry,
      [&](const std::string& reason) {
        EXPECT_EQ(reason, "rollup");
        ++hook;
      },
      &error);
  ASSERT_TRUE(rollup) << error;
  {
    pqxx::work txn(*conn_);
    txn.exec("ALTER TABLE connector_usage_hourly RENAME TO hourly_away");
    txn.commit();
  }
  InsertOne("00000000-0000-7000-8000-0000000000cc", FormatRfc3339Micros(NowMicros()));
  EXPECT_FALSE(rollup->Step().ok);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(rollup->Step().ok);
  EXPECT_EQ(hook, 2);
  EXPECT_GT(rollup->lag_seconds(), 0.01);
  EXPECT_EQ(Scalar("SELECT last_seq FROM rollup_state"), 0) << "a failed step moves nothing";
  {
    pqxx::work txn(*conn_);
    txn.exec("ALTER TABLE hourly_away RENAME TO connector_usage_hourly");
    txn.commit();
  }
  const auto r = rollup->CatchUp();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.events, 1u);
  EXPECT_EQ(rollup->lag_seconds(), 0);
}

TEST_F(RollupTest, StopCancelsALongStepWithoutLosingAnything) {
  InsertSynthetic(40000, 20, 20 * 86400.0, 2000, 0.55);
  auto rollup = MakeRollup("UTC", 40000);
  rollup->StartBackground();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  rollup->Stop();
  std::printf("Stop took %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_FALSE(rollup->Step().ok) << "no steps after Stop";
  // Whatever the cancelled step did was rolled back; another replica
  // finishes the work exactly once.
  auto other = MakeRollup("UTC", 40000);
  ASSERT_TRUE(other->CatchUp().ok);
  ExpectAllMatchRaw("UTC");
}

// Through the service: duplicates by event_id, the background thread, and
// the lag gauge on /metrics.
TEST_F(RollupTest, ServiceAggregatesInTheBackgroundAndExportsLag) {
  const TempDir data_dir("bpmc-rollup");
  exporter::Config config;
  config.listen = "127.0.0.1:0";
  config.database_url = db_->url;
  config.data_dir = data_dir.path();
  config.http_threads = 8;
  config.rollup_interval_ms = 100;
  config.reporting_time_zone = "Europe/Moscow";
  std::string error;
  auto service = exporter::Service::Start(config, SystemClock::Get(), &error);
  ASSERT_TRUE(service) << error;
  httplib::Client client("127.0.0.1", service->port());
  const std::string body =
      R"({"connector":"crm-connector","operation":"getContact","make_account_id":"12345",)"
      R"("event_id":"0190a0b1-0000-7000-8000-000000000001","timestamp":")" +
      NowIso() + "\"}";
  for (int i = 0; i < 3; ++i) {
    auto r = client.Post("/v1/connector/usage", Bearer(db_->api_key), body, "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
  auto r = client.Post("/v1/connector/usage", Bearer(db_->api_key), SeedBody("listDeals"),
                       "application/json");
  ASSERT_EQ(r->status, 201);
  const bool aggregated = WaitFor(
      [&] {
        return Scalar("SELECT coalesce(sum(operation_count), 0) FROM connector_usage_daily") == 2;
      },
      std::chrono::seconds(20));
  EXPECT_TRUE(aggregated);
  EXPECT_TRUE(WaitFor(
      [&] {
        auto m = client.Get("/metrics");
        return m && MetricValue(m->body, "bpmc_exporter_aggregation_lag_seconds") == 0 &&
               MetricValue(m->body, "bpmc_exporter_aggregation_lag_events") == 0;
      },
      std::chrono::seconds(20)));
  EXPECT_EQ(Scalar("SELECT count(*) FROM usage_by_operation_daily"), 2);
  service->Shutdown();
}

TEST_F(RollupTest, StepThroughput) {
  long long n = 50000;
  if (const char* env = std::getenv("BPMC_ROLLUP_BENCH_EVENTS")) n = std::atoll(env);
  const auto t0 = std::chrono::steady_clock::now();
  // Spread over 30 days, 5,000 accounts: a backlog, the worst case for
  // grouping (recent events share far more buckets).
  InsertSynthetic(n, 30, 30 * 86400.0, 5000, 0.99);
  const auto t1 = std::chrono::steady_clock::now();
  auto rollup = MakeRollup("Europe/Moscow", static_cast<uint64_t>(n));
  const auto r = rollup->Step();
  const auto t2 = std::chrono::steady_clock::now();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.events, static_cast<uint64_t>(n));
  const double insert_s = std::chrono::duration<double>(t1 - t0).count();
  const double step_s = std::chrono::duration<double>(t2 - t1).count();
  // Live-like: the same number of events within the last hour.
  InsertSynthetic(n, 0.05, 3600, 5000, 0.98);
  const auto t3 = std::chrono::steady_clock::now();
  const auto r2 = rollup->Step();
  const auto t4 = std::chrono::steady_clock::now();
  ASSERT_TRUE(r2.ok) << r2.error;
  const double live_s = std::chrono::duration<double>(t4 - t3).count();
  std::printf(
      "one step over %lld events spread over 30 days: %.2f s (%.0f events/s); "
      "within one hour: %.2f s (%.0f events/s); inserting them took %.2f s\n",
      n, step_s, n / step_s, live_s, n / live_s, insert_s);
  if (n <= 200000) ExpectAllMatchRaw("Europe/Moscow");
}

}  // namespace
}  // namespace bpmc::testing
