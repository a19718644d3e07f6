// The admin analytics API. Queries read the aggregate tables
// (0002_aggregates.sql) and the billing tables (0003_billing.sql); see
// docs/ANALYTICS.md for every field and formula.
#include "analytics/analytics.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "aggregation/rollup.h"  // ActivityWindowTable
#include "analytics/access.h"
#include "billing/payment_reason.h"
#include "common/clock.h"
#include "common/pg_pool.h"
#include "report/report.h"

namespace bpmc::analytics {
namespace {

using nlohmann::json;
using report::Cell;
using report::Chart;
using report::ExportFormat;
using report::Rendered;
using report::Report;
using report::Table;

// The request's transactions: read-only, REPEATABLE READ (one snapshot for
// all of a request's queries, shared by Fanout).
using Txn = pqxx::transaction_base;
using ReadTxn = pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>;

const char* Unit(Granularity g) {
  switch (g) {
    case Granularity::kHour:
      return "hour";
    case Granularity::kDay:
      return "day";
    case Granularity::kWeek:
      return "week";
    case Granularity::kMonth:
      return "month";
  }
  return "day";
}

// Buckets of the duration histogram (bpmc_duration_bucket_count()).
constexpr int kDurationBuckets = 52;

// Every query starts with this CTE so that all eight parameters are typed and
// named: the rounded period as timestamps (f, t) and local dates (fd, td),
// the connector and customer filters (NULL = all), the time zone and unit.
constexpr const char* kParams =
    "WITH p AS (SELECT $1::timestamptz AS f, $2::timestamptz AS t, $3::date AS fd, "
    "$4::date AS td, $5::text AS c, $6::text AS cu, $7::text AS tz, $8::text AS unit) ";

struct Period {
  std::string f, t;    // as PostgreSQL prints them
  std::string fd, td;  // local dates, YYYY-MM-DD whatever the DateStyle
};

struct Scope {
  Period period;
  std::vector<double> bounds;  // bpmc_duration_bounds(), for the p95 in C++
  std::optional<std::string> connector;
  std::optional<std::string> customer;
  std::string tz;
  Granularity granularity;
};

// Runs `sql` (after kParams) with the scope's eight parameters, then `extra`
// as $9, $10, ...
template <typename... Extra>
pqxx::result Run(Txn& txn, const Scope& s, const std::string& sql, const Extra&... extra) {
  return txn.exec_params(kParams + sql, s.period.f, s.period.t, s.period.fd, s.period.td,
                         s.connector, s.customer, s.tz, std::string(Unit(s.granularity)), extra...);
}

// Runs a request's independent queries concurrently, each on a pooled
// connection of its own in a transaction that imports the request
// transaction's snapshot (pg_export_snapshot, SET TRANSACTION SNAPSHOT): the
// answer is the same as if they ran one after another in the request's
// transaction, and an endpoint waits for its slowest query, not for their sum.
// A query for which the pool has no idle connection (nor room for a new one)
// runs in the request's transaction on the calling thread at once: Run never
// waits for a connection, so concurrent requests cannot deadlock the pool.
class Fanout {
 public:
  Fanout(PgPool* pool, Txn& main) : pool_(pool), main_(main) {}
  Txn& main() { return main_; }

  // fn(Txn&) -> R; the future holds R or fn's exception.
  template <typename F>
  auto Run(F fn) -> std::future<decltype(fn(std::declval<Txn&>()))> {
    using R = decltype(fn(std::declval<Txn&>()));
    std::optional<PgPool::Lease> lease = pool_ ? pool_->TryAcquire() : std::nullopt;
    if (lease && snapshot_.empty()) {
      try {
        snapshot_ = main_.exec("SELECT pg_export_snapshot()")[0][0].as<std::string>();
      } catch (const std::exception&) {
        lease.reset();
        throw;
      }
    }
    if (!lease) {
      std::promise<R> done;
      try {
        done.set_value(fn(main_));
      } catch (...) {
        done.set_exception(std::current_exception());
      }
      return done.get_future();
    }
    return std::async(std::launch::async,
                      [fn = std::move(fn), lease = std::move(*lease), id = snapshot_]() mutable {
                        try {
                          ReadTxn t(*lease);
                          t.exec("SET TRANSACTION SNAPSHOT " + t.quote(id));
                          R r = fn(t);
                          t.commit();
                          return r;
                        } catch (const pqxx::broken_connection&) {
                          lease.MarkBroken();
                          throw;
                        }
                      });
  }

 private:
  PgPool* pool_;
  Txn& main_;
  std::string snapshot_;
};

// Where a family of aggregate tables is read from for a granularity. `base`
// is one of the fixed table-name stems below, never request text.
struct Source {
  std::string table, where, bucket, time_col;
};

Source SourceFor(const std::string& base, Granularity g, bool has_monthly) {
  if (g == Granularity::kHour)
    return {base + "_hourly", "x.hour >= p.f AND x.hour < p.t",
            "to_char(x.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", "x.hour"};
  if (g == Granularity::kMonth && has_monthly)
    return {base + "_monthly", "x.month >= p.fd AND x.month < p.td",
            "to_char(x.month, 'YYYY-MM-DD')", "x.month"};
  const std::string b = g == Granularity::kDay    ? "x.day"
                        : g == Granularity::kWeek ? "date_trunc('week', x.day)::date"
                                                  : "date_trunc('month', x.day)::date";
  return {base + "_daily", "x.day >= p.fd AND x.day < p.td", "to_char(" + b + ", 'YYYY-MM-DD')",
          "x.day"};
}

// The breakdown tables by operation and by error type. A customer's come from
// the per-customer daily tables (migration 0006): they cover the local days
// of the period, whole days also for an hour-granularity request.
Source BreakdownSource(const Scope& s, const std::string& base, const std::string& customer_table) {
  if (!s.customer) return SourceFor(base, s.granularity, false);
  return {customer_table,
          "x.customer_id = p.cu AND x.day >= p.fd AND x.day < CASE WHEN "
          "(p.t AT TIME ZONE p.tz)::time <> '00:00' THEN p.td + 1 ELSE p.td END",
          "to_char(x.day, 'YYYY-MM-DD')", "x.day"};
}

// The element-wise sum of the duration histograms x.duration_buckets of a
// group as a bigint[52]: built-in sum() per element. Merging thousands of
// rows with the PL/pgSQL bpmc_buckets_sum was ~4x slower (docs/BENCHMARKS.md);
// the quantile is then read in C++ (BucketsQuantile, same interpolation).
const std::string& BucketSumsSql() {
  static const std::string sql = [] {
    std::string out = "ARRAY[";
    for (int i = 1; i <= kDurationBuckets; ++i)
      out += (i > 1 ? ", " : "") + std::string("coalesce(sum(x.duration_buckets[") +
             std::to_string(i) + "]), 0)";
    return out + "]::bigint[]";
  }();
  return sql;
}

// The p95 of a histogram column produced by BucketSumsSql.
std::optional<double> P95(const Scope& s, const pqxx::field& buckets) {
  if (buckets.is_null()) return std::nullopt;
  const auto parsed = ParseBigintArray(buckets.as<std::string>());
  if (!parsed) throw std::runtime_error("malformed duration histogram");
  return BucketsQuantile(*parsed, s.bounds, 95, 100);
}

// "{1.000,1.250}" -> {1.0, 1.25}; nullopt when malformed.
std::optional<std::vector<double>> ParseDoubleArray(const std::string& text) {
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return std::nullopt;
  std::vector<double> out;
  std::stringstream in(text.substr(1, text.size() - 2));
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      out.push_back(std::stod(item));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return out;
}

// Usage numbers of one group (a bucket, a connector, an operation, or all).
struct Usage {
  std::string key;
  int64_t operations = 0, errors = 0, users = 0, duration_count = 0;
  double duration_sum = 0;
  std::optional<double> p95;

