#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <tuple>

#include "analytics/analytics.h"
#include "common/ids.h"
#include "common/time.h"
#include "common/time_format.h"

namespace bpmc::analytics {
namespace {

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

// Labels of the activity distribution's bins (operations per account).
constexpr const char* kActivityBins[] = {"1", "2-10", "11-100", "101-1000", ">1000"};
constexpr size_t kBinCount = std::size(kActivityBins);

// (label, accounts) of the bins with accounts, in kActivityBins order.
std::vector<std::pair<std::string, int64_t>> ActivityBins(const int64_t (&counts)[kBinCount]) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t i = 0; i < kBinCount; ++i)
    if (counts[i] > 0) out.emplace_back(kActivityBins[i], counts[i]);
  return out;
}

// Keeps the `top` pairs with the most operations, ties by account then
// customer (bytewise), in that order.
template <typename Pair>
void KeepTop(std::vector<Pair>& pairs, size_t top) {
  auto order = [](const Pair& a, const Pair& b) {
    if (a.operations != b.operations) return a.operations > b.operations;
    return std::tie(a.account, a.customer) < std::tie(b.account, b.customer);
  };
  const size_t n = std::min(top, pairs.size());
  std::partial_sort(pairs.begin(), pairs.begin() + static_cast<std::ptrdiff_t>(n), pairs.end(),
                    order);
  pairs.resize(n);
}

}  // namespace

