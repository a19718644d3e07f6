#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "analytics/analytics_limits.h"
#include "analytics/answer_cache.h"
#include "common/clock.h"
#include "common/pg_pool.h"
#include "http/endpoint.h"

namespace bpmc::analytics {

class AccessControl;

struct AnalyticsOptions {
  std::string time_zone = "UTC";             // reporting time zone (IANA)
  std::string currency = "RUB";              // currency of "revenue"
  int default_days = 30;                     // period when `from` is absent
  AnalyticsLimits limits;                    // rate, concurrency, period and pool-wait limits
  AnswerCacheOptions cache;                  // the answer cache (answer_cache.h)
  const Clock* clock = &SystemClock::Get();  // "now" of periods, rate limits, cache; not owned
  prometheus::Registry* registry = nullptr;  // the cache's counters; not owned, may be null
  // A pool on a read-only streaming replica (docs/SCALING.md "Reads on a
  // replica"); nullptr = answers are computed on the route's own pool. When a
  // replica connection fails the answer comes from the route's pool (the
  // primary) and the replica is left alone for replica_retry_ms; counted as
  // {reason="analytics_replica_unavailable"}. Not owned.
  PgPool* replica = nullptr;
  int replica_retry_ms = 5000;
  // Whether a request's independent queries may run concurrently on extra
  // pooled connections sharing one exported snapshot (Fanout). Off behind
  // PgBouncer in transaction mode: there a request holding one server
  // connection while waiting for another can starve the pool.
  bool fanout = true;
};

// GET /api/v1/analytics/{overview,connectors,connectors/{id},users,financial,errors}
// with from, to, granularity (hour|day|week|month), connector, customer and
// format (json|csv|xlsx|pdf, or the Accept header).
//
// Every number comes from the aggregate tables and from the billing tables,
// never from a scan of raw events. Reads never write: the route cannot reach
// the aggregation (Rollup), which runs only in the background; an answer is as
// of the rollup watermark and says so — "as_of" in JSON (RFC 3339 UTC: every
// event received before it is counted; the time of the oldest event not yet
// aggregated, or the read's own start when there is none) and a "data as of"
// line in exports. The period is rounded out to whole buckets of the
// granularity in the reporting time zone; the response says which period it
// covers. Access: bearer token of a user (AccessControl), the role policy
// decides, and every request, allowed or denied, is audited. Then the limits
// (analytics_limits.h): 400 for a period longer than the role may ask for,
// 429 + Retry-After past the user's rate or in-flight cap, 503 + Retry-After
// when no pooled connection is free within limits.pool_wait_ms; each refusal
// is counted in bpmc_exporter_failures_total{reason}. Admitted requests asking
// the same question (endpoint, every parameter, the role's scope) within
// cache.ttl_ms share one answer (AnswerCache); each is still audited and
// counted against its user's limits.
//
// Every JSON answer also says where it was read and how fresh that copy is:
// "freshness": {"source": "primary"|"replica", "replay_lag_seconds": S (0 on
// the primary and on a replica that has replayed all the WAL it received
// while its WAL receiver runs; null when unknown), "as_of": RFC 3339 UTC
// time up to which the primary's commits are visible}. Replica answers set
// the gauge bpmc_exporter_analytics_replica_lag_seconds;
// bpmc_exporter_analytics_answers_total{source} counts answers by source.
std::unique_ptr<http::Endpoint> NewAnalyticsRoute(PgPool* pool, AccessControl* access,
                                                  AnalyticsOptions options);

}  // namespace bpmc::analytics

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/request_error.h"

namespace bpmc::analytics {

enum class Granularity { kHour, kDay, kWeek, kMonth };

// The validated parameters of an analytics request. `from`/`to` are RFC 3339
// timestamps or YYYY-MM-DD dates (midnight in the reporting time zone).
struct AnalyticsQuery {
  std::string from;  // "" = to - default_days
  std::string to;    // "" = now
  Granularity granularity = Granularity::kDay;
  std::string connector;           // "" = all
  std::string customer;            // "" = not customer-scoped
  int64_t from_us = 0, to_us = 0;  // the bounds as parsed (dates as UTC midnight)
};

// Pure: validates the query string parameters of an analytics request (the
// `format` key is left to the export code). Errors name the parameter.
std::variant<AnalyticsQuery, RequestError> ParseAnalyticsQuery(
    const std::map<std::string, std::string>& params, int64_t now_us, int default_days);

// --- Duration histograms (migrations/0002_aggregates.sql) ---------------

// Pure: parses PostgreSQL's text form of a bigint[] ("{1,0,5}"; NULL
// elements read as 0). nullopt when the text is not such an array.
std::optional<std::vector<int64_t>> ParseBigintArray(const std::string& text);

// Pure: the q-quantile in ms of a bucket histogram, q = q_num / q_den, the
// same interpolation as the SQL bpmc_buckets_quantile (linear inside the
// bucket holding rank q * total; the +Inf bucket reports its lower bound;
// bucket i of `buckets` is [bounds[i-2], bounds[i-1]), bucket 1 starts at 0).
// The rank comparison is exact (integers; q_den <= 1000). nullopt for an
// empty histogram.
std::optional<double> BucketsQuantile(const std::vector<int64_t>& buckets,
                                      const std::vector<double>& bounds, int64_t q_num,
                                      int64_t q_den);

// --- Activity distribution (users endpoint) -------------------------------

// Pure: the starts ("YYYY-MM-01") of the two-month activity windows
// (account_activity_windows_even/_odd, migration 0008) that cover the local days
// [fd, td) ("YYYY-MM-DD", fd < td) without overlapping: fd's month and every
// second month after it, while before td. A period within two calendar
// months gets one. Empty when a bound is malformed or fd >= td.
std::vector<std::string> ActivityWindowStarts(const std::string& fd, const std::string& td);

// Operations of one Make account under one customer in (part of) a period;
// an account may come in several rows (one per window read).
struct AccountOps {
  std::string account, customer;
  int64_t operations = 0;
};

// The same as views into the caller's storage (e.g. a query result), which
// must outlive SummariseActivity.
struct AccountOpsRow {
  std::string_view account, customer;
  int64_t operations = 0;
};

struct ActivitySummary {
  // (bin label, accounts) for "1", "2-10", "11-100", "101-1000", ">1000", in
  // that order, only bins with accounts. An account's operations are summed
  // over all its rows and customers.
  std::vector<std::pair<std::string, int64_t>> bins;
  // The `top` (account, customer) pairs with the most operations, ties by
  // account then customer.
  std::vector<AccountOps> top;
};

// Pure: the activity distribution and the most active accounts. Rows with
// no operations are ignored.
ActivitySummary SummariseActivity(const std::vector<AccountOpsRow>& rows, size_t top);

// Pure: one summary of the summaries of parts with disjoint Make accounts
// (every row of an account in the same part), as SummariseActivity of all
// their rows would give: bins added up, the `top` of the parts' tops.
ActivitySummary MergeActivity(const std::vector<ActivitySummary>& parts, size_t top);

}  // namespace bpmc::analytics
