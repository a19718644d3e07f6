// GET /api/v1/analytics/errors (docs/ANALYTICS.md).
#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "endpoints.h"

namespace bpmc::analytics::analytics_internal {
namespace {

// Errors of one (connector, operation, error type) in a period.
struct ErrorGroup {
  std::string connector, operation, type;
  int64_t errors = 0;
};

// (connector, operation, error type) -> the last message of that group.
using LastMessages = std::map<std::tuple<std::string, std::string, std::string>, std::string>;

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

// The scope of the previous period, of the same length just before this one (trend).
Scope PreviousScope(Txn& txn, const Scope& s) {
  Scope prev = s;
  const auto shifted = Run(txn, s,
                           "SELECT p.f - (p.t - p.f), p.f, "
                           "((p.f - (p.t - p.f)) AT TIME ZONE p.tz)::date, p.fd FROM p")[0];
  prev.period = {shifted[0].as<std::string>(), shifted[1].as<std::string>(),
                 shifted[2].as<std::string>(), shifted[3].as<std::string>()};
  return prev;
}

// One grouped pass over the errors of `er` by connector, operation and type.
std::vector<ErrorGroup> QueryErrorGroups(Txn& txn, const Scope& s, const Source& er) {
  std::vector<ErrorGroup> groups;
  for (const auto& row : Run(txn, s,
                             "SELECT x.connector_id, x.operation, x.error_type, "
                             "sum(x.error_count)::bigint FROM " +
                                 er.table + " x, p WHERE " + er.where +
                                 " AND (p.c IS NULL OR x.connector_id = p.c) "
                                 "GROUP BY 1, 2, 3"))
    groups.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                      row[3].as<int64_t>()});
  return groups;
}

// The last message of each of `groups` from its newest bucket of `er` (a key
// lookup per group), passed through ScrubPii; groups without one are absent.
LastMessages QueryLastMessages(Txn& txn, const Scope& s, const Source& er,
                               const std::vector<ErrorGroup>& groups) {
  json keys = json::array();
  for (const ErrorGroup& g : groups)
    keys.push_back({{"c", g.connector}, {"o", g.operation}, {"t", g.type}});
  const auto messages =
      Run(txn, s,
          ", k AS (SELECT * FROM jsonb_to_recordset($9::jsonb) AS k(c text, o text, t "
          "text)) "
          "SELECT k.c, k.o, k.t, (SELECT x.last_message FROM " +
              er.table + " x WHERE " + er.where +
              " AND x.connector_id = k.c AND x.operation = k.o AND x.error_type = k.t "
              "AND x.last_message IS NOT NULL ORDER BY " +
              er.time_col + " DESC LIMIT 1) FROM k, p",
          keys.dump());
  LastMessages last;
  for (const auto& row : messages)
    if (!row[3].is_null())
      last[{row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()}] =
          ScrubPii(row[3].as<std::string>());
  return last;
}

// "errors_total", "operations_total" and "error_rate" of `total`.
void AddTotals(const Usage& total, json& b) {
  b["errors_total"] = total.errors;
  b["operations_total"] = total.operations;
  b["error_rate"] = total.ErrorRate();
}

// "errors_by_period"; returns its table.
Table AddErrorsByPeriod(const std::vector<Usage>& series, json& b) {
  json js = json::array();
  Table st{"errors_by_period", {"bucket", "errors", "error_rate"}, {}};
  for (const Usage& u : series) {
    js.push_back({{"bucket", u.key}, {"errors", u.errors}, {"error_rate", u.ErrorRate()}});
    st.rows.push_back({Str(u.key), Num(u.errors), Num(u.ErrorRate())});
  }
  b["errors_by_period"] = js;
  return st;
}

// "errors_by_connector"; returns its table.
Table AddErrorsByConnector(const std::vector<Usage>& by_connector_usage, json& b) {
  json by_connector = json::array();
  Table ct{"errors_by_connector", {"connector", "errors", "error_rate"}, {}};
  for (const Usage& u : by_connector_usage) {
    by_connector.push_back(
        {{"connector", u.key}, {"errors", u.errors}, {"error_rate", u.ErrorRate()}});
    ct.rows.push_back({Str(u.key), Num(u.errors), Num(u.ErrorRate())});
  }
  b["errors_by_connector"] = by_connector;
  return ct;
}