std::variant<AnalyticsQuery, RequestError> ParseAnalyticsQuery(
    const std::map<std::string, std::string>& params, int64_t now_us, int default_days) {
  // `reason`: the access reason of a download link (AccessReason, access.h), not a filter.
  static const char* kKnown[] = {"from",     "to",     "granularity", "connector",
                                 "customer", "format", "reason"};
  for (const auto& [key, value] : params) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    // A nameless parameter ("?=x") is named by the query string as a whole.
    if (!known)
      return RequestError{400, key.empty() ? "a parameter without a name" : "unknown parameter",
                          key.empty() ? std::string("query") : key};
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
  q.from_us = *from_us;
  q.to_us = *to_us;

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

std::optional<std::vector<int64_t>> ParseBigintArray(const std::string& text) {
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return std::nullopt;
  std::vector<int64_t> out;
  if (text.size() == 2) return out;
  size_t pos = 1;
  while (pos < text.size()) {
    const size_t end = text.find_first_of(",}", pos);
    if (end == std::string::npos || end == pos) return std::nullopt;
    const std::string item = text.substr(pos, end - pos);
    if (item == "NULL") {
      out.push_back(0);
    } else {
      size_t used = 0;
      try {
        out.push_back(std::stoll(item, &used));
      } catch (const std::exception&) {
        return std::nullopt;
      }
      if (used != item.size()) return std::nullopt;
    }
    pos = end + 1;
  }
  return out;
}

std::optional<double> BucketsQuantile(const std::vector<int64_t>& buckets,
                                      const std::vector<double>& bounds, int64_t q_num,
                                      int64_t q_den) {
  if (q_den <= 0 || bounds.empty()) return std::nullopt;
  q_num = std::max<int64_t>(0, std::min(q_num, q_den));
  int64_t total = 0;
  for (int64_t n : buckets) total += n;
  if (total <= 0) return std::nullopt;
  // rank = q * total; compared as rank * q_den = q_num * total (int64 holds
  // it for q_den <= 1000 and totals below 9e15 events).
  const int64_t rank_scaled = q_num * total;
  const size_t nb = bounds.size();
  int64_t cum = 0;
  for (size_t i = 1; i <= buckets.size(); ++i) {
    const int64_t n = buckets[i - 1];
    if (n > 0 && (cum + n) * q_den >= rank_scaled) {
      const double lo = i == 1 ? 0.0 : bounds[std::min(i - 1, nb) - 1];
      if (i > nb) return lo;
      const double hi = bounds[i - 1];
      const double frac = static_cast<double>(rank_scaled - cum * q_den) /
                          (static_cast<double>(n) * static_cast<double>(q_den));
      return lo + (hi - lo) * std::max(0.0, frac);
    }
    cum += n;
  }
  return bounds[nb - 1];
}

std::vector<std::string> ActivityWindowStarts(const std::string& fd, const std::string& td) {
  std::vector<std::string> out;
  if (!IsDate(fd) || !IsDate(td) || fd >= td) return out;
  int year = std::stoi(fd.substr(0, 4)), month = std::stoi(fd.substr(5, 2));
  for (;;) {
    char start[16];
    std::snprintf(start, sizeof start, "%04d-%02d-01", year, month);
    if (start >= td) break;  // ISO dates order as strings
    out.emplace_back(start);
    month += 2;
    if (month > 12) {
      month -= 12;
      ++year;
    }
  }
  return out;
}

ActivitySummary SummariseActivity(const std::vector<AccountOpsRow>& rows, size_t top) {
  // Accounts in a vector, found through an open-addressing index of their
  // positions keyed by views (no string copies, no allocation per account):
  // ~5,000 rows per part for 10,000 accounts. An account nearly always has
  // one customer, kept inline; others go to `more`.
  struct Account {
    std::string_view account, customer;
    int64_t total = 0, operations = 0;
    std::vector<std::pair<std::string_view, int64_t>> more;
  };
  std::vector<Account> accounts;
  accounts.reserve(rows.size());
  constexpr uint32_t kEmpty = UINT32_MAX;
  size_t capacity = 16;
  while (capacity < 2 * rows.size()) capacity *= 2;
  std::vector<uint32_t> index(capacity, kEmpty);
  const std::hash<std::string_view> hash;
  for (const AccountOpsRow& r : rows) {
    if (r.operations == 0) continue;
    size_t i = hash(r.account) & (capacity - 1);
    while (index[i] != kEmpty && accounts[index[i]].account != r.account)
      i = (i + 1) & (capacity - 1);
    if (index[i] == kEmpty) {
      index[i] = static_cast<uint32_t>(accounts.size());
      accounts.push_back({r.account, r.customer, r.operations, r.operations, {}});
      continue;
    }
    Account& a = accounts[index[i]];
    a.total += r.operations;
    if (a.customer == r.customer) {
      a.operations += r.operations;
    } else {
      auto it = std::find_if(a.more.begin(), a.more.end(),
                             [&](const auto& m) { return m.first == r.customer; });
      if (it == a.more.end())
        a.more.emplace_back(r.customer, r.operations);
      else
        it->second += r.operations;
    }
  }
  int64_t counts[kBinCount] = {};
  std::vector<AccountOpsRow> pairs;  // one per (account, customer), summed
  pairs.reserve(accounts.size());
  for (const Account& a : accounts) {
    const int64_t n = a.total;
    ++counts[n <= 1 ? 0 : n <= 10 ? 1 : n <= 100 ? 2 : n <= 1000 ? 3 : 4];
    pairs.push_back({a.account, a.customer, a.operations});
    for (const auto& [customer, ops] : a.more) pairs.push_back({a.account, customer, ops});
  }
  ActivitySummary out;
  out.bins = ActivityBins(counts);
  KeepTop(pairs, top);
  for (const AccountOpsRow& p : pairs)
    out.top.push_back({std::string(p.account), std::string(p.customer), p.operations});
  return out;
}

ActivitySummary MergeActivity(const std::vector<ActivitySummary>& parts, size_t top) {
  int64_t counts[kBinCount] = {};
  std::vector<AccountOps> pairs;
  for (const ActivitySummary& part : parts) {
    for (const auto& [label, accounts] : part.bins) {
      const auto* bin = std::find(std::begin(kActivityBins), std::end(kActivityBins), label);
      if (bin == std::end(kActivityBins))
        throw std::invalid_argument("unknown activity bin " + label);
      counts[bin - std::begin(kActivityBins)] += accounts;
    }
    pairs.insert(pairs.end(), part.top.begin(), part.top.end());
  }
  ActivitySummary out;
  out.bins = ActivityBins(counts);
  KeepTop(pairs, top);
  out.top = std::move(pairs);
  return out;
}

}  // namespace bpmc::analytics
