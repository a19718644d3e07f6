#include "notices/rules.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "common/request_error.h"
#include "common/time.h"
#include "common/time_format.h"

namespace bpmc::notices {
namespace {

using Json = nlohmann::json;

bool ValidConnectorId(const std::string& id) {
  if (id.empty() || id.size() > 50) return false;
  return std::all_of(id.begin(), id.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
  });
}

bool ValidEmail(const std::string& e) {
  const size_t at = e.find('@');
  if (e.size() > 254 || at == std::string::npos || at == 0 || at + 1 >= e.size()) return false;
  if (e.find('@', at + 1) != std::string::npos) return false;
  return std::none_of(e.begin(), e.end(), [](char ch) {
    return ch == ' ' || ch == ',' || ch == '<' || ch == '>' || ch == ';' ||
           static_cast<unsigned char>(ch) < 0x21;
  });
}

// The JSON object of a request body, or the error.
std::variant<Json, FieldError> ParseObject(std::string_view body) {
  Json j = Json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return FieldError{"", "the body is not valid JSON"};
  if (!j.is_object()) return FieldError{"", "the body must be a JSON object"};
  return j;
}

std::optional<FieldError> UnknownKey(const Json& j, const std::set<std::string>& allowed) {
  for (const auto& [k, v] : j.items())
    if (!allowed.count(k)) return FieldError{ClientKeyField(k), "unknown field"};
  return std::nullopt;
}

// An RFC 3339 time of `j[key]`, or the error.
std::variant<int64_t, FieldError> Time(const Json& j, const std::string& key) {
  if (!j.contains(key)) return FieldError{key, "is required"};
  if (!j[key].is_string()) return FieldError{key, "must be an RFC 3339 time string"};
  const auto us = ParseRfc3339Micros(j[key].get<std::string>());
  if (!us) return FieldError{key, "must be an RFC 3339 time like 2026-11-26T10:00:00Z"};
  return *us;
}

std::variant<std::vector<std::string>, FieldError> Connectors(const Json& j) {
  if (!j.contains("connectors")) return FieldError{"connectors", "is required"};
  const Json& arr = j["connectors"];
  if (!arr.is_array() || arr.empty() || arr.size() > 100)
    return FieldError{"connectors", "must be a list of 1 to 100 connector ids"};
  std::set<std::string> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string field = "connectors[" + std::to_string(i) + "]";
    if (!arr[i].is_string() || !ValidConnectorId(arr[i].get<std::string>()))
      return FieldError{field, "must be a connector id of at most 50 characters [A-Za-z0-9_.-]"};
    out.insert(arr[i].get<std::string>());
  }
  return std::vector<std::string>(out.begin(), out.end());
}

}  // namespace

namespace {

// Validates a whole window (POST, or PATCH merged over the stored window).
std::variant<MaintenanceRequest, FieldError> ValidateWindow(const Json& j, int64_t now_us) {
  MaintenanceRequest r;
  auto connectors = Connectors(j);
  if (auto* e = std::get_if<FieldError>(&connectors)) return *e;
  r.connectors = std::get<std::vector<std::string>>(connectors);
  auto starts = Time(j, "starts_at");
  if (auto* e = std::get_if<FieldError>(&starts)) return *e;
  auto ends = Time(j, "ends_at");
  if (auto* e = std::get_if<FieldError>(&ends)) return *e;
  r.starts_us = std::get<int64_t>(starts);
  r.ends_us = std::get<int64_t>(ends);
  if (r.ends_us <= r.starts_us) return FieldError{"ends_at", "must be after starts_at"};
  if (r.ends_us <= now_us) return FieldError{"ends_at", "must be in the future"};
  if (r.ends_us - r.starts_us > 90 * kMicrosPerDay)
    return FieldError{"ends_at", "a window lasts at most 90 days"};
  if (!j.contains("message")) return FieldError{"message", "is required"};
  if (!j["message"].is_string()) return FieldError{"message", "must be a string"};
  r.message = j["message"].get<std::string>();
  if (r.message.empty() || r.message.size() > 2000)
    return FieldError{"message", "must be 1 to 2000 characters"};
  return r;
}

}  // namespace

std::variant<MaintenanceRequest, FieldError> ParseMaintenanceRequest(std::string_view body,
                                                                     int64_t now_us) {
  auto parsed = ParseObject(body);
  if (auto* e = std::get_if<FieldError>(&parsed)) return *e;
  const Json& j = std::get<Json>(parsed);
  if (auto e = UnknownKey(j, {"connectors", "starts_at", "ends_at", "message"})) return *e;
  return ValidateWindow(j, now_us);
}

std::variant<MaintenanceRequest, FieldError> ParseMaintenancePatch(
    std::string_view body, const MaintenanceRequest& current, int64_t now_us) {
  auto parsed = ParseObject(body);
  if (auto* e = std::get_if<FieldError>(&parsed)) return *e;
  Json j = std::get<Json>(parsed);
  if (auto e = UnknownKey(j, {"connectors", "starts_at", "ends_at", "message"})) return *e;
  if (j.empty())
    return FieldError{"", "nothing to change: give connectors, starts_at, ends_at or message"};
  if (!j.contains("connectors")) j["connectors"] = current.connectors;
  if (!j.contains("starts_at")) j["starts_at"] = FormatRfc3339Micros(current.starts_us);
  if (!j.contains("ends_at")) j["ends_at"] = FormatRfc3339Micros(current.ends_us);
  if (!j.contains("message")) j["message"] = current.message;
  return ValidateWindow(j, now_us);
}