// "errors_by_type", the totals of `groups` by type; returns its table.
Table AddErrorsByType(const std::vector<ErrorGroup>& groups, json& b) {
  json by_type = json::array();
  Table tt{"errors_by_type", {"error_type", "errors"}, {}};
  std::map<std::string, int64_t> types;
  for (const ErrorGroup& g : groups) types[g.type] += g.errors;
  for (const auto& [type, n] : MostFrequent(types)) {
    by_type.push_back({{"error_type", type}, {"errors", n}});
    tt.rows.push_back({Str(type), Num(n)});
  }
  b["errors_by_type"] = by_type;
  return tt;
}

// "most_frequent_errors": `top` with their last messages (null when
// `hide_messages`, "" when there is none); returns its table.
Table AddMostFrequentErrors(const std::vector<ErrorGroup>& top, const LastMessages& last,
                            bool hide_messages, json& b) {
  json out = json::array();
  Table mt{"most_frequent_errors",
           {"connector", "operation", "error_type", "errors", "last_message"},
           {}};
  for (const ErrorGroup& g : top) {
    const auto it = last.find({g.connector, g.operation, g.type});
    const std::string message = it == last.end() ? "" : it->second;
    out.push_back({{"connector", g.connector},
                   {"operation", g.operation},
                   {"error_type", g.type},
                   {"errors", g.errors},
                   {"last_message", hide_messages ? json(nullptr) : json(message)}});
    mt.rows.push_back(
        {Str(g.connector), Str(g.operation), Str(g.type), Num(g.errors), Str(message)});
  }
  b["most_frequent_errors"] = out;
  return mt;
}

// "trend": this period against the one of the same length just before it.
void AddTrend(const Usage& total, const Usage& before, json& b) {
  b["trend"] = {
      {"previous_errors_total", before.errors},
      {"previous_error_rate", before.ErrorRate()},
      {"change", before.errors ? json(double(total.errors - before.errors) / double(before.errors))
                               : json(nullptr)}};
}

}  // namespace

Answer Errors(Fanout& q, const Scope& s, bool hide_messages) {
  Answer a;
  json& b = a.body;
  a.report.title = "Статистика ошибок";
  Txn& txn = q.main();
  const Scope prev = PreviousScope(txn, s);
  // One grouped pass over the errors by connector, operation and type (the
  // totals by type and the ten most frequent come from it), then the last
  // message of each of those ten from its newest bucket (a key lookup).
  const Source er = BreakdownSource(s, "usage_errors", "usage_errors_by_customer_daily");
  auto groups_q = q.Run([&](Txn& t) { return QueryErrorGroups(t, s, er); });
  auto total_q = q.Run([&](Txn& t) { return Total(t, s, kCountsOnly); });
  auto series_q = q.Run([&](Txn& t) { return QueryUsage(t, s, "", true, kCountsOnly); });
  auto by_connector_q =
      q.Run([&](Txn& t) { return QueryUsage(t, s, "x.connector_id", false, kCountsOnly); });
  auto before_q = q.Run([&](Txn& t) { return Total(t, prev, kCountsOnly); });

  const Usage total = total_q.get();
  AddTotals(total, b);
  const Table st = AddErrorsByPeriod(series_q.get(), b);
  const Table ct = AddErrorsByConnector(by_connector_q.get(), b);

  std::vector<ErrorGroup> groups = groups_q.get();
  const Table tt = AddErrorsByType(groups, b);
  const std::vector<ErrorGroup> ten = TopErrorGroups(std::move(groups), 10);
  // A message is an event's free text: ScrubPii takes out e-mails and phones, but
  // customer and Make account ids cannot be told from other words, so views
  // with pseudonyms show no message at all (docs/ANALYTICS.md).
  const LastMessages last = hide_messages ? LastMessages{} : QueryLastMessages(txn, s, er, ten);
  const Table mt = AddMostFrequentErrors(ten, last, hide_messages, b);

  const Usage before = before_q.get();
  AddTrend(total, before, b);
  a.report.summary = {{"errors_total", Num(total.errors)},
                      {"error_rate", Num(total.ErrorRate())},
                      {"previous_errors_total", Num(before.errors)}};
  a.report.tables = {st, ct, tt, mt};
  a.report.charts = {{"Ошибки по периодам", "errors_by_period", 0, {1}, Chart::kBar}};
  return a;
}

}  // namespace bpmc::analytics::analytics_internal
