#pragma once
// Private to bpmc::analytics: the reads more than one endpoint makes — usage
// numbers from the aggregate tables, active subscriptions, revenue, the
// connectors in scope.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fanout.h"
#include "query_scope.h"

namespace bpmc::analytics::analytics_internal {

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
                              bool by_bucket = false, UsageColumns cols = {});

// The scope's usage as one row (all zero when there is none).
Usage Total(Txn& txn, const Scope& s, UsageColumns cols = {});

// Subscriptions active at the end of the period, by connector id.
std::map<std::string, int64_t> ActiveSubscriptions(Txn& txn, const Scope& s);

// The sum of the map's values.
int64_t Sum(const std::map<std::string, int64_t>& m);

// Payments x in the period p and the request's connector and customer scope.
inline const std::string kPaymentsInScope =
    "x.occurred_at >= p.f AND x.occurred_at < p.t AND (p.c IS NULL OR x.connector_id = p.c) "
    "AND (p.cu IS NULL OR x.customer_id = p.cu)";

// Succeeded payments in the period by currency (minor units).
std::map<std::string, int64_t> Revenue(Txn& txn, const Scope& s);

// Minor units to a decimal amount (two-decimal currencies, as RUB, USD, EUR).
inline double Major(int64_t minor) { return double(minor) / 100.0; }

struct Connector {
  std::string id, name;
};

// The connectors in scope (all, or the scope's connector when it exists), by id.
std::vector<Connector> Connectors(Txn& txn, const Scope& s);

}  // namespace bpmc::analytics::analytics_internal
