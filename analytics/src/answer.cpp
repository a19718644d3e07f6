// Formatting of usage numbers for the analytics answers (answer.h).
#include "answer.h"

namespace bpmc::analytics::analytics_internal {

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

Table SeriesTable(const std::string& name, const std::vector<Usage>& series) {
  Table t{name,
          {"bucket", "operations", "errors", "error_rate", "unique_users", "avg_ms", "p95_ms"},
          {}};
  for (const Usage& u : series)
    t.rows.push_back({Str(u.key), Num(u.operations), Num(u.errors), Num(u.ErrorRate()),
                      Num(u.users), Opt(u.AvgMs()), Opt(u.p95)});
  return t;
}

}  // namespace bpmc::analytics::analytics_internal
