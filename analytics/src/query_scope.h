#pragma once
// Private to bpmc::analytics: what every analytics query is parameterised by
// (the request's Scope, bound as the eight parameters of kParams) and which
// aggregate table it reads for a granularity (Source).

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "analytics/analytics.h"
#include "fanout.h"

namespace bpmc::analytics::analytics_internal {

// "hour", "day", "week" or "month": PostgreSQL's date_trunc unit.
const char* Unit(Granularity g);

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

// Where a family of aggregate tables is read from for a granularity. `base`
// is one of the fixed table-name stems, never request text.
struct Source {
  std::string table, where, bucket, time_col;
};

// The hourly, daily or (when `has_monthly`) monthly table of `base`; week
// and month buckets otherwise group the daily rows.
Source SourceFor(const std::string& base, Granularity g, bool has_monthly);

// The breakdown tables by operation and by error type. A customer's come from
// the per-customer daily tables (migration 0006): they cover the local days
// of the period, whole days also for an hour-granularity request.
Source BreakdownSource(const Scope& s, const std::string& base, const std::string& customer_table);

// The element-wise sum of the duration histograms x.duration_buckets of a
// group as a bigint[52]: built-in sum() per element. Merging thousands of
// rows with the PL/pgSQL bpmc_buckets_sum was ~4x slower (docs/BENCHMARKS.md);
// the quantile is then read in C++ (BucketsQuantile, same interpolation).
const std::string& BucketSumsSql();

// The p95 of a histogram column produced by BucketSumsSql; nullopt for NULL.
// Throws std::runtime_error when the column is not a bigint[].
std::optional<double> P95(const Scope& s, const pqxx::field& buckets);

// "{1.000,1.250}" -> {1.0, 1.25}; nullopt when malformed.
std::optional<std::vector<double>> ParseDoubleArray(const std::string& text);

}  // namespace bpmc::analytics::analytics_internal
