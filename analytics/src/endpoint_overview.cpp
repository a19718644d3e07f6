// GET /api/v1/analytics/overview (docs/ANALYTICS.md).
#include <future>
#include <map>
#include <string>

#include "endpoints.h"

namespace bpmc::analytics::analytics_internal {

Answer Overview(Fanout& q, const Scope& s, bool with_revenue, const std::string& currency) {
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
    const auto it = revenue.find(currency);
    const int64_t minor = it == revenue.end() ? 0 : it->second;
    b["revenue"] = Major(minor);
    b["revenue_minor"] = minor;
    b["currency"] = currency;
    b["revenue_by_currency"] = json::object();
    for (const auto& [cur, v] : revenue) b["revenue_by_currency"][cur] = Major(v);
    a.report.summary.push_back({"revenue " + currency, Num(Major(minor))});
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

}  // namespace bpmc::analytics::analytics_internal
