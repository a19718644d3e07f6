#pragma once

#include <memory>
#include <string>

#include "common/pg_pool.h"
#include "exporter/http.h"

namespace bpmc::exporter {

class AccessControl;
class Rollup;

struct AnalyticsOptions {
  std::string time_zone = "UTC";   // reporting time zone (IANA)
  std::string currency = "RUB";    // currency of "revenue"
  int default_days = 30;           // period when `from` is absent
};

// GET /api/v1/analytics/{overview,connectors,connectors/{id},users,financial,errors}
// with from, to, granularity (hour|day|week|month), connector, customer and
// format (json|csv|xlsx|pdf, or the Accept header).
//
// Every number comes from the aggregate tables, brought up to date first
// (Rollup::CatchUp), and from the billing tables; never from a scan of raw
// events. The period is rounded out to whole buckets of the granularity in
// the reporting time zone; the response says which period it covers.
// Access: bearer token of a user (AccessControl), the role policy decides,
// and every request, allowed or denied, is audited.
std::unique_ptr<Route> NewAnalyticsRoute(PgPool* pool, Rollup* rollup, AccessControl* access,
                                         AnalyticsOptions options);

}  // namespace bpmc::exporter

#include <map>
#include <variant>

#include "exporter/event.h"

namespace bpmc::exporter {

enum class Granularity { kHour, kDay, kWeek, kMonth };

// The validated parameters of an analytics request. `from`/`to` are RFC 3339
// timestamps or YYYY-MM-DD dates (midnight in the reporting time zone).
struct AnalyticsQuery {
  std::string from;  // "" = to - default_days
  std::string to;    // "" = now
  Granularity granularity = Granularity::kDay;
  std::string connector;  // "" = all
  std::string customer;   // "" = not customer-scoped
};

// Pure: validates the query string parameters of an analytics request (the
// `format` key is left to the export code). Errors name the parameter.
std::variant<AnalyticsQuery, RequestError> ParseAnalyticsQuery(
    const std::map<std::string, std::string>& params, int64_t now_us, int default_days);

}  // namespace bpmc::exporter