  double ErrorRate() const { return operations ? double(errors) / double(operations) : 0.0; }
  std::optional<double> AvgMs() const {
    if (!duration_count) return std::nullopt;
    return duration_sum / double(duration_count);
  }
};

// The optional columns of a usage query. Both cost far more than the sums:
// the users column unites HLL sketches (a dense one has 16,384 registers to
// unpack), the p95 sums 52 histogram buckets per row. Without them the
// result has users = 0 and no p95.
struct UsageColumns {
  bool users = true;
  bool p95 = true;
};
constexpr UsageColumns kCountsOnly{false, false};

// Aggregated usage grouped by `group` (an SQL expression over x, or "" for a
// single total row, or by bucket). Customer-scoped scopes read
// usage_by_customer_*; unscoped totals and series (no connector, no
// customer) read platform_usage_* (one row per hour or day, migration 0007);
// the rest connector_usage_*.
std::vector<Usage> QueryUsage(Txn& txn, const Scope& s, const std::string& group,
                              bool by_bucket = false, UsageColumns cols = {}) {
  const bool customer = s.customer.has_value();
  const bool platform = !customer && !s.connector && group.empty();
  const Source src = SourceFor(customer   ? "usage_by_customer"
                               : platform ? "platform_usage"
                                          : "connector_usage",
                               s.granularity, !customer && !platform);
  const std::string key = by_bucket ? src.bucket : group.empty() ? "''" : group;
  // A platform series by hour or day has one row per bucket (the table's
  // primary key): grouped by that key, the row's own sketch is counted
  // without copying it into a union first (~2x cheaper for 31 dense sketches).
  const bool row_per_bucket =
      platform && by_bucket &&
      (s.granularity == Granularity::kHour || s.granularity == Granularity::kDay);
  const std::string users = row_per_bucket ? "round(hll_cardinality(x.users))"
                                           : "round(hll_cardinality(hll_union_agg(x.users)))";
  std::string sql =
      "SELECT " + key +
      ", coalesce(sum(x.operation_count), 0)::bigint"
      ", coalesce(sum(x.error_count), 0)::bigint" +
      (cols.users ? ", coalesce(" + users + ", 0)::bigint" : std::string(", 0::bigint")) +
      ", coalesce(sum(x.duration_sum_ms), 0)::float8"
      ", coalesce(sum(x.duration_count), 0)::bigint" +
      (cols.p95 ? ", " + BucketSumsSql() : std::string(", NULL::bigint[]")) + " FROM " + src.table +
      " x, p WHERE " + src.where;
  if (!platform) sql += " AND (p.c IS NULL OR x.connector_id = p.c)";
  if (customer) sql += " AND x.customer_id = p.cu";
  if (row_per_bucket)
    sql += " GROUP BY " + src.time_col + " ORDER BY 1";
  else if (by_bucket || !group.empty())
    sql += " GROUP BY 1 ORDER BY 1";
  std::vector<Usage> out;
  for (const auto& row : Run(txn, s, sql)) {
    Usage u;
    u.key = row[0].as<std::string>();
    u.operations = row[1].as<int64_t>();
    u.errors = row[2].as<int64_t>();
    u.users = row[3].as<int64_t>();
    u.duration_sum = row[4].as<double>();
    u.duration_count = row[5].as<int64_t>();
    u.p95 = P95(s, row[6]);
    out.push_back(u);
  }
  return out;
}

Usage Total(Txn& txn, const Scope& s, UsageColumns cols = {}) {
  auto rows = QueryUsage(txn, s, "", false, cols);
  return rows.empty() ? Usage{} : rows[0];
}

json OptionalNumber(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json UsageJson(const Usage& u) {
  return json{{"operations_total", u.operations},
              {"error_count", u.errors},
              {"error_rate", u.ErrorRate()},
              {"unique_users", u.users},
              {"avg_response_time_ms", OptionalNumber(u.AvgMs())},
              {"p95_response_time_ms", OptionalNumber(u.p95)}};
}

json SeriesJson(const std::vector<Usage>& series) {
  json out = json::array();
  for (const Usage& u : series) {
    json j = UsageJson(u);
    j["bucket"] = u.key;
    out.push_back(j);
  }
  return out;
}

Cell Num(int64_t v) { return Cell{v}; }
Cell Num(double v) { return Cell{v}; }
Cell Str(std::string v) { return Cell{std::move(v)}; }
Cell Opt(const std::optional<double>& v) { return v ? Cell{*v} : Cell{}; }

Table SeriesTable(const std::string& name, const std::vector<Usage>& series) {
  Table t{name,
          {"bucket", "operations", "errors", "error_rate", "unique_users", "avg_ms", "p95_ms"},
          {}};
  for (const Usage& u : series)
    t.rows.push_back({Str(u.key), Num(u.operations), Num(u.errors), Num(u.ErrorRate()),
                      Num(u.users), Opt(u.AvgMs()), Opt(u.p95)});
  return t;
}

std::map<std::string, int64_t> ActiveSubscriptions(Txn& txn, const Scope& s) {
  std::map<std::string, int64_t> out;
  for (const auto& row : Run(txn, s,
                             "SELECT x.connector_id, count(*) FROM subscriptions x, p "
                             "WHERE x.started_at < p.t AND (x.cancelled_at IS NULL OR "
                             "x.cancelled_at >= p.t) AND (p.c IS NULL OR x.connector_id = p.c) "
                             "AND (p.cu IS NULL OR x.customer_id = p.cu) GROUP BY 1"))
    out[row[0].as<std::string>()] = row[1].as<int64_t>();
  return out;
}

int64_t Sum(const std::map<std::string, int64_t>& m) {
  int64_t n = 0;
  for (const auto& [k, v] : m) n += v;
  return n;
}

// Payments x in the period p and the request's connector and customer scope.
const std::string kPaymentsInScope =
    "x.occurred_at >= p.f AND x.occurred_at < p.t AND (p.c IS NULL OR x.connector_id = p.c) "
    "AND (p.cu IS NULL OR x.customer_id = p.cu)";

// Succeeded payments in the period by currency (minor units).
std::map<std::string, int64_t> Revenue(Txn& txn, const Scope& s) {
  std::map<std::string, int64_t> out;
  for (const auto& row : Run(txn, s,
                             "SELECT x.currency, sum(x.amount_minor)::bigint FROM payments x, p "
                             "WHERE x.status = 'succeeded' AND " +
                                 kPaymentsInScope + " GROUP BY 1"))
    out[row[0].as<std::string>()] = row[1].as<int64_t>();
  return out;
}

// Minor units to a decimal amount (two-decimal currencies, as RUB, USD, EUR).
double Major(int64_t minor) { return double(minor) / 100.0; }

struct Connector {
  std::string id, name;
};

std::vector<Connector> Connectors(Txn& txn, const Scope& s) {
  std::vector<Connector> out;
  for (const auto& row : Run(txn, s,
                             "SELECT x.id, x.name FROM connectors x, p "
                             "WHERE p.c IS NULL OR x.id = p.c ORDER BY x.id"))
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
  return out;
}

// One connector's numbers for connectors and connectors/{id}.
struct ConnectorNumbers {
  int64_t subscriptions = 0;
  Usage total;
  std::vector<Usage> operations;                             // most used first
  std::vector<std::pair<std::string, int64_t>> error_types;  // most frequent first
  std::optional<std::vector<Usage>> series;                  // connectors/{id} only
};

// An endpoint's answer: the JSON document and the same numbers as a Report.
struct Answer {
  json body;
  Report report;
};

class AnalyticsRoute final : public http::Endpoint {
 public:
  AnalyticsRoute(PgPool* pool, AccessControl* access, AnalyticsOptions options)
      : pool_(pool),
        access_(access),
        options_(std::move(options)),
        limiter_(*options_.clock, options_.limits) {}

  bool Matches(const std::string& path) const override {
    return path.rfind("/api/v1/analytics/", 0) == 0;
  }
  std::string Name() const override { return "analytics"; }

  http::Response Handle(const http::Request& req) override;

 private:
  Answer Overview(Fanout& q, const Scope& s, bool with_revenue);
  Answer ConnectorsList(Fanout& q, const Scope& s, const std::string& only);
  Answer Users(Fanout& q, const Scope& s, bool pseudonymise);
  Answer Financial(Fanout& q, const Scope& s);
  // `hide_messages`: pseudonymised views get no last_message (free text that may
  // name customers and Make accounts in clear).
  Answer Errors(Fanout& q, const Scope& s, bool hide_messages);
  json ConnectorDetail(const Connector& c, const ConnectorNumbers& n, Report* report);

  PgPool* pool_;
  AccessControl* access_;
  const AnalyticsOptions options_;
  AnalyticsLimiter limiter_;
};

// No pooled connection came within pool_wait_ms.
struct PoolBusy : std::runtime_error {
  PoolBusy() : std::runtime_error("no database connection free") {}
};

Answer AnalyticsRoute::Overview(Fanout& q, const Scope& s, bool with_revenue) {
  Answer a;
  auto total_q = q.Run([&](Txn& t) { return Total(t, s, {true, false}); });
  auto series_q = q.Run([&](Txn& t) { return QueryUsage(t, s, "", true); });
  auto per_connector_q =
      q.Run([&](Txn& t) { return QueryUsage(t, s, "x.connector_id", false, kCountsOnly); });
  std::future<std::map<std::string, int64_t>> revenue_q;
  if (with_revenue) revenue_q = q.Run([&](Txn& t) { return Revenue(t, s); });
  Txn& txn = q.main();
  const auto subs = ActiveSubscriptions(txn, s);
  const auto connectors = Connectors(txn, s);
  const Usage total = total_q.get();
  std::map<std::string, Usage> by_id;
  for (const Usage& u : per_connector_q.get()) by_id[u.key] = u;

  json& b = a.body;
  b["active_users"] = total.users;
  b["active_subscriptions"] = Sum(subs);
  b["operations_total"] = total.operations;
  b["error_rate"] = total.ErrorRate();
  a.report.title = "Обзор платформы BPM Centr";
  a.report.summary = {{"active_users", Num(total.users)},
                      {"active_subscriptions", Num(Sum(subs))},
                      {"operations_total", Num(total.operations)},
                      {"error_rate", Num(total.ErrorRate())}};
  if (with_revenue) {
    const auto revenue = revenue_q.get();
    const auto it = revenue.find(options_.currency);
    const int64_t minor = it == revenue.end() ? 0 : it->second;
    b["revenue"] = Major(minor);
    b["revenue_minor"] = minor;
    b["currency"] = options_.currency;
    b["revenue_by_currency"] = json::object();
    for (const auto& [cur, v] : revenue) b["revenue_by_currency"][cur] = Major(v);
    a.report.summary.push_back({"revenue " + options_.currency, Num(Major(minor))});
  } else {
    b["revenue"] = nullptr;  // financial data is not for this role
  }
  Table ct{
      "connectors", {"id", "name", "active_subscriptions", "operations_total", "error_rate"}, {}};
  b["connectors"] = json::array();
  for (const Connector& c : connectors) {
    const Usage u = by_id.count(c.id) ? by_id[c.id] : Usage{};
    const int64_t n = subs.count(c.id) ? subs.at(c.id) : 0;
    b["connectors"].push_back({{"id", c.id},
                               {"name", c.name},
                               {"active_subscriptions", n},
                               {"operations_total", u.operations},
                               {"error_rate", u.ErrorRate()}});
    ct.rows.push_back({Str(c.id), Str(c.name), Num(n), Num(u.operations), Num(u.ErrorRate())});
  }
  const auto series = series_q.get();
  b["timeseries"] = SeriesJson(series);
  a.report.tables = {ct, SeriesTable("timeseries", series)};
  a.report.charts = {{"Операции по периодам", "timeseries", 0, {1, 2}, Chart::kLine}};
  return a;
}

// The distribution by operation of every connector in scope, one grouped
// query (not one per connector): connector id -> operations, most used first.
// The p95 of each operation only `with_p95`: merging the histograms of every
// (connector, operation, day) is most of the cost of the connectors list
// (6,000 rows of 52 buckets for 10 connectors x 20 operations x 30 days), so
// the list gives the p95 per connector and connectors/{id} per operation.
std::map<std::string, std::vector<Usage>> OperationsByConnector(Txn& txn, const Scope& s,
                                                                bool with_p95) {
  const Source op = BreakdownSource(s, "usage_by_operation", "usage_by_customer_operation_daily");
  std::map<std::string, std::vector<Usage>> out;
  for (const auto& row :
       Run(txn, s,
           "SELECT x.connector_id, x.operation, sum(x.operation_count)::bigint, "
           "sum(x.error_count)::bigint, coalesce(sum(x.duration_sum_ms), 0)::float8, "
           "coalesce(sum(x.duration_count), 0)::bigint, " +
               (with_p95 ? BucketSumsSql() : std::string("NULL::bigint[]")) + " FROM " + op.table +
               " x, p WHERE " + op.where +
               " AND (p.c IS NULL OR x.connector_id = p.c) GROUP BY 1, 2 "
               "ORDER BY 1, 3 DESC, 2")) {
    Usage u;
    u.key = row[1].as<std::string>();
    u.operations = row[2].as<int64_t>();
    u.errors = row[3].as<int64_t>();
    u.duration_sum = row[4].as<double>();
    u.duration_count = row[5].as<int64_t>();
    u.p95 = P95(s, row[6]);
    out[row[0].as<std::string>()].push_back(u);
  }
  return out;
}

// Errors by type of every connector in scope, one grouped query: connector
// id -> (error type, count), most frequent first.
std::map<std::string, std::vector<std::pair<std::string, int64_t>>> ErrorTypesByConnector(
    Txn& txn, const Scope& s) {
  const Source er = BreakdownSource(s, "usage_errors", "usage_errors_by_customer_daily");
  std::map<std::string, std::vector<std::pair<std::string, int64_t>>> out;
  for (const auto& row :
       Run(txn, s,
           "SELECT x.connector_id, x.error_type, sum(x.error_count)::bigint FROM " + er.table +
               " x, p WHERE " + er.where +
               " AND (p.c IS NULL OR x.connector_id = p.c) GROUP BY 1, 2 "
               "ORDER BY 1, 3 DESC, 2"))
    out[row[0].as<std::string>()].emplace_back(row[1].as<std::string>(), row[2].as<int64_t>());
  return out;
}

json AnalyticsRoute::ConnectorDetail(const Connector& c, const ConnectorNumbers& n,
                                     Report* report) {
  json j = UsageJson(n.total);
  j["id"] = c.id;
  j["name"] = c.name;
  j["active_subscriptions"] = n.subscriptions;

  // Per-operation p95 only in connectors/{id} (see OperationsByConnector).
  const bool detail = n.series.has_value();
  j["operations"] = json::array();
  Table ot{"operations " + c.id, {"operation", "operations", "errors", "error_rate", "avg_ms"}, {}};
  if (detail) ot.columns.push_back("p95_ms");
  for (const Usage& u : n.operations) {
    json o = UsageJson(u);
    o.erase("unique_users");
    if (!detail) o.erase("p95_response_time_ms");
    o["operation"] = u.key;
    o["share"] = n.total.operations ? double(u.operations) / double(n.total.operations) : 0.0;
    j["operations"].push_back(o);
    ot.rows.push_back(
        {Str(u.key), Num(u.operations), Num(u.errors), Num(u.ErrorRate()), Opt(u.AvgMs())});
    if (detail) ot.rows.back().push_back(Opt(u.p95));
  }
  j["errors_by_type"] = json::array();
  Table et{"errors " + c.id, {"error_type", "count", "share"}, {}};
  for (const auto& [type, count] : n.error_types) {
    const double share = n.total.errors ? double(count) / double(n.total.errors) : 0.0;
    j["errors_by_type"].push_back({{"error_type", type}, {"count", count}, {"share", share}});
    et.rows.push_back({Str(type), Num(count), Num(share)});
  }
  report->tables.push_back(ot);
  report->tables.push_back(et);
  if (n.series) {
    j["timeseries"] = SeriesJson(*n.series);
    report->tables.push_back(SeriesTable("timeseries " + c.id, *n.series));
    report->charts.push_back(
        {"Операции: " + c.name, "timeseries " + c.id, 0, {1, 2}, Chart::kLine});
  }
  return j;
}

Answer AnalyticsRoute::ConnectorsList(Fanout& q, const Scope& s, const std::string& only) {
  Answer a;
  // Four grouped queries for all connectors in scope (s.connector is `only`
  // for connectors/{id}), run concurrently, then assembled per connector.
  auto subs_q = q.Run([&](Txn& t) { return ActiveSubscriptions(t, s); });
  auto totals_q = q.Run([&](Txn& t) { return QueryUsage(t, s, "x.connector_id"); });
  auto operations_q = q.Run([&](Txn& t) { return OperationsByConnector(t, s, !only.empty()); });
  auto error_types_q = q.Run([&](Txn& t) { return ErrorTypesByConnector(t, s); });
  std::future<std::vector<Usage>> series_q;
  if (!only.empty()) series_q = q.Run([&](Txn& t) { return QueryUsage(t, s, "", true); });
  const auto connectors = Connectors(q.main(), s);
  const auto subs = subs_q.get();
  std::map<std::string, Usage> totals;
  for (Usage& u : totals_q.get()) totals[u.key] = std::move(u);
  auto operations = operations_q.get();
  auto error_types = error_types_q.get();
  Table summary{"connectors",
                {"id", "name", "active_subscriptions", "operations_total", "error_rate",
                 "unique_users", "avg_ms", "p95_ms"},
                {}};
  json list = json::array();
  for (const Connector& c : connectors) {
    if (!only.empty() && c.id != only) continue;
    ConnectorNumbers n;
    n.subscriptions = subs.count(c.id) ? subs.at(c.id) : 0;
    if (totals.count(c.id)) n.total = totals[c.id];
    n.operations = std::move(operations[c.id]);
    n.error_types = std::move(error_types[c.id]);
    if (!only.empty()) n.series = series_q.get();
    json j = ConnectorDetail(c, n, &a.report);
    summary.rows.push_back({Str(c.id), Str(c.name), Num(n.subscriptions), Num(n.total.operations),
                            Num(n.total.ErrorRate()), Num(n.total.users), Opt(n.total.AvgMs()),
                            Opt(n.total.p95)});
    list.push_back(std::move(j));
  }
  a.report.tables.insert(a.report.tables.begin(), summary);
  if (only.empty()) {
    a.body["connectors"] = list;
    a.report.title = "Статистика коннекторов";
  } else {
    a.body = list.empty() ? json::object() : list[0];
    a.report.title = "Коннектор " + only;
  }
  return a;
}

// The activity distribution reads a row per Make account (and customer):
// 10,000 for 10,000 accounts over 30 days, the slowest part of the users
// endpoint. It is read in kActivityParts parts run concurrently, split by a
// hash of the account, so that every row of an account is in one part: each
// part is summarised on its own thread and the summaries merge exactly
// (MergeActivity).
constexpr int kActivityParts = 2;
constexpr size_t kTopAccounts = 10;

// Operations per Make account and customer in the period's local days
// [fd, td), of the accounts of part $9 of $10: rows (account, customer,
// operations), an account possibly in several rows (SummariseActivity adds
// them up). Without a connector filter it reads the two-month activity
// windows (migration 0008) $11 (ActivityWindowStarts, all starting in months
// of parity `window_parity`, so in one table), each giving the operations of
// its days a..b in the period = cum_ops[b] - cum_ops[a - 1]; a period within
// two calendar months reads one window, one row per account. The grouping is
// left to the exporter (a hash aggregation over text keys in PostgreSQL
// costs more than sending the rows). With a connector filter it reads
// account_activity_daily (its rows carry the connector), grouped here.
std::string ActivitySql(bool by_connector, int window_parity) {
  const std::string part = " AND (hashtext(x.make_account_id) & 2147483647) % $10 = $9";
  if (by_connector)
    return "SELECT x.make_account_id, x.customer_id, sum(x.operation_count)::bigint "
           "FROM account_activity_daily x, p WHERE x.day >= p.fd AND x.day < p.td "
           "AND x.connector_id = p.c AND (p.cu IS NULL OR x.customer_id = p.cu)" +
           part + " GROUP BY 1, 2";
  // The window starts come as $11 (ActivityWindowStarts): planned with its
  // value, the condition uses the window_start index.
  return "SELECT x.make_account_id, x.customer_id, "
         "x.cum_ops[least(p.td, (x.window_start + interval '2 months')::date) - x.window_start] "
         "- coalesce(x.cum_ops[greatest(p.fd, x.window_start) - x.window_start], 0) "
         "FROM " +
         std::string(aggregation::ActivityWindowTable(window_parity)) +
         " x, p WHERE x.window_start = ANY ($11::date[]) "
         "AND (p.cu IS NULL OR x.customer_id = p.cu)" +
         part;
}

// The activity summary of one part (rows read as views into the result).
ActivitySummary QueryActivity(Txn& txn, const Scope& s, int part) {
  pqxx::result r;
  if (s.connector) {
    r = Run(txn, s, ActivitySql(true, 0), part, kActivityParts);
  } else {
    // The windows start every second month from fd's: all in one table.
    const std::vector<std::string> windows = ActivityWindowStarts(s.period.fd, s.period.td);
    if (windows.empty())  // the period is never empty: malformed dates, not "no activity"
      throw std::runtime_error("no activity window for " + s.period.fd + " .. " + s.period.td);
    std::string starts;  // a date[] literal
    for (const std::string& d : windows) starts += (starts.empty() ? "{" : ",") + d;
    const int parity = std::stoi(windows[0].substr(5, 2)) % 2;
    r = Run(txn, s, ActivitySql(false, parity), part, kActivityParts, starts + "}");
  }
  std::vector<AccountOpsRow> rows;
  rows.reserve(r.size());
  for (const auto& row : r) {
    // One field iterator per row: every pqxx::field made holds a copy of the
    // result (two shared pointers), ~25% of this loop's time with row[i].
    auto f = row.begin();
    const std::string_view account(f->c_str(), f->size());
    ++f;
    const std::string_view customer(f->c_str(), f->size());
    ++f;
    rows.push_back({account, customer, f->as<int64_t>()});
  }
  return SummariseActivity(rows, kTopAccounts);
}

Answer AnalyticsRoute::Users(Fanout& q, const Scope& s, bool pseudonymise) {
  Answer a;
  json& b = a.body;
  a.report.title = "Статистика пользователей";
  // Activity distribution (Make accounts by their operations in the period)
  // and the most active accounts: the slowest part, started first.
  std::vector<std::future<ActivitySummary>> activity_q;
  for (int part = 0; part < kActivityParts; ++part)
    activity_q.push_back(q.Run([&s, part](Txn& t) { return QueryActivity(t, s, part); }));
  auto total_q = q.Run([&](Txn& t) { return Total(t, s, {true, false}); });
  auto active_q = q.Run([&](Txn& t) { return QueryUsage(t, s, "", true, {true, false}); });
  // New users: Make accounts first seen in the period, by bucket.
  const std::string fmt =
      s.granularity == Granularity::kHour ? "YYYY-MM-DD\"T\"HH24:MI:SS" : "YYYY-MM-DD";
  auto new_users_q = q.Run([&](Txn& t) {
    std::vector<std::pair<std::string, int64_t>> out;
    for (const auto& row :
         Run(t, s,
             "SELECT to_char(b, '" + fmt +
                 "'), n FROM (SELECT date_trunc(p.unit, "
                 "x.first_seen AT TIME ZONE p.tz) AS b, count(*) AS n "
                 "FROM account_first_seen x, p "
                 "WHERE x.first_seen >= p.f AND x.first_seen < p.t "
                 "AND (p.c IS NULL OR x.connector_id = p.c) "
                 "AND (p.cu IS NULL OR x.customer_id = p.cu) GROUP BY 1) g ORDER BY b"))
      out.emplace_back(row[0].as<std::string>(), row[1].as<int64_t>());
    return out;
  });
  Txn& txn = q.main();

  json new_users = json::array();
  int64_t new_total = 0;
  Table nt{"new_users", {"bucket", "new_users"}, {}};
  for (const auto& [bucket, n] : new_users_q.get()) {
    new_total += n;
    new_users.push_back({{"bucket", bucket}, {"new_users", n}});
    nt.rows.push_back({Str(bucket), Num(n)});
  }
  b["new_users_total"] = new_total;

  json series = json::array();
  Table at{"active_users", {"bucket", "active_users"}, {}};
  for (const Usage& u : active_q.get()) {
    series.push_back({{"bucket", u.key}, {"active_users", u.users}});
    at.rows.push_back({Str(u.key), Num(u.users)});
  }
  b["active_users_series"] = series;
  b["new_users"] = new_users;

  // Trial conversion: trials started in the period that became paid.
  // Churn: subscriptions cancelled in the period / (active at its start + started in it).
  const auto subs =
      Run(txn, s,
          "SELECT count(*) FILTER (WHERE x.trial AND x.started_at >= p.f AND x.started_at < p.t),"
          " count(*) FILTER (WHERE x.trial AND x.started_at >= p.f AND x.started_at < p.t"
          "   AND x.trial_converted_at IS NOT NULL),"
          " count(*) FILTER (WHERE x.started_at < p.f AND (x.cancelled_at IS NULL OR "
          "x.cancelled_at >= p.f)),"
          " count(*) FILTER (WHERE x.started_at >= p.f AND x.started_at < p.t),"
          " count(*) FILTER (WHERE x.cancelled_at >= p.f AND x.cancelled_at < p.t)"
          " FROM subscriptions x, p WHERE (p.c IS NULL OR x.connector_id = p.c)"
          " AND (p.cu IS NULL OR x.customer_id = p.cu)")[0];
  const int64_t trials = subs[0].as<int64_t>(), converted = subs[1].as<int64_t>(),
                at_start = subs[2].as<int64_t>(), started = subs[3].as<int64_t>(),
                cancelled = subs[4].as<int64_t>();
  b["trial_conversion"] = {{"trials_started", trials},
                           {"converted", converted},
                           {"rate", trials ? double(converted) / double(trials) : 0.0}};
  b["churn"] = {
      {"active_at_start", at_start},
      {"started", started},
      {"cancelled", cancelled},
      {"rate", at_start + started ? double(cancelled) / double(at_start + started) : 0.0}};

  std::vector<ActivitySummary> activity_parts;
  for (auto& part : activity_q) activity_parts.push_back(part.get());
  const ActivitySummary activity = MergeActivity(activity_parts, kTopAccounts);
  json dist = json::array();
  Table dt{"activity_distribution", {"operations", "accounts"}, {}};
  for (const auto& [bin, accounts] : activity.bins) {
    dist.push_back({{"operations", bin}, {"accounts", accounts}});
    dt.rows.push_back({Str(bin), Num(accounts)});
  }
  json top = json::array();
  Table tt{"top_accounts", {"make_account_id", "customer", "operations"}, {}};
  for (const AccountOps& t : activity.top) {
    std::string account = t.account, customer = t.customer;
    if (pseudonymise) {
      account = access_->AccountPseudonym(account);
      customer = access_->Pseudonym(customer);
    }
    top.push_back(
        {{"make_account_id", account}, {"customer", customer}, {"operations", t.operations}});
    tt.rows.push_back({Str(account), Str(customer), Num(t.operations)});
  }
  b["activity_distribution"] = dist;

  b["top_accounts"] = top;
  const Usage total = total_q.get();
  b["active_users"] = total.users;
  a.report.summary = {{"active_users", Num(total.users)},
                      {"new_users", Num(new_total)},
                      {"trial_conversion_rate", Num(b["trial_conversion"]["rate"].get<double>())},
                      {"churn_rate", Num(b["churn"]["rate"].get<double>())}};
  a.report.tables = {at, nt, dt, tt};
  a.report.charts = {{"Активные пользователи", "active_users", 0, {1}, Chart::kLine},
                     {"Распределение активности", "activity_distribution", 0, {1}, Chart::kBar}};
  return a;
}

Answer AnalyticsRoute::Financial(Fanout& q, const Scope& s) {
  Answer a;
  json& b = a.body;
  a.report.title = "Финансовая статистика";
  const std::string cur = options_.currency;
  const std::string fmt =
      s.granularity == Granularity::kHour ? "YYYY-MM-DD\"T\"HH24:MI:SS" : "YYYY-MM-DD";
  // The payment queries run concurrently (Fanout); revenue and churn below,
  // in the request's transaction meanwhile.
  auto query = [&](std::string sql) {
    return q.Run([&s, sql = std::move(sql)](Txn& t) { return Run(t, s, sql); });
  };
  auto series_q =
      query("SELECT to_char(b, '" + fmt +
            "'), currency, v FROM (SELECT date_trunc(p.unit, "
            "x.occurred_at AT TIME ZONE p.tz) AS b, x.currency, sum(x.amount_minor)::bigint AS v "
            "FROM payments x, p WHERE x.status = 'succeeded' AND " +
            kPaymentsInScope + " GROUP BY 1, 2) g ORDER BY b, currency");
  auto by_connector_q = query(
      "SELECT x.connector_id, x.currency, sum(x.amount_minor)::bigint, count(*) "
      "FROM payments x, p WHERE x.status = 'succeeded' AND " +
      kPaymentsInScope + " GROUP BY 1, 2 ORDER BY 3 DESC, 1");
  auto failed_q = query(
      "SELECT coalesce(x.failure_reason, 'unknown'), count(*), sum(x.amount_minor)::bigint "
      "FROM payments x, p WHERE x.status = 'failed' AND " +
      kPaymentsInScope + " GROUP BY 1 ORDER BY 2 DESC, 1");
  // The paying customers and the number of payments (any status).
  auto paying_q = query(
      "SELECT count(DISTINCT x.customer_id) FILTER (WHERE x.status = 'succeeded'), "
      "count(x.customer_id), extract(epoch FROM max(p.t) - max(p.f)) / 86400.0 "
      "FROM p LEFT JOIN payments x ON " +
      kPaymentsInScope);
  Txn& txn = q.main();
  const auto revenue = Revenue(txn, s);
  const int64_t minor = revenue.count(cur) ? revenue.at(cur) : 0;
  b["currency"] = cur;
  b["revenue"] = Major(minor);
  b["revenue_minor"] = minor;
  b["revenue_by_currency"] = json::object();
  for (const auto& [c, v] : revenue) b["revenue_by_currency"][c] = Major(v);

  json series = json::array();
  Table rt{"revenue", {"bucket", "currency", "revenue"}, {}};
  for (const auto& row : series_q.get()) {
    const int64_t v = row[2].as<int64_t>();
    series.push_back({{"bucket", row[0].as<std::string>()},
                      {"currency", row[1].as<std::string>()},
                      {"revenue", Major(v)},
                      {"revenue_minor", v}});
    rt.rows.push_back(
        {Str(row[0].as<std::string>()), Str(row[1].as<std::string>()), Num(Major(v))});
  }
  b["revenue_series"] = series;

  json by_connector = json::array();
  Table ct{"revenue_by_connector", {"connector", "currency", "revenue", "payments"}, {}};
  for (const auto& row : by_connector_q.get()) {
    const int64_t v = row[2].as<int64_t>();
    by_connector.push_back({{"connector", row[0].as<std::string>()},
                            {"currency", row[1].as<std::string>()},
                            {"revenue", Major(v)},
                            {"revenue_minor", v},
                            {"payments", row[3].as<int64_t>()}});
    ct.rows.push_back({Str(row[0].as<std::string>()), Str(row[1].as<std::string>()), Num(Major(v)),
                       Num(row[3].as<int64_t>())});
  }
  b["revenue_by_connector"] = by_connector;

  // ARPU = revenue (reporting currency) / customers with a succeeded payment
  // in the period. LTV = (ARPU per 30 days) / (monthly churn rate), where the
  // monthly churn rate is the period's churn rate scaled to 30 days; null
  // when nobody churned (the estimate is unbounded).
  const pqxx::result paying_rows = paying_q.get();
  const auto paying = paying_rows[0];
  const int64_t customers = paying[0].as<int64_t>();
  const double days = paying[2].as<double>();
  const double arpu = customers ? Major(minor) / double(customers) : 0.0;
  const auto churn = Run(txn, s,
                         "SELECT count(*) FILTER (WHERE x.started_at < p.f AND (x.cancelled_at IS "
                         "NULL OR x.cancelled_at >= p.f))"
                         " + count(*) FILTER (WHERE x.started_at >= p.f AND x.started_at < p.t),"
                         " count(*) FILTER (WHERE x.cancelled_at >= p.f AND x.cancelled_at < p.t)"
                         " FROM subscriptions x, p WHERE (p.c IS NULL OR x.connector_id = p.c)"
                         " AND (p.cu IS NULL OR x.customer_id = p.cu)")[0];
  const double base = churn[0].as<double>(), cancelled = churn[1].as<double>();
  const double churn_rate = base > 0 ? cancelled / base : 0.0;
  const double monthly_churn = days > 0 ? churn_rate * 30.0 / days : 0.0;
  const double arpu_monthly = days > 0 ? arpu * 30.0 / days : 0.0;
  b["paying_customers"] = customers;
  b["arpu"] = arpu;
  b["ltv"] = monthly_churn > 0 ? json(arpu_monthly / monthly_churn) : json(nullptr);
  b["ltv_formula"] = "(ARPU per 30 days) / (monthly churn rate); ARPU = revenue / paying customers";
  b["churn_rate"] = churn_rate;

  json failed = json::array();
  int64_t failed_count = 0, failed_minor = 0;
  Table ft{"failed_payments", {"reason", "count", "amount"}, {}};
  // Reasons are the platform's free text (a card holder's name or e-mail may be in
  // it): the report shows their categories (exporter/payment_reason.h), never the text.
  std::map<std::string, std::pair<int64_t, int64_t>> by_category;  // count, amount
  for (const auto& row : failed_q.get()) {
    const int64_t n = row[1].as<int64_t>(), amount = row[2].as<int64_t>();
    failed_count += n;
    failed_minor += amount;
    auto& [cn, ca] =
        by_category[std::string(billing::PaymentFailureCategory(row[0].as<std::string>()))];
    cn += n;
    ca += amount;
  }
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> categories(by_category.begin(),
                                                                              by_category.end());
  std::stable_sort(categories.begin(), categories.end(),
                   [](const auto& x, const auto& y) { return x.second.first > y.second.first; });
  for (const auto& [category, totals] : categories) {
    const auto [n, amount] = totals;
    failed.push_back({{"reason", category}, {"count", n}, {"amount_minor", amount}});
    ft.rows.push_back({Str(category), Num(n), Num(Major(amount))});
  }
  const int64_t all_payments = paying[1].as<int64_t>();
  b["failed_payments"] = {
      {"count", failed_count},
      {"amount_minor", failed_minor},
      {"ratio", all_payments ? double(failed_count) / double(all_payments) : 0.0},
      {"by_reason", failed}};
  a.report.summary = {{"revenue " + cur, Num(Major(minor))},
                      {"ARPU", Num(arpu)},
                      {"LTV", b["ltv"].is_null() ? Cell{} : Num(b["ltv"].get<double>())},
                      {"failed_payments", Num(failed_count)}};
  a.report.tables = {rt, ct, ft};
  a.report.charts = {{"Доход по периодам", "revenue", 0, {2}, Chart::kBar}};
  return a;
}

// Errors of one (connector, operation, error type) in a period.
struct ErrorGroup {
  std::string connector, operation, type;
  int64_t errors = 0;
};

// Pure: (key, count) pairs by count, descending, ties by key.
std::vector<std::pair<std::string, int64_t>> MostFrequent(
    const std::map<std::string, int64_t>& counts) {
  std::vector<std::pair<std::string, int64_t>> out(counts.begin(), counts.end());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

// Pure: the n groups with the most errors, ties by connector, operation, type.
std::vector<ErrorGroup> TopErrorGroups(std::vector<ErrorGroup> groups, size_t n) {
  auto order = [](const ErrorGroup& a, const ErrorGroup& b) {
    if (a.errors != b.errors) return a.errors > b.errors;
    return std::tie(a.connector, a.operation, a.type) < std::tie(b.connector, b.operation, b.type);
  };
  std::sort(groups.begin(), groups.end(), order);
  if (groups.size() > n) groups.resize(n);
  return groups;
}

Answer AnalyticsRoute::Errors(Fanout& q, const Scope& s, bool hide_messages) {
  Answer a;
  json& b = a.body;
  a.report.title = "Статистика ошибок";
  Txn& txn = q.main();
  // The previous period, of the same length just before this one (trend).
  Scope prev = s;
  const auto shifted = Run(txn, s,
                           "SELECT p.f - (p.t - p.f), p.f, "
                           "((p.f - (p.t - p.f)) AT TIME ZONE p.tz)::date, p.fd FROM p")[0];
  prev.period = {shifted[0].as<std::string>(), shifted[1].as<std::string>(),
                 shifted[2].as<std::string>(), shifted[3].as<std::string>()};
  // One grouped pass over the errors by connector, operation and type (the
  // totals by type and the ten most frequent come from it), then the last
  // message of each of those ten from its newest bucket (a key lookup).
  const Source er = BreakdownSource(s, "usage_errors", "usage_errors_by_customer_daily");
  auto groups_q = q.Run([&](Txn& t) {
    std::vector<ErrorGroup> groups;
    for (const auto& row : Run(t, s,
                               "SELECT x.connector_id, x.operation, x.error_type, "
                               "sum(x.error_count)::bigint FROM " +
                                   er.table + " x, p WHERE " + er.where +
                                   " AND (p.c IS NULL OR x.connector_id = p.c) "
                                   "GROUP BY 1, 2, 3"))
      groups.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                        row[2].as<std::string>(), row[3].as<int64_t>()});
    return groups;
  });
  auto total_q = q.Run([&](Txn& t) { return Total(t, s, kCountsOnly); });
  auto series_q = q.Run([&](Txn& t) { return QueryUsage(t, s, "", true, kCountsOnly); });
  auto by_connector_q =
      q.Run([&](Txn& t) { return QueryUsage(t, s, "x.connector_id", false, kCountsOnly); });
  auto before_q = q.Run([&](Txn& t) { return Total(t, prev, kCountsOnly); });

  const Usage total = total_q.get();
  b["errors_total"] = total.errors;
  b["operations_total"] = total.operations;
  b["error_rate"] = total.ErrorRate();
  const auto series = series_q.get();
  json js = json::array();
  Table st{"errors_by_period", {"bucket", "errors", "error_rate"}, {}};
  for (const Usage& u : series) {
    js.push_back({{"bucket", u.key}, {"errors", u.errors}, {"error_rate", u.ErrorRate()}});
    st.rows.push_back({Str(u.key), Num(u.errors), Num(u.ErrorRate())});
  }
  b["errors_by_period"] = js;

  json by_connector = json::array();
  Table ct{"errors_by_connector", {"connector", "errors", "error_rate"}, {}};
  for (const Usage& u : by_connector_q.get()) {
    by_connector.push_back(
        {{"connector", u.key}, {"errors", u.errors}, {"error_rate", u.ErrorRate()}});
    ct.rows.push_back({Str(u.key), Num(u.errors), Num(u.ErrorRate())});
  }
  b["errors_by_connector"] = by_connector;

  json by_type = json::array(), top = json::array();
  Table tt{"errors_by_type", {"error_type", "errors"}, {}};
  Table mt{"most_frequent_errors",
           {"connector", "operation", "error_type", "errors", "last_message"},
           {}};
  {
    std::vector<ErrorGroup> groups = groups_q.get();
    std::map<std::string, int64_t> types;
    for (const ErrorGroup& g : groups) types[g.type] += g.errors;
    for (const auto& [type, n] : MostFrequent(types)) {
      by_type.push_back({{"error_type", type}, {"errors", n}});
      tt.rows.push_back({Str(type), Num(n)});
    }
    const std::vector<ErrorGroup> ten = TopErrorGroups(std::move(groups), 10);
    json keys = json::array();
    for (const ErrorGroup& g : ten)
      keys.push_back({{"c", g.connector}, {"o", g.operation}, {"t", g.type}});
    // A message is an event's free text: ScrubPii takes out e-mails and phones, but
    // customer and Make account ids cannot be told from other words, so views
    // with pseudonyms show no message at all (docs/ANALYTICS.md).
    const auto messages =
        hide_messages
            ? pqxx::result()
            : Run(txn, s,
                  ", k AS (SELECT * FROM jsonb_to_recordset($9::jsonb) AS k(c text, o text, t "
                  "text)) "
                  "SELECT k.c, k.o, k.t, (SELECT x.last_message FROM " +
                      er.table + " x WHERE " + er.where +
                      " AND x.connector_id = k.c AND x.operation = k.o AND x.error_type = k.t "
                      "AND x.last_message IS NOT NULL ORDER BY " +
                      er.time_col + " DESC LIMIT 1) FROM k, p",
                  keys.dump());
    std::map<std::tuple<std::string, std::string, std::string>, std::string> last;
    for (const auto& row : messages)
      if (!row[3].is_null())
        last[{row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()}] =
            ScrubPii(row[3].as<std::string>());
    for (const ErrorGroup& g : ten) {
      const auto it = last.find({g.connector, g.operation, g.type});
      const std::string message = it == last.end() ? "" : it->second;
      top.push_back({{"connector", g.connector},
                     {"operation", g.operation},
                     {"error_type", g.type},
                     {"errors", g.errors},
                     {"last_message", hide_messages ? json(nullptr) : json(message)}});
      mt.rows.push_back(
          {Str(g.connector), Str(g.operation), Str(g.type), Num(g.errors), Str(message)});
    }
  }
  b["errors_by_type"] = by_type;
  b["most_frequent_errors"] = top;

  // Trend: this period against the one of the same length just before it.
  const Usage before = before_q.get();
  b["trend"] = {
      {"previous_errors_total", before.errors},
      {"previous_error_rate", before.ErrorRate()},
      {"change", before.errors ? json(double(total.errors - before.errors) / double(before.errors))
                               : json(nullptr)}};
  a.report.summary = {{"errors_total", Num(total.errors)},
                      {"error_rate", Num(total.ErrorRate())},
                      {"previous_errors_total", Num(before.errors)}};
  a.report.tables = {st, ct, tt, mt};
  a.report.charts = {{"Ошибки по периодам", "errors_by_period", 0, {1}, Chart::kBar}};
  return a;
}

// Rounds the requested period out to whole buckets in the reporting time
// zone; dates (YYYY-MM-DD) are local midnights.
constexpr const char* kPeriodSql = R"sql(
WITH i AS (
  SELECT CASE WHEN length($1) = 10 THEN $1::date::timestamp AT TIME ZONE $3 ELSE $1::timestamptz END AS f0,
         CASE WHEN length($2) = 10 THEN $2::date::timestamp AT TIME ZONE $3 ELSE $2::timestamptz END AS t0),
r AS (
  SELECT date_trunc($4, f0 AT TIME ZONE $3) AT TIME ZONE $3 AS f,
         (date_trunc($4, (t0 AT TIME ZONE $3) - interval '1 microsecond') + ('1 ' || $4)::interval)
           AT TIME ZONE $3 AS t
  FROM i)
SELECT f, t, to_char(f AT TIME ZONE $3, 'YYYY-MM-DD'), to_char(t AT TIME ZONE $3, 'YYYY-MM-DD'),
       to_char(f AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       to_char(coalesce((SELECT u.created_at FROM connector_usage u
                         WHERE u.seq > (SELECT last_seq FROM rollup_state WHERE name = 'usage')
                         ORDER BY u.seq LIMIT 1), transaction_timestamp()) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM r)sql";

enum class Resource { kOverview, kConnectors, kConnector, kUsers, kFinancial, kErrors };

http::Response AnalyticsRoute::Handle(const http::Request& req) {
  const std::string rest = req.path.substr(std::string("/api/v1/analytics/").size());
  Resource endpoint;
  std::string connector_id;
  if (rest == "overview") {
    endpoint = Resource::kOverview;
  } else if (rest == "connectors") {
    endpoint = Resource::kConnectors;
  } else if (rest.rfind("connectors/", 0) == 0 && rest.size() > 11 &&
             rest.find('/', 11) == std::string::npos) {
    endpoint = Resource::kConnector;
    connector_id = rest.substr(11);
  } else if (rest == "users") {
    endpoint = Resource::kUsers;
  } else if (rest == "financial") {
    endpoint = Resource::kFinancial;
  } else if (rest == "errors") {
    endpoint = Resource::kErrors;
  } else {
    // Refusals under /api/v1/analytics/ are audited like the others.
    http::Response r = http::Error(404, "no such analytics endpoint", "");
    access_->AuditRefusal(req, r);
    return r;
  }
  if (req.method != "GET") {
    http::Response r = http::Error(405, "method not allowed", "");
    r.headers.push_back({"Allow", "GET"});
    access_->AuditRefusal(req, r);
    return r;
  }

  const auto params = http::ParseQuery(req.query);
  auto parsed = ParseAnalyticsQuery(params, options_.clock->NowMicros(), options_.default_days);
  AnalyticsQuery q;
  if (auto* ok = std::get_if<AnalyticsQuery>(&parsed)) q = *ok;
  const std::string requested_customer =
      params.count("customer") ? params.at("customer") : std::string();

  DataKind kind = requested_customer.empty() ? DataKind::kAggregate : DataKind::kCustomerUsage;
  if (endpoint == Resource::kUsers) kind = DataKind::kUserStats;
  if (endpoint == Resource::kFinancial) kind = DataKind::kFinancial;

  AccessControl::Admission adm = access_->Admit(req, kind, requested_customer);
  if (!adm.admitted) return adm.response;
  if (auto* err = std::get_if<RequestError>(&parsed))
    return access_->Finish(adm, http::Error(err->http_status, err->message, err->field));
  auto format =
      report::ChooseFormat(params.count("format") ? params.at("format") : "", req.Header("accept"));
  if (auto* err = std::get_if<RequestError>(&format))
    return access_->Finish(adm, http::Error(err->http_status, err->message, err->field));
  if (auto err = CheckPeriod(adm.principal.role, q.from_us, q.to_us, options_.limits))
    return access_->Finish(adm, http::Error(err->http_status, err->message, err->field));
  const AnalyticsLimiter::Ticket ticket = limiter_.Admit(adm.principal.user_id);
  if (ticket.verdict != AnalyticsLimiter::Verdict::kAdmitted) {
    const bool rate = ticket.verdict == AnalyticsLimiter::Verdict::kRateLimited;
    access_->CountFailure(rate ? "analytics_rate_limited" : "analytics_concurrency_limited");
    http::Response r = http::Error(429,
                                   rate ? "too many analytics requests for this user; retry later"
                                        : "too many analytics requests of this user in progress",
                                   "Authorization");
    r.headers.push_back({"Retry-After", std::to_string(ticket.retry_after_s)});
    return access_->Finish(adm, std::move(r));
  }
  if (!adm.decision.forced_customer.empty()) q.customer = adm.decision.forced_customer;
  const bool with_revenue =
      Decide(adm.principal, AccessRequest{DataKind::kFinancial, q.customer,
                                          !req.Header("x-access-reason").empty()})
          .allowed;

  // The pool lease ends before Finish(), which needs a connection of its own
  // for the audit row: holding both could exhaust the pool.
  http::Response resp;
  auto compute = [&] {
    std::optional<PgPool::Lease> lease =
        pool_->AcquireFor(std::chrono::milliseconds(options_.limits.pool_wait_ms));
    if (!lease) throw PoolBusy();
    PgPool::Lease& conn = *lease;
    try {
      ReadTxn txn(*conn);
      const auto pr = txn.exec_params(kPeriodSql, q.from, q.to, options_.time_zone,
                                      std::string(Unit(q.granularity)))[0];
      Scope s;
      s.period = {pr[0].as<std::string>(), pr[1].as<std::string>(), pr[2].as<std::string>(),
                  pr[3].as<std::string>()};
      s.tz = options_.time_zone;
      s.granularity = q.granularity;
      const auto bounds =
          ParseDoubleArray(txn.exec("SELECT bpmc_duration_bounds()::text")[0][0].as<std::string>());
      if (!bounds) throw std::runtime_error("malformed bpmc_duration_bounds()");
      s.bounds = *bounds;
      if (!q.connector.empty()) s.connector = q.connector;
      if (!connector_id.empty()) s.connector = connector_id;
      if (!q.customer.empty()) s.customer = q.customer;
      if (s.connector && Connectors(txn, s).empty()) {
        resp = endpoint == Resource::kConnector
                   ? http::Error(404, "no such connector", "id")
                   : http::Error(400, "unknown connector", "connector");
        return;
      }
      Answer a;
      Fanout fan(pool_, txn);
      switch (endpoint) {
        case Resource::kOverview:
          a = Overview(fan, s, with_revenue);
          break;
        case Resource::kConnectors:
          a = ConnectorsList(fan, s, "");
          break;
        case Resource::kConnector:
          a = ConnectorsList(fan, s, connector_id);
          break;
        case Resource::kUsers:
          a = Users(fan, s, adm.decision.pseudonymise_ids);
          break;
        case Resource::kFinancial:
          a = Financial(fan, s);
          break;
        case Resource::kErrors:
          a = Errors(fan, s, adm.decision.pseudonymise_ids);
          break;
      }
      txn.commit();
      const std::string from = pr[4].as<std::string>(), to = pr[5].as<std::string>();
      const std::string as_of = pr[6].as<std::string>();
      a.body["as_of"] = as_of;
      a.body["period"] = {{"from", from},
                          {"to", to},
                          {"granularity", Unit(q.granularity)},
                          {"time_zone", options_.time_zone}};
      if (s.customer)
        a.body["customer"] =
            adm.decision.pseudonymise_ids ? access_->Pseudonym(*s.customer) : *s.customer;
      a.report.period =
          from + " — " + to + " (" + options_.time_zone + "); данные на / data as of " + as_of;
      a.report.file_stem = "bpmc-" + rest.substr(0, rest.find('/')) + "-" + from.substr(0, 10);
      const ExportFormat f = std::get<ExportFormat>(format);
      if (f == ExportFormat::kJson) {
        resp.body = a.body.dump();
      } else {
        // Rendered on a thread of its own: fontconfig's first load (under
        // cairo) recurses deeper than CivetWeb's small worker stacks allow.
        Rendered r;
        std::thread renderer([&] {
          r = f == ExportFormat::kCsv    ? RenderCsv(a.report)
              : f == ExportFormat::kXlsx ? RenderXlsx(a.report)
                                         : RenderPdf(a.report);
        });
        renderer.join();
        if (!r.ok()) {
          access_->CountFailure("export_render");
          resp = http::Error(500, "cannot render the export: " + r.error, "format");
          return;
        }
        resp.content_type = r.content_type;
        resp.body = std::move(r.body);
        resp.headers.push_back({"Content-Disposition", report::ContentDisposition(r.filename)});
      }
    } catch (const pqxx::broken_connection&) {
      conn.MarkBroken();
      throw;
    }
  };
  try {
    compute();
  } catch (const PoolBusy&) {
    access_->CountFailure("analytics_pool_timeout");
    http::Response r =
        http::Error(503, "the analytics database connections are all busy; retry later", "");
    r.headers.push_back({"Retry-After", "1"});
    return access_->Finish(adm, std::move(r));
  } catch (const std::exception& e) {
    access_->CountFailure("analytics_query");
    spdlog::warn("analytics query failed: {}", ScrubPii(e.what()));
    http::Response r = http::Error(503, "analytics are unavailable right now; retry later", "");
    r.headers.push_back({"Retry-After", "5"});
    return access_->Finish(adm, std::move(r));
  }
  return access_->Finish(adm, std::move(resp));
}

}  // namespace

std::unique_ptr<http::Endpoint> NewAnalyticsRoute(PgPool* pool, AccessControl* access,
                                                  AnalyticsOptions options) {
  if (options.clock == nullptr) options.clock = &SystemClock::Get();
  return std::make_unique<AnalyticsRoute>(pool, access, std::move(options));
}

}  // namespace bpmc::analytics
