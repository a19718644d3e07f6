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

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string Plural(const std::vector<std::string>& connectors) {
  return connectors.size() == 1 ? "connector " : "connectors ";
}

// "2026-11-26 10:00 UTC".
std::string HumanTime(int64_t us) {
  const std::string t = FormatRfc3339Micros(us);  // YYYY-MM-DDTHH:MM:SS.ffffffZ
  return t.substr(0, 10) + " " + t.substr(11, 5) + " UTC";
}

}  // namespace

std::variant<MaintenanceRequest, FieldError> ParseMaintenanceRequest(std::string_view body,
                                                                     int64_t now_us) {
  auto parsed = ParseObject(body);
  if (auto* e = std::get_if<FieldError>(&parsed)) return *e;
  const Json& j = std::get<Json>(parsed);
  if (auto e = UnknownKey(j, {"connectors", "starts_at", "ends_at", "message"})) return *e;
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

const char* ConnectorStatus(bool in_maintenance, bool open_incident) {
  if (in_maintenance) return "maintenance";
  return open_incident ? "problem" : "operational";
}

NoticeText MaintenanceScheduledText(const std::vector<std::string>& connectors, int64_t starts_us,
                                    int64_t ends_us, const std::string& message) {
  return {"Planned maintenance of " + Plural(connectors) + Join(connectors),
          "Planned maintenance of " + Plural(connectors) + Join(connectors) + " from " +
              HumanTime(starts_us) + " to " + HumanTime(ends_us) + ".\n" + message};
}

NoticeText MaintenanceEndedText(const std::vector<std::string>& connectors,
                                const std::string& message) {
  return {"Maintenance of " + Plural(connectors) + Join(connectors) + " has ended",
          "The planned maintenance of " + Plural(connectors) + Join(connectors) + " has ended.\n(" +
              message + ")"};
}

NoticeText ConnectorProblemText(const std::string& connector, int64_t since_us) {
  return {"Problem with connector " + connector,
          "Connector " + connector + " has had a problem since " + HumanTime(since_us) +
              ". Our engineers are working on it; you will get a notice when it is resolved."};
}

NoticeText ConnectorResolvedText(const std::string& connector, int64_t resolved_us) {
  return {"Connector " + connector + " works again", "The problem with connector " + connector +
                                                         " was resolved at " +
                                                         HumanTime(resolved_us) + "."};
}

NoticeText PaymentFailedText(const std::string& connector, int64_t amount_minor,
                             const std::string& currency, const std::string& reason,
                             int64_t occurred_us) {
  std::string body = "Your payment of " + FormatAmount(amount_minor, currency) + " for connector " +
                     connector + " on " + HumanTime(occurred_us) + " did not go through";
  body += reason.empty() ? "." : " (" + reason + ").";
  body += " Please check your payment method to keep the connector running.";
  return {"Payment for connector " + connector + " failed", body};
}

std::string FormatAmount(int64_t amount_minor, const std::string& currency) {
  const bool negative = amount_minor < 0;
  const uint64_t abs =
      negative ? 0 - static_cast<uint64_t>(amount_minor) : static_cast<uint64_t>(amount_minor);
  std::string cents = std::to_string(abs % 100);
  if (cents.size() < 2) cents = "0" + cents;
  return (negative ? "-" : "") + std::to_string(abs / 100) + "." + cents + " " + currency;
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