std::string WindowLocked(bool cancelled, int64_t ends_us, int64_t now_us) {
  if (cancelled) return "the window is cancelled";
  if (ends_us <= now_us) return "the window is over";
  return "";
}

std::variant<CustomerPrefs, FieldError> ParsePreferencesRequest(std::string_view body) {
  auto parsed = ParseObject(body);
  if (auto* e = std::get_if<FieldError>(&parsed)) return *e;
  const Json& j = std::get<Json>(parsed);
  if (auto e = UnknownKey(j, {"locale", "time_zone"})) return *e;
  CustomerPrefs p;
  if (j.contains("locale")) {
    if (!j["locale"].is_string() || !ValidLocale(j["locale"].get<std::string>()))
      return FieldError{"locale", "must be \"ru\" or \"en\""};
    p.locale = j["locale"].get<std::string>();
  }
  if (j.contains("time_zone")) {
    if (!j["time_zone"].is_string() || !ValidTimeZone(j["time_zone"].get<std::string>()))
      return FieldError{"time_zone", "must be an IANA time zone like Europe/Moscow"};
    p.time_zone = j["time_zone"].get<std::string>();
  }
  return p;
}

IncidentNotice DecideIncidentNotice(const IncidentFacts& i, int64_t now_us,
                                    int64_t problem_after_us) {
  if (i.connector.empty()) return IncidentNotice::kNone;
  if (i.status == "resolved")
    return i.problem_noticed && !i.resolved_noticed ? IncidentNotice::kResolved
                                                    : IncidentNotice::kNone;
  if (i.muted || i.problem_noticed) return IncidentNotice::kNone;
  return now_us - i.created_us >= problem_after_us ? IncidentNotice::kProblem
                                                   : IncidentNotice::kNone;
}

std::variant<std::vector<std::string>, FieldError> ParseContactsRequest(std::string_view body) {
  auto parsed = ParseObject(body);
  if (auto* e = std::get_if<FieldError>(&parsed)) return *e;
  const Json& j = std::get<Json>(parsed);
  if (auto e = UnknownKey(j, {"emails"})) return *e;
  if (!j.contains("emails")) return FieldError{"emails", "is required"};
  const Json& arr = j["emails"];
  if (!arr.is_array() || arr.size() > 20)
    return FieldError{"emails", "must be a list of at most 20 addresses"};
  std::set<std::string> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    if (!arr[i].is_string() || !ValidEmail(arr[i].get<std::string>()))
      return FieldError{"emails[" + std::to_string(i) + "]",
                        "must be an address like ops@example.com"};
    out.insert(arr[i].get<std::string>());
  }
  return std::vector<std::string>(out.begin(), out.end());
}

FeedAccess DecideFeedAccess(const Caller& caller, std::string_view customer_param) {
  FeedAccess a;
  if (caller.role == "user") {
    if (caller.customer_id.empty()) return {403, "this user is bound to no customer", "", false};
    if (!customer_param.empty() && customer_param != caller.customer_id)
      return {403, "customer: a user reads only its own customer's notices", "", false};
    a.customer_id = caller.customer_id;
    return a;
  }
  if (caller.role == "admin") {
    a.customer_id = std::string(customer_param);
    a.show_customer = true;
    return a;
  }
  return {403, "role " + caller.role + " may not read notices", "", false};
}

LinkCodeTarget DecideLinkCodeTarget(const Caller& caller, std::string_view body) {
  if (caller.role != "user" && caller.role != "admin")
    return {403, "role " + caller.role + " may not create notice link codes", "", ""};
  if (caller.role == "user" && caller.customer_id.empty())
    return {403, "this user is bound to no customer", "customer", ""};
  auto parsed = ParseObject(body.empty() ? std::string_view("{}") : body);
  if (auto* e = std::get_if<FieldError>(&parsed)) return {400, e->message, e->field, ""};
  const Json& j = std::get<Json>(parsed);
  if (auto e = UnknownKey(j, {"customer"})) return {400, e->message, e->field, ""};
  std::string customer;
  if (j.contains("customer")) {
    if (!j["customer"].is_string()) return {400, "must be a customer id string", "customer", ""};
    customer = j["customer"].get<std::string>();
    if (customer.empty() || customer.size() > 100 || customer.find('/') != std::string::npos)
      return {400, "must be a customer id of 1 to 100 bytes", "customer", ""};
  }
  if (caller.role == "user") {
    if (!customer.empty() && customer != caller.customer_id)
      return {403, "a user links only its own customer", "customer", ""};
    return {200, "", "", caller.customer_id};
  }
  if (customer.empty()) return {400, "is required (the customer to link)", "customer", ""};
  return {200, "", "", customer};
}

const char* ConnectorStatus(bool in_maintenance, bool open_incident) {
  if (in_maintenance) return "maintenance";
  return open_incident ? "problem" : "operational";
}

bool RequestLimiter::Allow(const std::string& key, int64_t now_us, int64_t* retry_after_us) {
  std::lock_guard<std::mutex> lock(mu_);
  std::deque<int64_t>& q = seen_[key];
  while (!q.empty() && q.front() <= now_us - per_us_) q.pop_front();
  if (static_cast<int>(q.size()) >= limit_) {
    *retry_after_us = q.front() + per_us_ - now_us;
    return false;
  }
  q.push_back(now_us);
  // Forget idle users now and then, so the map does not grow with every user ever seen.
  if (seen_.size() > 4096) {
    for (auto it = seen_.begin(); it != seen_.end();) {
      if (it->second.empty() || it->second.back() <= now_us - per_us_)
        it = seen_.erase(it);
      else
        ++it;
    }
  }
  return true;
}

}  // namespace bpmc::notices
