// The request scope of the analytics queries and the tables they read
// (query_scope.h).
#include "query_scope.h"

#include <sstream>
#include <stdexcept>

namespace bpmc::analytics::analytics_internal {

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

Source BreakdownSource(const Scope& s, const std::string& base, const std::string& customer_table) {
  if (!s.customer) return SourceFor(base, s.granularity, false);
  return {customer_table,
          "x.customer_id = p.cu AND x.day >= p.fd AND x.day < CASE WHEN "
          "(p.t AT TIME ZONE p.tz)::time <> '00:00' THEN p.td + 1 ELSE p.td END",
          "to_char(x.day, 'YYYY-MM-DD')", "x.day"};
}

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

std::optional<double> P95(const Scope& s, const pqxx::field& buckets) {
  if (buckets.is_null()) return std::nullopt;
  const auto parsed = ParseBigintArray(buckets.as<std::string>());
  if (!parsed) throw std::runtime_error("malformed duration histogram");
  return BucketsQuantile(*parsed, s.bounds, 95, 100);
}

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

}  // namespace bpmc::analytics::analytics_internal
