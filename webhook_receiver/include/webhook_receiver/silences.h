#pragma once

// Silences (docs/RECEIVER.md, "Silences"), as in Alertmanager: label matchers
// (`=`, `!=`, `=~`, `!~`, the route matchers' syntax) that, while a silence is
// active (starts_at <= now < ends_at), keep every new firing they match, from
// any intake, from paging anyone: the alert is stored with outcome `silenced`
// and opens no incident. A silence ends on time (its end is compared with the
// storing transaction's clock, nothing has to run), or earlier when expired by
// DELETE; it is never removed (the list keeps who made and who ended it).
//
// Owned here: the table `silences` (migrations/0002_silences.sql).
//   POST   /api/v1/silences         create (admin, support)      201 {"silence": {...}}
//   GET    /api/v1/silences[?state=active|pending|expired|all]   (admin, manager, support)
//   GET    /api/v1/silences/{id}
//   DELETE /api/v1/silences/{id}    expire now (admin, support); idempotent
// Role `user` gets 403. Every answer is audited by the receiver's audit hook.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/pg_pool.h"
#include "common/request_error.h"
#include "http/types.h"
#include "notifier/config.h"
#include "webhook_receiver/routing.h"

namespace bpmc::webhook_receiver {

// The body of POST /api/v1/silences, validated.
struct SilenceRequest {
  std::vector<std::string> matchers;  // as sent, each parsed by Matcher::Parse
  int64_t starts_us = 0;              // "starts_at", default now
  int64_t ends_us = 0;                // "ends_at"
  std::string comment;
};

// Limits of a request.
inline constexpr size_t kMaxSilenceMatchers = 32;
inline constexpr size_t kMaxSilenceMatcherBytes = 1024;
inline constexpr size_t kMaxSilenceCommentBytes = 2000;
inline constexpr int64_t kMaxSilenceDays = 90;
inline constexpr size_t kMaxSilenceBody = 64 * 1024;

// Pure: the request body {"matchers": ["connector=\"crm-connector\"", ...],
// "starts_at" (RFC 3339, default now), "ends_at", "comment"} at `now_us`.
// Errors name the field ("matchers[1]") and are 400. Refused, as Alertmanager
// refuses them: no matchers, a matcher Matcher::Parse rejects (bad syntax,
// label name or regex), matchers that all match an alert without labels (they
// would silence everything), ends_at not after starts_at or not in the future;
// and more than the limits above, unknown keys, a body nested too deeply.
std::variant<SilenceRequest, RequestError> ParseSilenceRequest(std::string_view body,
                                                               int64_t now_us);

// Pure: whether `labels` satisfy every matcher text (each parsed again; one
// that no longer parses matches nothing, so a silence never mutes by mistake).
bool SilenceMatches(const std::vector<std::string>& matchers, const Labels& labels);

// The mute hook of silences (a MuteCheck, store.h): true when an active silence
// at `now_us` matches these labels. Reads `silences` in the storing transaction.
bool Silenced(pqxx::work& txn, const Labels& labels, int64_t now_us);

// When a silence ends (on time or by DELETE) while an alert it silenced is still
// firing, that alert pages then, as Alertmanager notifies a still-firing alert
// once its silence is gone: each stored firing with outcome `silenced` that is
// still its alert's latest state (receiver_alerts: firing) and that no active
// silence matches at `now_us` any more becomes `notified` (`unrouted` when the
// routes send it nowhere now), its recipients as the routes say now are
// enqueued, and the incident engine sees it (incident_pending). Each alert is
// taken under its AlertLockKey, so a resolution stored at the same moment is
// either seen (and nothing is paged) or sent to the recipients enqueued here.
// At most `limit` per call, oldest first. Returns how many were paged or
// unrouted. Runs in the caller's transaction; throws pqxx exceptions.
struct ReleasePlan {
  const std::vector<RouteNode>* routes = nullptr;
  const notifier::NotifierConfig* channels = nullptr;
  std::string default_severity;
};
int ReleaseEndedSilences(pqxx::work& txn, int64_t now_us, const ReleasePlan& plan, int limit = 100);

// The HTTP API above over its own pooled connections. Thread-safe.
class SilenceApi {
 public:
  // `pool` and `clock` must outlive it; `count_failure` gets "silences_api" on
  // a database error (answered 503).
  SilenceApi(PgPool& pool, const Clock& clock,
             std::function<void(const std::string&)> count_failure);

  // For a request under /api/v1/silences that passed the route's authentication
  // (req.principal, req.principal_role).
  http::Response Answer(const http::Request& req);

 private:
  http::Response Create(const http::Request& req);
  http::Response List(const http::Request& req);
  http::Response GetOne(int64_t id);
  http::Response Expire(int64_t id, const std::string& by);
  template <typename Fn>
  http::Response WithDatabase(Fn fn);

  PgPool& pool_;
  const Clock& clock_;
  std::function<void(const std::string&)> count_failure_;
};

}  // namespace bpmc::webhook_receiver
