#pragma once
// The HTTP routes of incidents and on-call (docs/INCIDENTS.md):
//   GET  /api/v1/incidents[?status=&connector=&limit=&before=]   list, newest first
//   GET  /api/v1/incidents/{id}                       one, with alerts, pages and timeline
//   GET  /api/v1/incidents/{id}/report                post-incident report (markdown)
//   POST /api/v1/incidents/{id}/ack | /resolve        acknowledge, resolve
//   POST /api/v1/incidents/{id}/escalate              escalate now: the next level, at once
//   POST /api/v1/incidents/{id}/snooze {"duration": "30m"}   an acknowledged one, 1m to 24h
//   POST /api/v1/incidents/{id}/reassign {"person": id} | {"schedule": id}   page them now
//   POST /api/v1/incidents/{id}/notes  {"text": ...}  a note in the timeline
//   GET  /api/v1/oncall[?at=&schedule=]               who is on call (oncall::AnswerOnCallRequest),
//                                                     the stored overrides included
//   GET  /api/v1/oncall/policies                      the escalation policies of the config
//                                                     (oncall::PoliciesJson)
//   POST/GET /api/v1/overrides, DELETE /api/v1/overrides/{id}   overrides (incidents/overrides.h)
//   GET  /ack/{token}   a page with an "Acknowledge" button (link scanners only GET);
//   POST /ack/{token}   acknowledges with a signed, unexpired link from a page.
// /api/v1 routes take a platform user's bearer token: admin, manager and support
// read; admin and support acknowledge, resolve and write notes; role user is
// refused (incidents name other customers' connectors).

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/request_error.h"
#include "http/types.h"
#include "incidents/engine.h"
#include "oncall/model.h"

namespace bpmc::incidents {

struct Caller {
  std::string name, role;
};
// The shared HTTP layer's request and response (http/include/http/types.h).
using HttpCall = http::Request;
using HttpAnswer = http::Response;

// The caller of a request (a bearer token or a console session), or nullopt
// (missing, unknown, disabled, or a change without the session's CSRF token).
using Authenticator = std::function<std::optional<Caller>(const HttpCall& call)>;

class Api {
 public:
  // `engine` must outlive the Api. Thread-safe.
  Api(Engine& engine, Authenticator authenticate);

  // True when `path` is one of the routes above.
  static bool Owns(std::string_view path);
  // The answer to one call of an owned path (the receiver's bpmc::http routes
  // call it after the HTTP layer authenticated the caller and read the body
  // within the route's limit; it checks the caller again and the role).
  HttpAnswer Answer(const HttpCall& call);

 private:
  HttpAnswer Incidents(const HttpCall& call, const Caller& caller);
  HttpAnswer AckLink(const HttpCall& call);
  HttpAnswer Overrides(const HttpCall& call, const Caller& caller);
  Engine& engine_;
  Authenticator authenticate_;
};

// The value of `name` in a query string ("a=1&b=x%20y"), percent-decoded; nullopt when absent.
std::optional<std::string> QueryValue(std::string_view query, std::string_view name);

// The filters of GET /api/v1/incidents from its query string: `status` (empty or
// triggered, acknowledged, resolved), `connector` (1 to 100 bytes), `limit` (1 to 500,
// default 50), `before` (a positive id). A bad value is a 400 naming it. Pure.
std::variant<IncidentFilter, RequestError> ParseIncidentListQuery(std::string_view query);

// Snooze lengths POST .../snooze accepts.
inline constexpr int64_t kMinSnoozeMicros = 60'000'000;           // 1 minute
inline constexpr int64_t kMaxSnoozeMicros = 24 * 3600'000'000LL;  // 24 hours

// The body of POST /api/v1/incidents/{id}/snooze: {"duration": "30m"} (oncall's
// duration syntax, kMinSnoozeMicros to kMaxSnoozeMicros). Returns microseconds, or
// a 400 naming the field ("" for the body as a whole). Pure.
std::variant<int64_t, RequestError> ParseSnoozeRequest(std::string_view body);

// The body of POST /api/v1/incidents/{id}/reassign: exactly one of {"person": id}
// and {"schedule": id}, known to `config`. A 400 naming the field otherwise. Pure.
std::variant<oncall::Target, RequestError> ParseReassignRequest(std::string_view body,
                                                                const oncall::OnCallConfig& config);

}  // namespace bpmc::incidents
