#include <cctype>

#include "common/time_format.h"
#include "exporter/analytics.h"

namespace bpmc::exporter {
namespace {

constexpr int64_t kMicrosPerDay = 86'400'000'000LL;

bool IsDate(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  // Reuse the strict RFC 3339 checks (month, day of month) on midnight UTC.
  return ParseRfc3339Micros(s + "T00:00:00Z").has_value();
}

// Microseconds of a bound, dates taken at UTC midnight (only for range checks;
// the database applies the reporting time zone).
std::optional<int64_t> BoundMicros(const std::string& s) {
  if (IsDate(s)) return ParseRfc3339Micros(s + "T00:00:00Z");
  return ParseRfc3339Micros(s);
}

}  // namespace

std::variant<AnalyticsQuery, RequestError> ParseAnalyticsQuery(
    const std::map<std::string, std::string>& params, int64_t now_us, int default_days) {
  static const char* kKnown[] = {"from", "to", "granularity", "connector", "customer", "format"};
  for (const auto& [key, value] : params) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) return RequestError{400, "unknown parameter", key};
  }
  AnalyticsQuery q;
  auto get = [&](const char* key) {
    auto it = params.find(key);
    return it == params.end() ? std::string() : it->second;
  };
  q.from = get("from");
  q.to = get("to");
  std::optional<int64_t> to_us = now_us, from_us;
  if (!q.to.empty() && !(to_us = BoundMicros(q.to)))
    return RequestError{400, "to must be an RFC 3339 timestamp or YYYY-MM-DD", "to"};
  if (q.to.empty()) q.to = FormatRfc3339Micros(now_us);
  if (q.from.empty()) {
    from_us = *to_us - default_days * kMicrosPerDay;
    q.from = FormatRfc3339Micros(*from_us);
  } else if (!(from_us = BoundMicros(q.from))) {
    return RequestError{400, "from must be an RFC 3339 timestamp or YYYY-MM-DD", "from"};
  }
  if (*from_us >= *to_us) return RequestError{400, "from must be before to", "from"};
  if (*to_us - *from_us > 3660 * kMicrosPerDay)
    return RequestError{400, "the period may span at most 3660 days", "from"};

  const std::string g = get("granularity");
  if (g.empty() || g == "day") {
    q.granularity = Granularity::kDay;
  } else if (g == "hour") {
    q.granularity = Granularity::kHour;
    if (*to_us - *from_us > 31 * kMicrosPerDay)
      return RequestError{400, "hour granularity allows at most 31 days", "granularity"};
  } else if (g == "week") {
    q.granularity = Granularity::kWeek;
  } else if (g == "month") {
    q.granularity = Granularity::kMonth;
  } else {
    return RequestError{400, "granularity must be hour, day, week or month", "granularity"};
  }
  q.connector = get("connector");
  if (q.connector.size() > kMaxConnectorChars)
    return RequestError{400, "connector is longer than 50 characters", "connector"};
  q.customer = get("customer");
  if (q.customer.size() > 100)
    return RequestError{400, "customer is longer than 100 characters", "customer"};
  return q;
}

}  // namespace bpmc::exporter
