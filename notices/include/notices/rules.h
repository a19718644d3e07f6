#pragma once
// Pure decisions of the notices library: request validation, who may read
// which feed, notice texts, the per-user request limit. No I/O.

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "notices/texts.h"

namespace bpmc::notices {

// The authenticated caller of an API request (the exporter's `users` row).
struct Caller {
  std::string name;
  std::string role;         // admin | manager | support | user
  std::string customer_id;  // set for role user only
};

// A request error that names the offending field ("ends_at", "connectors[2]").
struct FieldError {
  std::string field;
  std::string message;
};

// The body of POST /api/v1/maintenance, validated.
struct MaintenanceRequest {
  std::vector<std::string> connectors;  // sorted, unique
  int64_t starts_us = 0;
  int64_t ends_us = 0;
  std::string message;
};

// Parses and validates {"connectors": [...], "starts_at": RFC 3339, "ends_at": RFC 3339,
// "message": "..."} at time `now_us`: 1-100 connector ids of [A-Za-z0-9_.-] (at most 50
// characters), ends_at after starts_at and in the future, at most 90 days long, a message
// of 1-2000 characters. Unknown keys are refused.
std::variant<MaintenanceRequest, FieldError> ParseMaintenanceRequest(std::string_view body,
                                                                     int64_t now_us);

// Validates the body of PUT /api/v1/notices/contacts/{customer}: {"emails": [...]}
// (0-20 addresses of the form local@domain, no spaces or commas). Returns them
// sorted and unique, or the error.
std::variant<std::vector<std::string>, FieldError> ParseContactsRequest(std::string_view body);

// Which notices a caller may read from GET /api/v1/notices[?customer=ID].
struct FeedAccess {
  int status = 200;  // 200, or 403 with `error`
  std::string error;
  std::string customer_id;     // whose notices; "" = every customer's (admin without ?customer=)
  bool show_customer = false;  // include each notice's customer_id (admin only)
};
// A `user` reads only its own customer's feed (?customer= of another is 403);
// an admin reads any customer's, or all with no ?customer=; other roles are refused.
FeedAccess DecideFeedAccess(const Caller& caller, std::string_view customer_param);

// POST /api/v1/notices/telegram-link-code: the customer a Telegram link code is for.
// A user: its own customer (the body is {} or names that customer). An admin: the
// body's "customer" (1-100 bytes, required). Other roles: 403. An empty body is {}.
// status 200 with customer_id, or the error (400/403) naming the field. Pure.
struct LinkCodeTarget {
  int status = 200;
  std::string error;
  std::string field;
  std::string customer_id;
};
LinkCodeTarget DecideLinkCodeTarget(const Caller& caller, std::string_view body);

// A connector's state as its subscribers see it (GET /api/v1/notices/status):
// "maintenance" while a window covers now, else "problem" while an incident of
// it is open (acknowledged or not, not muted), else "operational". Pure.
const char* ConnectorStatus(bool in_maintenance, bool open_incident);

// The notice an incident of a connector is due, at `now_us` (docs/NOTICES.md
// "Connector problems"): `connector_problem` when the incident has a connector, is
// not muted, is still unresolved (triggered or acknowledged: acknowledging is not
// fixing) `problem_after_us` after it was created, and got no problem notice yet;
// `connector_resolved` when it is resolved after a problem notice and got no
// resolution notice yet; otherwise none. Pure.
enum class IncidentNotice { kNone, kProblem, kResolved };
struct IncidentFacts {
  std::string connector;  // "" = not a connector's incident
  std::string status;     // triggered | acknowledged | resolved
  bool muted = false;     // opened during maintenance
  int64_t created_us = 0;
  bool problem_noticed = false;
  bool resolved_noticed = false;
};
IncidentNotice DecideIncidentNotice(const IncidentFacts& incident, int64_t now_us,
                                    int64_t problem_after_us);

// PATCH /api/v1/maintenance/{id}: the keys of POST (each optional, at least one)
// over the window's `current` values, validated as a whole like POST at `now_us`.
std::variant<MaintenanceRequest, FieldError> ParseMaintenancePatch(
    std::string_view body, const MaintenanceRequest& current, int64_t now_us);

// Whether a window may still be edited or cancelled: not cancelled, not over
// (ends_at > now). Returns the 409 message, or "" when it may.
std::string WindowLocked(bool cancelled, int64_t ends_us, int64_t now_us);

// PUT /api/v1/notices/preferences/{customer}: {"locale": "ru"|"en", "time_zone":
// IANA name}; a missing key takes its default (ru, Europe/Moscow). Unknown keys are
// refused.
std::variant<CustomerPrefs, FieldError> ParsePreferencesRequest(std::string_view body);

// Sliding-window request limit per key (a user name): at most `limit` requests
// in any `per_us`. Thread-safe. Memory: at most `limit` timestamps per key seen
// in the last window (idle keys are dropped as they are met).
class RequestLimiter {
 public:
  RequestLimiter(int limit, int64_t per_us) : limit_(limit), per_us_(per_us) {}
  // True and counted when the request is allowed; false, and *retry_after_us set
  // to the wait until it would be, when not.
  bool Allow(const std::string& key, int64_t now_us, int64_t* retry_after_us);

 private:
  const int limit_;
  const int64_t per_us_;
  std::mutex mu_;
  std::map<std::string, std::deque<int64_t>> seen_;
};

}  // namespace bpmc::notices
