// GET /api/v1/analytics/connectors and connectors/{id} (docs/ANALYTICS.md).
#include <future>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "endpoints.h"

namespace bpmc::analytics::analytics_internal {
namespace {

// One connector's numbers for connectors and connectors/{id}.
struct ConnectorNumbers {
  int64_t subscriptions = 0;
  Usage total;
  std::vector<Usage> operations;                             // most used first
  std::vector<std::pair<std::string, int64_t>> error_types;  // most frequent first
  std::optional<std::vector<Usage>> series;                  // connectors/{id} only
};

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

// One connector's JSON; its tables (and chart, with a series) go to `report`.
json ConnectorDetail(const Connector& c, const ConnectorNumbers& n, Report* report) {
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

}  // namespace

Answer ConnectorsList(Fanout& q, const Scope& s, const std::string& only) {
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

}  // namespace bpmc::analytics::analytics_internal
