// The admin analytics API's route: which endpoint a path names, admission
// (access policy, validation, limits), the request's snapshot and period, the
// endpoint's answer (endpoint_*.cpp) and its export. Queries read the
// aggregate tables (0002_aggregates.sql) and the billing tables
// (0003_billing.sql); see docs/ANALYTICS.md for every field and formula.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>

#include "analytics/access.h"
#include "analytics/analytics.h"
#include "common/clock.h"
#include "common/pg_pool.h"
#include "endpoints.h"
#include "report/report.h"

namespace bpmc::analytics {
namespace {

using analytics_internal::Answer;
using analytics_internal::Connectors;
using analytics_internal::Fanout;
using analytics_internal::ParseDoubleArray;
using analytics_internal::Period;
using analytics_internal::ReadTxn;
using analytics_internal::Scope;
using analytics_internal::Unit;
using report::ExportFormat;
using report::Rendered;

constexpr std::string_view kPrefix = "/api/v1/analytics/";

enum class Resource { kOverview, kConnectors, kConnector, kUsers, kFinancial, kErrors };

// What a path under kPrefix names.
struct Target {
  Resource resource = Resource::kOverview;
  std::string connector_id;  // connectors/{id} only
};

// Pure: the target of `rest`, the path after kPrefix; nullopt for no endpoint.
std::optional<Target> ParseTarget(const std::string& rest) {
  if (rest == "overview") return Target{Resource::kOverview, ""};
  if (rest == "connectors") return Target{Resource::kConnectors, ""};
  if (rest.rfind("connectors/", 0) == 0 && rest.size() > 11 &&
      rest.find('/', 11) == std::string::npos)
    return Target{Resource::kConnector, rest.substr(11)};
  if (rest == "users") return Target{Resource::kUsers, ""};
  if (rest == "financial") return Target{Resource::kFinancial, ""};
  if (rest == "errors") return Target{Resource::kErrors, ""};
  return std::nullopt;
}

// Pure: what a request for `resource` asks for in the terms of the policy.
DataKind KindOf(Resource resource, const std::string& requested_customer) {
  if (resource == Resource::kUsers) return DataKind::kUserStats;
  if (resource == Resource::kFinancial) return DataKind::kFinancial;
  return requested_customer.empty() ? DataKind::kAggregate : DataKind::kCustomerUsage;
}

// The 400 of a validation error.
http::Response BadRequest(const RequestError& err) {
  return http::Error(err.http_status, err.message, err.field);
}

// A request past the analytics checks, ready to be answered.
struct Admitted {
  Target target;
  std::string section;  // the first path segment after kPrefix (export file names)
  AnalyticsQuery query;
  ExportFormat format = ExportFormat::kJson;
  bool with_revenue = false;  // the role may see revenue (the overview's)
  bool pseudonymise = false;  // customer and Make account ids as pseudonyms
};

// Rounds the requested period out to whole buckets in the reporting time
// zone; dates (YYYY-MM-DD) are local midnights.
constexpr const char* kPeriodSql = R"sql(
WITH i AS (
  SELECT CASE WHEN length($1) = 10 THEN $1::date::timestamp AT TIME ZONE $3 ELSE $1::timestamptz END AS f0,
         CASE WHEN length($2) = 10 THEN $2::date::timestamp AT TIME ZONE $3 ELSE $2::timestamptz END AS t0),
r AS (
  SELECT date_trunc($4, f0 AT TIME ZONE $3) AT TIME ZONE $3 AS f,
         (date_trunc($4, (t0 AT TIME ZONE $3) - interval '1 microsecond') + ('1 ' || $4)::interval)
           AT TIME ZONE $3 AS t
  FROM i)
SELECT f, t, to_char(f AT TIME ZONE $3, 'YYYY-MM-DD'), to_char(t AT TIME ZONE $3, 'YYYY-MM-DD'),
       to_char(f AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       to_char(coalesce((SELECT u.created_at FROM connector_usage u
                         WHERE u.seq > (SELECT last_seq FROM rollup_state WHERE name = 'usage')
                         ORDER BY u.seq LIMIT 1), transaction_timestamp()) AT TIME ZONE 'UTC',
               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM r)sql";

// The request's period as kPeriodSql rounds it.
struct RoundedPeriod {
  Period period;         // the queries' bounds
  std::string from, to;  // RFC 3339 UTC, as the answer states them
  std::string as_of;     // the rollup watermark, RFC 3339 UTC
};

RoundedPeriod ReadPeriod(ReadTxn& txn, const AnalyticsQuery& q, const std::string& time_zone) {
  const auto pr =
      txn.exec_params(kPeriodSql, q.from, q.to, time_zone, std::string(Unit(q.granularity)))[0];
  return {{pr[0].as<std::string>(), pr[1].as<std::string>(), pr[2].as<std::string>(),
           pr[3].as<std::string>()},
          pr[4].as<std::string>(),
          pr[5].as<std::string>(),
          pr[6].as<std::string>()};
}

std::string Param(const std::map<std::string, std::string>& params, const std::string& name) {
  auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

// Pure: the answer cache's key of a request: everything its answer depends on
// besides the data. `from` and `to` as requested ("" = relative to now: an
// answer stored for them is at most the cache's ttl old). Each field is length-
// prefixed, so no parameter value can forge another request's key.
std::string CacheKey(const Admitted& r, const std::string& from, const std::string& to) {
  std::string key;
  auto add = [&key](std::string_view v) {
    key += std::to_string(v.size());
    key += ':';
    key += v;
  };
  add(std::to_string(static_cast<int>(r.target.resource)));
  add(r.target.connector_id);
  add(from);
  add(to);
  add(std::to_string(static_cast<int>(r.query.granularity)));
  add(r.query.connector);
  add(r.query.customer);
  add(std::to_string(static_cast<int>(r.format)));
  add(r.with_revenue ? "revenue" : "-");
  add(r.pseudonymise ? "pseudonyms" : "-");
  return key;
}

// How fresh the copy a request reads is. On a standby, "caught up" (lag 0)
// means: its WAL receiver runs and everything received is replayed; otherwise
// the lag is the age of the last replayed transaction (which also grows while
// an idle primary commits nothing, hence the caught-up test first). `as_of`:
// commits of the primary up to then are visible.
constexpr const char* kFreshnessSql = R"sql(
WITH s AS (
  SELECT pg_is_in_recovery() AS rec,
         pg_last_wal_receive_lsn() IS NOT NULL
           AND pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn()
           AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver) AS caught_up,
         pg_last_xact_replay_timestamp() AS replayed)
SELECT CASE WHEN NOT rec OR caught_up THEN 0::float8
            ELSE greatest(0, extract(epoch FROM clock_timestamp() - replayed))::float8 END,
       to_char(CASE WHEN NOT rec OR caught_up THEN transaction_timestamp() ELSE replayed END
                 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
FROM s)sql";

struct Freshness {
  std::optional<double> lag_seconds;  // nullopt: nothing replayed since the standby started
  std::optional<std::string> as_of;
};

Freshness ReadFreshness(ReadTxn& txn) {
  const auto row = txn.exec(kFreshnessSql)[0];
  Freshness f;
  if (!row[0].is_null()) f.lag_seconds = row[0].as<double>();
  if (!row[1].is_null()) f.as_of = row[1].as<std::string>();
  return f;
}

// The scope of the queries: the period, the histogram bounds and the filters.
Scope MakeScope(ReadTxn& txn, const Admitted& r, const Period& period,
                const std::string& time_zone) {
  Scope s;
  s.period = period;
  s.tz = time_zone;
  s.granularity = r.query.granularity;
  const auto bounds =
      ParseDoubleArray(txn.exec("SELECT bpmc_duration_bounds()::text")[0][0].as<std::string>());
  if (!bounds) throw std::runtime_error("malformed bpmc_duration_bounds()");
  s.bounds = *bounds;
  if (!r.query.connector.empty()) s.connector = r.query.connector;
  if (!r.target.connector_id.empty()) s.connector = r.target.connector_id;
  if (!r.query.customer.empty()) s.customer = r.query.customer;
  return s;
}

// The replica's connection failed (not its queries' errors): answer from the primary.
struct ReplicaDown : std::runtime_error {
  explicit ReplicaDown(const std::string& what) : std::runtime_error(what) {}
};

// No pooled connection came within pool_wait_ms.
struct PoolBusy : std::runtime_error {
  PoolBusy() : std::runtime_error("no database connection free") {}
};

class AnalyticsRoute final : public http::Endpoint {
 public:
  AnalyticsRoute(PgPool* pool, AccessControl* access, AnalyticsOptions options)
      : pool_(pool),
        access_(access),
        options_(std::move(options)),
        limiter_(*options_.clock, options_.limits),
        cache_(*options_.clock, options_.cache, options_.registry) {
    if (options_.registry != nullptr) {
      replica_lag_ = &prometheus::BuildGauge()
                          .Name("bpmc_exporter_analytics_replica_lag_seconds")
                          .Help(
                              "Replay lag of the analytics replica as its last answer saw it "
                              "(0 when caught up)")
                          .Register(*options_.registry)
                          .Add({});
      auto& answers = prometheus::BuildCounter()
                          .Name("bpmc_exporter_analytics_answers_total")
                          .Help("Analytics answers computed, by the database they were read on")
                          .Register(*options_.registry);
      answers_primary_ = &answers.Add({{"source", "primary"}});
      answers_replica_ = &answers.Add({{"source", "replica"}});
    }
  }

  bool Matches(const std::string& path) const override { return path.rfind(kPrefix, 0) == 0; }
  std::string Name() const override { return "analytics"; }

  http::Response Handle(const http::Request& req) override;

 private:
  // A refusal before admission (404, 405), audited.
  http::Response Refuse(const http::Request& req, http::Response r);
  // The 429 of a ticket the limiter refused, counted.
  http::Response TooManyRequests(const AnalyticsLimiter::Ticket& ticket);
  // The answer, or 503 when the database fails or is busy (counted).
  http::Response RespondOrUnavailable(const Admitted& r);
  // The answer on a connection of `pool` (the replica's when `replica`);
  // throws PoolBusy, ReplicaDown or the database's error.
  http::Response Respond(const Admitted& r, PgPool* pool, bool replica);
  // The endpoint's numbers.
  Answer Compute(Fanout& fan, const Scope& s, const Admitted& r);
  // The answer's body in the requested format (500 when the export fails).
  http::Response Export(const Answer& a, ExportFormat format);

  PgPool* pool_;
  AccessControl* access_;
  const AnalyticsOptions options_;
  AnalyticsLimiter limiter_;
  AnswerCache cache_;
  std::atomic<int64_t> replica_retry_at_us_{0};  // primary only until then
  prometheus::Gauge* replica_lag_ = nullptr;
  prometheus::Counter* answers_primary_ = nullptr;
  prometheus::Counter* answers_replica_ = nullptr;
};

http::Response AnalyticsRoute::Handle(const http::Request& req) {
  const std::string rest = req.path.substr(kPrefix.size());
  const std::optional<Target> target = ParseTarget(rest);
  // Refusals under /api/v1/analytics/ are audited like the others.
  if (!target) return Refuse(req, http::Error(404, "no such analytics endpoint", ""));
  if (req.method != "GET") {
    http::Response r = http::Error(405, "method not allowed", "");
    r.headers.push_back({"Allow", "GET"});
    return Refuse(req, std::move(r));
  }

  const auto params = http::ParseQuery(req.query);
  auto parsed = ParseAnalyticsQuery(params, options_.clock->NowMicros(), options_.default_days);
  const std::string requested_customer =
      params.count("customer") ? params.at("customer") : std::string();
  AccessControl::Admission adm =
      access_->Admit(req, KindOf(target->resource, requested_customer), requested_customer);
  if (!adm.admitted) return adm.response;
  if (auto* err = std::get_if<RequestError>(&parsed)) return access_->Finish(adm, BadRequest(*err));
  auto format =
      report::ChooseFormat(params.count("format") ? params.at("format") : "", req.Header("accept"));
  if (auto* err = std::get_if<RequestError>(&format)) return access_->Finish(adm, BadRequest(*err));
  Admitted r;
  r.target = *target;
  r.section = rest.substr(0, rest.find('/'));
  r.query = std::get<AnalyticsQuery>(parsed);
  r.format = std::get<ExportFormat>(format);
  if (auto err = CheckPeriod(adm.principal.role, r.query.from_us, r.query.to_us, options_.limits))
    return access_->Finish(adm, BadRequest(*err));
  // Held until the answer is audited: the user's request is in flight till then.
  const AnalyticsLimiter::Ticket ticket = limiter_.Admit(adm.principal.user_id);
  if (ticket.verdict != AnalyticsLimiter::Verdict::kAdmitted)
    return access_->Finish(adm, TooManyRequests(ticket));

  if (!adm.decision.forced_customer.empty()) r.query.customer = adm.decision.forced_customer;
  r.with_revenue = Decide(adm.principal, AccessRequest{DataKind::kFinancial, r.query.customer,
                                                       !AccessReason(req).empty()})
                       .allowed;
  r.pseudonymise = adm.decision.pseudonymise_ids;
  // RespondOrUnavailable releases its pool lease before Finish(), which needs
  // a connection of its own for the audit row: holding both could exhaust the pool.
  const std::string key = CacheKey(r, Param(params, "from"), Param(params, "to"));
  // `Cache-Control: no-cache` asks for an answer computed now (HTTP's meaning).
  const bool bypass = req.Header("cache-control").find("no-cache") != std::string::npos;
  return access_->Finish(adm, cache_.Get(
                                  key, [&] { return RespondOrUnavailable(r); }, bypass));
}

http::Response AnalyticsRoute::Refuse(const http::Request& req, http::Response r) {
  access_->AuditRefusal(req, r);
  return r;
}

http::Response AnalyticsRoute::TooManyRequests(const AnalyticsLimiter::Ticket& ticket) {
  const bool rate = ticket.verdict == AnalyticsLimiter::Verdict::kRateLimited;
  access_->CountFailure(rate ? "analytics_rate_limited" : "analytics_concurrency_limited");
  http::Response r = http::Error(429,
                                 rate ? "too many analytics requests for this user; retry later"
                                      : "too many analytics requests of this user in progress",
                                 "Authorization");
  r.headers.push_back({"Retry-After", std::to_string(ticket.retry_after_s)});
  return r;
}

http::Response AnalyticsRoute::RespondOrUnavailable(const Admitted& r) {
  try {
    if (options_.replica != nullptr && options_.clock->NowMicros() >= replica_retry_at_us_) {
      try {
        return Respond(r, options_.replica, true);
      } catch (const ReplicaDown& e) {
        access_->CountFailure("analytics_replica_unavailable");
        spdlog::warn("analytics replica unavailable, reading on the primary for {} ms: {}",
                     options_.replica_retry_ms, ScrubPii(e.what()));
        replica_retry_at_us_ =
            options_.clock->NowMicros() + int64_t{options_.replica_retry_ms} * 1000;
      }
    }
    return Respond(r, pool_, false);
  } catch (const PoolBusy&) {
    access_->CountFailure("analytics_pool_timeout");
    http::Response busy =
        http::Error(503, "the analytics database connections are all busy; retry later", "");
    busy.headers.push_back({"Retry-After", "1"});
    return busy;
  } catch (const std::exception& e) {
    access_->CountFailure("analytics_query");
    spdlog::warn("analytics query failed: {}", ScrubPii(e.what()));
    http::Response down = http::Error(503, "analytics are unavailable right now; retry later", "");
    down.headers.push_back({"Retry-After", "5"});
    return down;
  }
}

http::Response AnalyticsRoute::Respond(const Admitted& r, PgPool* pool, bool replica) {
  std::optional<PgPool::Lease> lease = [&] {
    try {
      return pool->AcquireFor(std::chrono::milliseconds(options_.limits.pool_wait_ms));
    } catch (const pqxx::broken_connection& e) {
      if (replica) throw ReplicaDown(e.what());
      throw;
    }
  }();
  if (!lease) throw PoolBusy();
  PgPool::Lease& conn = *lease;
  try {
    ReadTxn txn(*conn);
    const Freshness fresh = ReadFreshness(txn);
    const RoundedPeriod rounded = ReadPeriod(txn, r.query, options_.time_zone);
    const Scope s = MakeScope(txn, r, rounded.period, options_.time_zone);
    if (s.connector && Connectors(txn, s).empty())
      return r.target.resource == Resource::kConnector
                 ? http::Error(404, "no such connector", "id")
                 : http::Error(400, "unknown connector", "connector");
    Fanout fan(options_.fanout ? pool : nullptr, txn);
    Answer a = Compute(fan, s, r);
    txn.commit();
    a.body["as_of"] = rounded.as_of;
    a.body["freshness"] = {{"source", replica ? "replica" : "primary"},
                           {"replay_lag_seconds", nullptr},
                           {"as_of", nullptr}};
    if (fresh.lag_seconds) a.body["freshness"]["replay_lag_seconds"] = *fresh.lag_seconds;
    if (fresh.as_of) a.body["freshness"]["as_of"] = *fresh.as_of;
    if (replica && replica_lag_ != nullptr && fresh.lag_seconds)
      replica_lag_->Set(*fresh.lag_seconds);
    if (prometheus::Counter* c = replica ? answers_replica_ : answers_primary_) c->Increment();
    a.body["period"] = {{"from", rounded.from},
                        {"to", rounded.to},
                        {"granularity", Unit(r.query.granularity)},
                        {"time_zone", options_.time_zone}};
    if (s.customer)
      a.body["customer"] = r.pseudonymise ? access_->Pseudonym(*s.customer) : *s.customer;
    a.report.period = rounded.from + " — " + rounded.to + " (" + options_.time_zone +
                      "); данные на / data as of " + rounded.as_of;
    if (replica)
      a.report.period +=
          " (реплика / replica, " +
          (fresh.as_of ? "replayed through " + *fresh.as_of : std::string("lag unknown")) + ")";
    a.report.file_stem = "bpmc-" + r.section + "-" + rounded.from.substr(0, 10);
    return Export(a, r.format);
  } catch (const pqxx::broken_connection& e) {
    conn.MarkBroken();
    if (replica) throw ReplicaDown(e.what());
    throw;
  }
}

Answer AnalyticsRoute::Compute(Fanout& fan, const Scope& s, const Admitted& r) {
  switch (r.target.resource) {
    case Resource::kOverview:
      return analytics_internal::Overview(fan, s, r.with_revenue, options_.currency);
    case Resource::kConnectors:
      return analytics_internal::ConnectorsList(fan, s, "");
    case Resource::kConnector:
      return analytics_internal::ConnectorsList(fan, s, r.target.connector_id);
    case Resource::kUsers:
      return analytics_internal::Users(fan, s, r.pseudonymise ? access_ : nullptr);
    case Resource::kFinancial:
      return analytics_internal::Financial(fan, s, options_.currency);
    case Resource::kErrors:
      return analytics_internal::Errors(fan, s, r.pseudonymise);
  }
  return {};
}

http::Response AnalyticsRoute::Export(const Answer& a, ExportFormat format) {
  http::Response resp;
  if (format == ExportFormat::kJson) {
    resp.body = a.body.dump();
    return resp;
  }
  // Rendered on a thread of its own: fontconfig's first load (under
  // cairo) recurses deeper than CivetWeb's small worker stacks allow.
  Rendered r;
  std::thread renderer([&] {
    r = format == ExportFormat::kCsv    ? RenderCsv(a.report)
        : format == ExportFormat::kXlsx ? RenderXlsx(a.report)
                                        : RenderPdf(a.report);
  });
  renderer.join();
  if (!r.ok()) {
    access_->CountFailure("export_render");
    return http::Error(500, "cannot render the export: " + r.error, "format");
  }
  resp.content_type = r.content_type;
  resp.body = std::move(r.body);
  resp.headers.push_back({"Content-Disposition", report::ContentDisposition(r.filename)});
  return resp;
}

}  // namespace

std::unique_ptr<http::Endpoint> NewAnalyticsRoute(PgPool* pool, AccessControl* access,
                                                  AnalyticsOptions options) {
  if (options.clock == nullptr) options.clock = &SystemClock::Get();
  return std::make_unique<AnalyticsRoute>(pool, access, std::move(options));
}

}  // namespace bpmc::analytics
