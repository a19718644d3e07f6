// Reaggregate: the exact rebuild of a range of aggregate buckets from raw
// events (`bpmc-exporter reaggregate`), and the parsing of its --from / --to
// bounds (ParseTimeBound).

#include <spdlog/spdlog.h>

#include <exception>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aggregation/rollup.h"
#include "common/time_format.h"
#include "rollup_sql.h"

namespace bpmc::aggregation {
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
