// The admin analytics API. Queries read the aggregate tables
// (0002_aggregates.sql) and the billing tables (0003_billing.sql); see
// docs/ANALYTICS.md for every field and formula.
#include "exporter/analytics.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include <cmath>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "exporter/access.h"
#include "exporter/report.h"
#include "exporter/rollup.h"

namespace bpmc::exporter {
namespace {

using nlohmann::json;

const char* Unit(Granularity g) {
  switch (g) {
    case Granularity::kHour: return "hour";
    case Granularity::kDay: return "day";
    case Granularity::kWeek: return "week";
    case Granularity::kMonth: return "month";
  }
  return "day";
}

// Every query starts with this CTE so that all eight parameters are typed and
// named: the rounded period as timestamps (f, t) and local dates (fd, td),
// the connector and customer filters (NULL = all), the time zone and unit.
constexpr const char* kParams =
    "WITH p AS (SELECT $1::timestamptz AS f, $2::timestamptz AS t, $3::date AS fd, "
    "$4::date AS td, $5::text AS c, $6::text AS cu, $7::text AS tz, $8::text AS unit) ";

struct Period {
  std::string f, t, fd, td;  // as PostgreSQL prints them
};

struct Scope {
  Period period;
  std::optional<std::string> connector;
  std::optional<std::string> customer;
  std::string tz;
  Granularity granularity;
};

pqxx::result Run(pqxx::work& txn, const Scope& s, const std::string& sql) {
  return txn.exec_params(kParams + sql, s.period.f, s.period.t, s.period.fd, s.period.td,
                         s.connector, s.customer, s.tz, std::string(Unit(s.granularity)));
}

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

// Aggregated usage grouped by `group` (an SQL expression over x, or "" for a
// single total row). Customer-scoped scopes read usage_by_customer_*.
std::vector<Usage> QueryUsage(pqxx::work& txn, const Scope& s, const std::string& group,
                              bool by_bucket = false) {
  const bool customer = s.customer.has_value();
  const Source src = SourceFor(customer ? "usage_by_customer" : "connector_usage",
                               s.granularity, !customer);
  const std::string key = by_bucket ? src.bucket : group.empty() ? "''" : group;
  std::string sql = "SELECT " + key +
                    ", coalesce(sum(x.operation_count), 0)::bigint"
                    ", coalesce(sum(x.error_count), 0)::bigint"
                    ", coalesce(round(hll_cardinality(hll_union_agg(x.users))), 0)::bigint"
                    ", coalesce(sum(x.duration_sum_ms), 0)::float8"
                    ", coalesce(sum(x.duration_count), 0)::bigint"
                    ", bpmc_buckets_quantile(bpmc_buckets_sum(x.duration_buckets), 0.95)"
                    " FROM " + src.table + " x, p WHERE " + src.where +
                    " AND (p.c IS NULL OR x.connector_id = p.c)";
  if (customer) sql += " AND x.customer_id = p.cu";
  if (by_bucket || !group.empty()) sql += " GROUP BY 1 ORDER BY 1";
  std::vector<Usage> out;
  for (const auto& row : Run(txn, s, sql)) {
    Usage u;
    u.key = row[0].as<std::string>();
    u.operations = row[1].as<int64_t>();
    u.errors = row[2].as<int64_t>();
    u.users = row[3].as<int64_t>();
    u.duration_sum = row[4].as<double>();
    u.duration_count = row[5].as<int64_t>();
    if (!row[6].is_null()) u.p95 = row[6].as<double>();
    out.push_back(u);
  }
  return out;
}

Usage Total(pqxx::work& txn, const Scope& s) {
  auto rows = QueryUsage(txn, s, "");
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

std::map<std::string, int64_t> ActiveSubscriptions(pqxx::work& txn, const Scope& s) {
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

// Succeeded payments in the period by currency (minor units).
std::map<std::string, int64_t> Revenue(pqxx::work& txn, const Scope& s) {
  std::map<std::string, int64_t> out;
  for (const auto& row : Run(txn, s,
                             "SELECT x.currency, sum(x.amount_minor)::bigint FROM payments x, p "
                             "WHERE x.status = 'succeeded' AND x.occurred_at >= p.f AND "
                             "x.occurred_at < p.t AND (p.c IS NULL OR x.connector_id = p.c) "
                             "AND (p.cu IS NULL OR x.customer_id = p.cu) GROUP BY 1"))
    out[row[0].as<std::string>()] = row[1].as<int64_t>();
  return out;
}

// Minor units to a decimal amount (two-decimal currencies, as RUB, USD, EUR).
double Major(int64_t minor) { return double(minor) / 100.0; }

struct Connector {
  std::string id, name;
};

std::vector<Connector> Connectors(pqxx::work& txn, const Scope& s) {
  std::vector<Connector> out;
  for (const auto& row : Run(txn, s,
                             "SELECT x.id, x.name FROM connectors x, p "
                             "WHERE p.c IS NULL OR x.id = p.c ORDER BY x.id"))
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
  return out;
}

// An endpoint's answer: the JSON document and the same numbers as a Report.
struct Answer {
  json body;
  Report report;
};

class AnalyticsRoute final : public Route {
 public:
  AnalyticsRoute(PgPool* pool, Rollup* rollup, AccessControl* access, AnalyticsOptions options)
      : pool_(pool), rollup_(rollup), access_(access), options_(std::move(options)) {}

  bool Matches(const std::string& path) const override {
    return path.rfind("/api/v1/analytics/", 0) == 0;
  }
  std::string Name() const override { return "analytics"; }

  HttpResponse Handle(const HttpRequest& req) override;

 private:
  Answer Overview(pqxx::work& txn, const Scope& s, bool with_revenue);
  Answer ConnectorsList(pqxx::work& txn, const Scope& s, const std::string& only);
  Answer Users(pqxx::work& txn, const Scope& s, bool pseudonymise);
  Answer Financial(pqxx::work& txn, const Scope& s);
  Answer Errors(pqxx::work& txn, const Scope& s);
  json ConnectorDetail(pqxx::work& txn, const Scope& s, const Connector& c, int64_t subscriptions,
                       Report* report, bool series);

  PgPool* pool_;
  Rollup* rollup_;
  AccessControl* access_;
  const AnalyticsOptions options_;
};

Answer AnalyticsRoute::Overview(pqxx::work& txn, const Scope& s, bool with_revenue) {
  Answer a;
  const Usage total = Total(txn, s);
  const auto subs = ActiveSubscriptions(txn, s);
  const auto per_connector = QueryUsage(txn, s, "x.connector_id");
  std::map<std::string, Usage> by_id;
  for (const Usage& u : per_connector) by_id[u.key] = u;

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
    const auto revenue = Revenue(txn, s);
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
  Table ct{"connectors", {"id", "name", "active_subscriptions", "operations_total", "error_rate"}, {}};
  b["connectors"] = json::array();
  for (const Connector& c : Connectors(txn, s)) {
    const Usage u = by_id.count(c.id) ? by_id[c.id] : Usage{};
    const int64_t n = subs.count(c.id) ? subs.at(c.id) : 0;
    b["connectors"].push_back({{"id", c.id},
                               {"name", c.name},
                               {"active_subscriptions", n},
                               {"operations_total", u.operations},
                               {"error_rate", u.ErrorRate()}});
    ct.rows.push_back({Str(c.id), Str(c.name), Num(n), Num(u.operations), Num(u.ErrorRate())});
  }
  const auto series = QueryUsage(txn, s, "", true);
  b["timeseries"] = SeriesJson(series);
  a.report.tables = {ct, SeriesTable("timeseries", series)};
  a.report.charts = {{"Операции по периодам", "timeseries", 0, {1, 2}, Chart::kLine}};
  return a;
}

json AnalyticsRoute::ConnectorDetail(pqxx::work& txn, const Scope& s0, const Connector& c,
                                     int64_t subscriptions, Report* report, bool series) {
  Scope s = s0;
  s.connector = c.id;
  const Usage total = Total(txn, s);
  json j = UsageJson(total);
  j["id"] = c.id;
  j["name"] = c.name;
  j["active_subscriptions"] = subscriptions;

  j["operations"] = json::array();
  j["errors_by_type"] = json::array();
  {
    const Source op = BreakdownSource(s, "usage_by_operation", "usage_by_customer_operation_daily");
    Table ot{"operations " + c.id, {"operation", "operations", "errors", "error_rate", "avg_ms", "p95_ms"}, {}};
    for (const auto& row : Run(txn, s,
                               "SELECT x.operation, sum(x.operation_count)::bigint, "
                               "sum(x.error_count)::bigint, coalesce(sum(x.duration_sum_ms), 0)::float8, "
                               "coalesce(sum(x.duration_count), 0)::bigint, "
                               "bpmc_buckets_quantile(bpmc_buckets_sum(x.duration_buckets), 0.95) "
                               "FROM " + op.table + " x, p WHERE " + op.where +
                               " AND x.connector_id = p.c GROUP BY 1 ORDER BY 2 DESC, 1")) {
      Usage u;
      u.key = row[0].as<std::string>();
      u.operations = row[1].as<int64_t>();
      u.errors = row[2].as<int64_t>();
      u.duration_sum = row[3].as<double>();
      u.duration_count = row[4].as<int64_t>();
      if (!row[5].is_null()) u.p95 = row[5].as<double>();
      json o = UsageJson(u);
      o.erase("unique_users");
      o["operation"] = u.key;
      o["share"] = total.operations ? double(u.operations) / double(total.operations) : 0.0;
      j["operations"].push_back(o);
      ot.rows.push_back({Str(u.key), Num(u.operations), Num(u.errors), Num(u.ErrorRate()),
                         Opt(u.AvgMs()), Opt(u.p95)});
    }
    const Source er = BreakdownSource(s, "usage_errors", "usage_errors_by_customer_daily");
    Table et{"errors " + c.id, {"error_type", "count", "share"}, {}};
    for (const auto& row : Run(txn, s,
                               "SELECT x.error_type, sum(x.error_count)::bigint FROM " + er.table +
                                   " x, p WHERE " + er.where +
                                   " AND x.connector_id = p.c GROUP BY 1 ORDER BY 2 DESC, 1")) {
      const int64_t n = row[1].as<int64_t>();
      const double share = total.errors ? double(n) / double(total.errors) : 0.0;
      j["errors_by_type"].push_back(
          {{"error_type", row[0].as<std::string>()}, {"count", n}, {"share", share}});
      et.rows.push_back({Str(row[0].as<std::string>()), Num(n), Num(share)});
    }
    if (report) {
      report->tables.push_back(ot);
      report->tables.push_back(et);
    }
  }
  if (series) {
    const auto ts = QueryUsage(txn, s, "", true);
    j["timeseries"] = SeriesJson(ts);
    if (report) {
      report->tables.push_back(SeriesTable("timeseries " + c.id, ts));
      report->charts.push_back({"Операции: " + c.name, "timeseries " + c.id, 0, {1, 2}, Chart::kLine});
    }
  }
  return j;
}

Answer AnalyticsRoute::ConnectorsList(pqxx::work& txn, const Scope& s, const std::string& only) {
  Answer a;
  const auto subs = ActiveSubscriptions(txn, s);
  Table summary{"connectors", {"id", "name", "active_subscriptions", "operations_total", "error_rate",
                               "unique_users", "avg_ms", "p95_ms"}, {}};
  json list = json::array();
  for (const Connector& c : Connectors(txn, s)) {
    if (!only.empty() && c.id != only) continue;
    const int64_t n = subs.count(c.id) ? subs.at(c.id) : 0;
    json j = ConnectorDetail(txn, s, c, n, &a.report, !only.empty());
    summary.rows.push_back({Str(c.id), Str(c.name), Num(n), Num(j["operations_total"].get<int64_t>()),
                            Num(j["error_rate"].get<double>()), Num(j["unique_users"].get<int64_t>()),
                            j["avg_response_time_ms"].is_null() ? Cell{} : Num(j["avg_response_time_ms"].get<double>()),
                            j["p95_response_time_ms"].is_null() ? Cell{} : Num(j["p95_response_time_ms"].get<double>())});
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

Answer AnalyticsRoute::Users(pqxx::work& txn, const Scope& s, bool pseudonymise) {
  Answer a;
  json& b = a.body;
  a.report.title = "Статистика пользователей";
  const Usage total = Total(txn, s);
  const auto active = QueryUsage(txn, s, "", true);
  b["active_users"] = total.users;

  // New users: Make accounts first seen in the period, by bucket.
  json new_users = json::array();
  int64_t new_total = 0;
  Table nt{"new_users", {"bucket", "new_users"}, {}};
  const std::string fmt = s.granularity == Granularity::kHour ? "YYYY-MM-DD\"T\"HH24:MI:SS" : "YYYY-MM-DD";
  for (const auto& row : Run(txn, s,
                             "SELECT to_char(date_trunc(p.unit, x.first_seen AT TIME ZONE p.tz), '" +
                                 fmt + "'), count(*) FROM account_first_seen x, p "
                                 "WHERE x.first_seen >= p.f AND x.first_seen < p.t "
                                 "AND (p.c IS NULL OR x.connector_id = p.c) "
                                 "AND (p.cu IS NULL OR x.customer_id = p.cu) GROUP BY 1 ORDER BY 1")) {
    const int64_t n = row[1].as<int64_t>();
    new_total += n;
    new_users.push_back({{"bucket", row[0].as<std::string>()}, {"new_users", n}});
    nt.rows.push_back({Str(row[0].as<std::string>()), Num(n)});
  }
  b["new_users_total"] = new_total;

  json series = json::array();
  Table at{"active_users", {"bucket", "active_users"}, {}};
  for (const Usage& u : active) {
    series.push_back({{"bucket", u.key}, {"active_users", u.users}});
    at.rows.push_back({Str(u.key), Num(u.users)});
  }
  b["active_users_series"] = series;
  b["new_users"] = new_users;

  // Trial conversion: trials started in the period that became paid.
  // Churn: subscriptions cancelled in the period / (active at its start + started in it).
  const auto subs = Run(txn, s,
                        "SELECT count(*) FILTER (WHERE x.trial AND x.started_at >= p.f AND x.started_at < p.t),"
                        " count(*) FILTER (WHERE x.trial AND x.started_at >= p.f AND x.started_at < p.t"
                        "   AND x.trial_converted_at IS NOT NULL),"
                        " count(*) FILTER (WHERE x.started_at < p.f AND (x.cancelled_at IS NULL OR x.cancelled_at >= p.f)),"
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
  b["churn"] = {{"active_at_start", at_start},
                {"started", started},
                {"cancelled", cancelled},
                {"rate", at_start + started ? double(cancelled) / double(at_start + started) : 0.0}};

  // Activity distribution: Make accounts by their operations in the period.
  json dist = json::array();
  Table dt{"activity_distribution", {"operations", "accounts"}, {}};
  for (const auto& row : Run(txn, s,
                             "SELECT bin, count(*) FROM (SELECT CASE WHEN n <= 1 THEN '1' "
                             "WHEN n <= 10 THEN '2-10' WHEN n <= 100 THEN '11-100' "
                             "WHEN n <= 1000 THEN '101-1000' ELSE '>1000' END AS bin, "
                             "CASE WHEN n <= 1 THEN 1 WHEN n <= 10 THEN 2 WHEN n <= 100 THEN 3 "
                             "WHEN n <= 1000 THEN 4 ELSE 5 END AS ord FROM ("
                             "SELECT sum(x.operation_count) AS n FROM account_activity_daily x, p "
                             "WHERE x.day >= p.fd AND x.day < p.td AND (p.c IS NULL OR x.connector_id = p.c) "
                             "AND (p.cu IS NULL OR x.customer_id = p.cu) GROUP BY x.make_account_id) a) b "
                             "GROUP BY bin, ord ORDER BY ord")) {
    dist.push_back({{"operations", row[0].as<std::string>()}, {"accounts", row[1].as<int64_t>()}});
    dt.rows.push_back({Str(row[0].as<std::string>()), Num(row[1].as<int64_t>())});
  }
  b["activity_distribution"] = dist;

  // The most active accounts; identities are pseudonyms for managers.
  json top = json::array();
  Table tt{"top_accounts", {"make_account_id", "customer", "operations"}, {}};
  for (const auto& row : Run(txn, s,
                             "SELECT x.make_account_id, x.customer_id, sum(x.operation_count)::bigint "
                             "FROM account_activity_daily x, p WHERE x.day >= p.fd AND x.day < p.td "
                             "AND (p.c IS NULL OR x.connector_id = p.c) AND (p.cu IS NULL OR x.customer_id = p.cu) "
                             "GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 10")) {
    std::string account = row[0].as<std::string>(), customer = row[1].as<std::string>();
    if (pseudonymise) {
      account = access_->AccountPseudonym(account);
      customer = access_->Pseudonym(customer);
    }
    top.push_back({{"make_account_id", account}, {"customer", customer}, {"operations", row[2].as<int64_t>()}});
    tt.rows.push_back({Str(account), Str(customer), Num(row[2].as<int64_t>())});
  }
  b["top_accounts"] = top;
  a.report.summary = {{"active_users", Num(total.users)},
                      {"new_users", Num(new_total)},
                      {"trial_conversion_rate", Num(b["trial_conversion"]["rate"].get<double>())},
                      {"churn_rate", Num(b["churn"]["rate"].get<double>())}};
  a.report.tables = {at, nt, dt, tt};
  a.report.charts = {{"Активные пользователи", "active_users", 0, {1}, Chart::kLine},
                     {"Распределение активности", "activity_distribution", 0, {1}, Chart::kBar}};
  return a;
}

Answer AnalyticsRoute::Financial(pqxx::work& txn, const Scope& s) {
  Answer a;
  json& b = a.body;
  a.report.title = "Финансовая статистика";
  const std::string cur = options_.currency;
  const auto revenue = Revenue(txn, s);
  const int64_t minor = revenue.count(cur) ? revenue.at(cur) : 0;
  b["currency"] = cur;
  b["revenue"] = Major(minor);
  b["revenue_minor"] = minor;
  b["revenue_by_currency"] = json::object();
  for (const auto& [c, v] : revenue) b["revenue_by_currency"][c] = Major(v);

  const std::string fmt = s.granularity == Granularity::kHour ? "YYYY-MM-DD\"T\"HH24:MI:SS" : "YYYY-MM-DD";
  json series = json::array();
  Table rt{"revenue", {"bucket", "currency", "revenue"}, {}};
  for (const auto& row : Run(txn, s,
                             "SELECT to_char(date_trunc(p.unit, x.occurred_at AT TIME ZONE p.tz), '" + fmt +
                                 "'), x.currency, sum(x.amount_minor)::bigint FROM payments x, p "
                                 "WHERE x.status = 'succeeded' AND x.occurred_at >= p.f AND x.occurred_at < p.t "
                                 "AND (p.c IS NULL OR x.connector_id = p.c) AND (p.cu IS NULL OR x.customer_id = p.cu) "
                                 "GROUP BY 1, 2 ORDER BY 1, 2")) {
    const int64_t v = row[2].as<int64_t>();
    series.push_back({{"bucket", row[0].as<std::string>()}, {"currency", row[1].as<std::string>()},
                      {"revenue", Major(v)}, {"revenue_minor", v}});
    rt.rows.push_back({Str(row[0].as<std::string>()), Str(row[1].as<std::string>()), Num(Major(v))});
  }
  b["revenue_series"] = series;

  json by_connector = json::array();
  Table ct{"revenue_by_connector", {"connector", "currency", "revenue", "payments"}, {}};
  for (const auto& row : Run(txn, s,
                             "SELECT x.connector_id, x.currency, sum(x.amount_minor)::bigint, count(*) "
                             "FROM payments x, p WHERE x.status = 'succeeded' AND x.occurred_at >= p.f "
                             "AND x.occurred_at < p.t AND (p.c IS NULL OR x.connector_id = p.c) "
                             "AND (p.cu IS NULL OR x.customer_id = p.cu) GROUP BY 1, 2 ORDER BY 3 DESC, 1")) {
    const int64_t v = row[2].as<int64_t>();
    by_connector.push_back({{"connector", row[0].as<std::string>()}, {"currency", row[1].as<std::string>()},
                            {"revenue", Major(v)}, {"revenue_minor", v}, {"payments", row[3].as<int64_t>()}});
    ct.rows.push_back({Str(row[0].as<std::string>()), Str(row[1].as<std::string>()), Num(Major(v)),
                       Num(row[3].as<int64_t>())});
  }
  b["revenue_by_connector"] = by_connector;

  // ARPU = revenue (reporting currency) / customers with a succeeded payment
  // in the period. LTV = (ARPU per 30 days) / (monthly churn rate), where the
  // monthly churn rate is the period's churn rate scaled to 30 days; null
  // when nobody churned (the estimate is unbounded).
  const auto paying = Run(txn, s,
                          "SELECT count(DISTINCT x.customer_id), extract(epoch FROM max(p.t) - max(p.f)) / 86400.0 "
                          "FROM p LEFT JOIN payments x ON x.status = 'succeeded' AND x.occurred_at >= p.f "
                          "AND x.occurred_at < p.t AND (p.c IS NULL OR x.connector_id = p.c) "
                          "AND (p.cu IS NULL OR x.customer_id = p.cu)")[0];
  const int64_t customers = paying[0].as<int64_t>();
  const double days = paying[1].as<double>();
  const double arpu = customers ? Major(minor) / double(customers) : 0.0;
  const auto churn = Run(txn, s,
                         "SELECT count(*) FILTER (WHERE x.started_at < p.f AND (x.cancelled_at IS NULL OR x.cancelled_at >= p.f))"
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
  for (const auto& row : Run(txn, s,
                             "SELECT coalesce(x.failure_reason, 'unknown'), count(*), sum(x.amount_minor)::bigint "
                             "FROM payments x, p WHERE x.status = 'failed' AND x.occurred_at >= p.f "
                             "AND x.occurred_at < p.t AND (p.c IS NULL OR x.connector_id = p.c) "
                             "AND (p.cu IS NULL OR x.customer_id = p.cu) GROUP BY 1 ORDER BY 2 DESC, 1")) {
    const int64_t n = row[1].as<int64_t>(), amount = row[2].as<int64_t>();
    failed_count += n;
    failed_minor += amount;
    failed.push_back({{"reason", row[0].as<std::string>()}, {"count", n}, {"amount_minor", amount}});
    ft.rows.push_back({Str(row[0].as<std::string>()), Num(n), Num(Major(amount))});
  }
  const auto all_payments = Run(txn, s,
                                "SELECT count(*) FROM payments x, p WHERE x.occurred_at >= p.f "
                                "AND x.occurred_at < p.t AND (p.c IS NULL OR x.connector_id = p.c) "
                                "AND (p.cu IS NULL OR x.customer_id = p.cu)")[0][0].as<int64_t>();
  b["failed_payments"] = {{"count", failed_count},
                          {"amount_minor", failed_minor},
                          {"ratio", all_payments ? double(failed_count) / double(all_payments) : 0.0},
                          {"by_reason", failed}};
  a.report.summary = {{"revenue " + cur, Num(Major(minor))}, {"ARPU", Num(arpu)},
                      {"LTV", b["ltv"].is_null() ? Cell{} : Num(b["ltv"].get<double>())},
                      {"failed_payments", Num(failed_count)}};
  a.report.tables = {rt, ct, ft};
  a.report.charts = {{"Доход по периодам", "revenue", 0, {2}, Chart::kBar}};
  return a;
}

Answer AnalyticsRoute::Errors(pqxx::work& txn, const Scope& s) {
  Answer a;
  json& b = a.body;
  a.report.title = "Статистика ошибок";
  const Usage total = Total(txn, s);
  b["errors_total"] = total.errors;
  b["operations_total"] = total.operations;
  b["error_rate"] = total.ErrorRate();
  const auto series = QueryUsage(txn, s, "", true);
  json js = json::array();
  Table st{"errors_by_period", {"bucket", "errors", "error_rate"}, {}};
  for (const Usage& u : series) {
    js.push_back({{"bucket", u.key}, {"errors", u.errors}, {"error_rate", u.ErrorRate()}});
    st.rows.push_back({Str(u.key), Num(u.errors), Num(u.ErrorRate())});
  }
  b["errors_by_period"] = js;

  json by_connector = json::array();
  Table ct{"errors_by_connector", {"connector", "errors", "error_rate"}, {}};
  for (const Usage& u : QueryUsage(txn, s, "x.connector_id")) {
    by_connector.push_back({{"connector", u.key}, {"errors", u.errors}, {"error_rate", u.ErrorRate()}});
    ct.rows.push_back({Str(u.key), Num(u.errors), Num(u.ErrorRate())});
  }
  b["errors_by_connector"] = by_connector;

  json by_type = json::array(), top = json::array();
  Table tt{"errors_by_type", {"error_type", "errors"}, {}};
  Table mt{"most_frequent_errors", {"connector", "operation", "error_type", "errors", "last_message"}, {}};
  {
    const Source er = BreakdownSource(s, "usage_errors", "usage_errors_by_customer_daily");
    for (const auto& row : Run(txn, s,
                               "SELECT x.error_type, sum(x.error_count)::bigint FROM " + er.table +
                                   " x, p WHERE " + er.where +
                                   " AND (p.c IS NULL OR x.connector_id = p.c) GROUP BY 1 ORDER BY 2 DESC, 1")) {
      by_type.push_back({{"error_type", row[0].as<std::string>()}, {"errors", row[1].as<int64_t>()}});
      tt.rows.push_back({Str(row[0].as<std::string>()), Num(row[1].as<int64_t>())});
    }
    for (const auto& row : Run(txn, s,
                               "SELECT x.connector_id, x.operation, x.error_type, sum(x.error_count)::bigint, "
                               "(array_agg(x.last_message ORDER BY " + er.time_col + " DESC) "
                               "FILTER (WHERE x.last_message IS NOT NULL))[1] FROM " + er.table +
                                   " x, p WHERE " + er.where +
                                   " AND (p.c IS NULL OR x.connector_id = p.c) GROUP BY 1, 2, 3 "
                                   "ORDER BY 4 DESC, 1, 2, 3 LIMIT 10")) {
      const std::string message = row[4].is_null() ? "" : ScrubPii(row[4].as<std::string>());
      top.push_back({{"connector", row[0].as<std::string>()}, {"operation", row[1].as<std::string>()},
                     {"error_type", row[2].as<std::string>()}, {"errors", row[3].as<int64_t>()},
                     {"last_message", message}});
      mt.rows.push_back({Str(row[0].as<std::string>()), Str(row[1].as<std::string>()),
                         Str(row[2].as<std::string>()), Num(row[3].as<int64_t>()), Str(message)});
    }
  }
  b["errors_by_type"] = by_type;
  b["most_frequent_errors"] = top;

  // Trend: this period against the one of the same length just before it.
  Scope prev = s;
  const auto shifted = Run(txn, s,
                           "SELECT p.f - (p.t - p.f), p.f, "
                           "((p.f - (p.t - p.f)) AT TIME ZONE p.tz)::date, p.fd FROM p")[0];
  prev.period = {shifted[0].as<std::string>(), shifted[1].as<std::string>(),
                 shifted[2].as<std::string>(), shifted[3].as<std::string>()};
  const Usage before = Total(txn, prev);
  b["trend"] = {{"previous_errors_total", before.errors},
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
SELECT f, t, (f AT TIME ZONE $3)::date, (t AT TIME ZONE $3)::date,
       to_char(f AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM r)sql";

enum class Endpoint { kOverview, kConnectors, kConnector, kUsers, kFinancial, kErrors };

HttpResponse AnalyticsRoute::Handle(const HttpRequest& req) {
  const std::string rest = req.path.substr(std::string("/api/v1/analytics/").size());
  Endpoint endpoint;
  std::string connector_id;
  if (rest == "overview") {
    endpoint = Endpoint::kOverview;
  } else if (rest == "connectors") {
    endpoint = Endpoint::kConnectors;
  } else if (rest.rfind("connectors/", 0) == 0 && rest.size() > 11 &&
             rest.find('/', 11) == std::string::npos) {
    endpoint = Endpoint::kConnector;
    connector_id = rest.substr(11);
  } else if (rest == "users") {
    endpoint = Endpoint::kUsers;
  } else if (rest == "financial") {
    endpoint = Endpoint::kFinancial;
  } else if (rest == "errors") {
    endpoint = Endpoint::kErrors;
  } else {
    return JsonError(404, "no such analytics endpoint", "");
  }
  if (req.method != "GET") {
    HttpResponse r = JsonError(405, "method not allowed", "");
    r.headers.push_back({"Allow", "GET"});
    return r;
  }

  const auto params = ParseQuery(req.query);
  auto parsed = ParseAnalyticsQuery(params, SystemClock::Get().NowMicros(), options_.default_days);
  AnalyticsQuery q;
  if (auto* ok = std::get_if<AnalyticsQuery>(&parsed)) q = *ok;
  const std::string requested_customer =
      params.count("customer") ? params.at("customer") : std::string();

  DataKind kind = requested_customer.empty() ? DataKind::kAggregate : DataKind::kCustomerUsage;
  if (endpoint == Endpoint::kUsers) kind = DataKind::kUserStats;
  if (endpoint == Endpoint::kFinancial) kind = DataKind::kFinancial;

  AccessControl::Admission adm = access_->Admit(req, kind, requested_customer);
  if (!adm.admitted) return adm.response;
  if (auto* err = std::get_if<RequestError>(&parsed))
    return access_->Finish(adm, JsonError(err->http_status, err->message, err->field));
  auto format = ChooseFormat(params.count("format") ? params.at("format") : "",
                             req.Header("accept"));
  if (auto* err = std::get_if<RequestError>(&format))
    return access_->Finish(adm, JsonError(err->http_status, err->message, err->field));
  if (!adm.decision.forced_customer.empty()) q.customer = adm.decision.forced_customer;
  const bool with_revenue =
      Decide(adm.principal, AccessRequest{DataKind::kFinancial, q.customer,
                                          !req.Header("x-access-reason").empty()})
          .allowed;

  // The pool lease ends before Finish(), which needs a connection of its own
  // for the audit row: holding both could exhaust the pool.
  HttpResponse resp;
  auto compute = [&] {
    if (rollup_) {
      // Fresh numbers: fold the not-yet-aggregated tail in first. On failure
      // the aggregates are served as they are (and the failure counted).
      const RollupResult caught = rollup_->CatchUp();
      if (!caught.ok) access_->CountFailure("analytics_catch_up");
    }
    PgPool::Lease conn = pool_->Acquire();
    try {
      pqxx::work txn(*conn);
      const auto pr = txn.exec_params(kPeriodSql, q.from, q.to, options_.time_zone,
                                      std::string(Unit(q.granularity)))[0];
      Scope s;
      s.period = {pr[0].as<std::string>(), pr[1].as<std::string>(), pr[2].as<std::string>(),
                  pr[3].as<std::string>()};
      s.tz = options_.time_zone;
      s.granularity = q.granularity;
      if (!q.connector.empty()) s.connector = q.connector;
      if (!connector_id.empty()) s.connector = connector_id;
      if (!q.customer.empty()) s.customer = q.customer;
      if (s.connector && Connectors(txn, s).empty()) {
        resp = endpoint == Endpoint::kConnector ? JsonError(404, "no such connector", "id")
                                                : JsonError(400, "unknown connector", "connector");
        return;
      }
      Answer a;
      switch (endpoint) {
        case Endpoint::kOverview: a = Overview(txn, s, with_revenue); break;
        case Endpoint::kConnectors: a = ConnectorsList(txn, s, ""); break;
        case Endpoint::kConnector: a = ConnectorsList(txn, s, connector_id); break;
        case Endpoint::kUsers: a = Users(txn, s, adm.decision.pseudonymise_ids); break;
        case Endpoint::kFinancial: a = Financial(txn, s); break;
        case Endpoint::kErrors: a = Errors(txn, s); break;
      }
      txn.commit();
      const std::string from = pr[4].as<std::string>(), to = pr[5].as<std::string>();
      a.body["period"] = {{"from", from},
                          {"to", to},
                          {"granularity", Unit(q.granularity)},
                          {"time_zone", options_.time_zone}};
      if (s.customer)
        a.body["customer"] = adm.decision.pseudonymise_ids ? access_->Pseudonym(*s.customer)
                                                           : *s.customer;
      a.report.period = from + " — " + to + " (" + options_.time_zone + ")";
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
          resp = JsonError(500, "cannot render the export: " + r.error, "format");
          return;
        }
        resp.content_type = r.content_type;
        resp.body = std::move(r.body);
        resp.headers.push_back({"Content-Disposition", ContentDisposition(r.filename)});
      }
    } catch (const pqxx::broken_connection&) {
      conn.MarkBroken();
      throw;
    }
  };
  try {
    compute();
  } catch (const std::exception& e) {
    access_->CountFailure("analytics_query");
    spdlog::warn("analytics query failed: {}", ScrubPii(e.what()));
    HttpResponse r = JsonError(503, "analytics are unavailable right now; retry later", "");
    r.headers.push_back({"Retry-After", "5"});
    return access_->Finish(adm, std::move(r));
  }
  return access_->Finish(adm, std::move(resp));
}

}  // namespace

std::unique_ptr<Route> NewAnalyticsRoute(PgPool* pool, Rollup* rollup, AccessControl* access,
                                         AnalyticsOptions options) {
  return std::make_unique<AnalyticsRoute>(pool, rollup, access, std::move(options));
}

}  // namespace bpmc::exporter
