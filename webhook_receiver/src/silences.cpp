#include "webhook_receiver/silences.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "common/json_depth.h"
#include "common/pii.h"
#include "common/time_format.h"
#include "notifier/notification.h"
#include "notifier/outbox.h"
#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kPrefix = "/api/v1/silences";
constexpr int64_t kMicrosPerDay = 86'400'000'000;

RequestError Bad(std::string field, std::string message) {
  return RequestError{400, std::move(message), std::move(field)};
}

// An RFC 3339 time at j[key], or the error naming key.
std::variant<int64_t, RequestError> Time(const Json& j, const char* key) {
  if (!j[key].is_string()) return Bad(key, "must be an RFC 3339 time string");
  const auto us = ParseRfc3339Micros(j[key].get<std::string>());
  if (!us) return Bad(key, "must be an RFC 3339 time like 2026-12-07T10:00:00Z");
  return *us;
}

std::variant<std::vector<std::string>, RequestError> Matchers(const Json& j) {
  if (!j.contains("matchers")) return Bad("matchers", "is required");
  const Json& arr = j["matchers"];
  if (!arr.is_array() || arr.empty() || arr.size() > kMaxSilenceMatchers)
    return Bad("matchers", "must be a list of 1 to " + std::to_string(kMaxSilenceMatchers) +
                               " matchers like \"connector=\\\"crm-connector\\\"\"");
  std::vector<std::string> out;
  bool all_match_empty = true;
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string field = "matchers[" + std::to_string(i) + "]";
    if (!arr[i].is_string()) return Bad(field, "must be a string like name=\"value\"");
    const std::string text = arr[i].get<std::string>();
    if (text.empty() || text.size() > kMaxSilenceMatcherBytes)
      return Bad(field, "must be 1 to " + std::to_string(kMaxSilenceMatcherBytes) + " bytes");
    std::string error;
    const std::optional<Matcher> m = Matcher::Parse(text, &error);
    if (!m) return Bad(field, error);
    all_match_empty = all_match_empty && m->Matches(Labels{});
    out.push_back(text);
  }
  if (all_match_empty)
    return Bad("matchers",
               "at least one matcher must not match an empty label (these would silence every "
               "alert)");
  return out;
}

Json SilenceJson(const pqxx::row& r, int64_t now_us) {
  const int64_t starts = r["starts_us"].as<int64_t>(), ends = r["ends_us"].as<int64_t>();
  Json j = {{"id", r["id"].as<int64_t>()},
            {"matchers", Json::parse(r["matchers"].as<std::string>())},
            {"starts_at", FormatRfc3339Micros(starts)},
            {"ends_at", FormatRfc3339Micros(ends)},
            {"comment", r["comment"].as<std::string>()},
            {"created_by", r["created_by"].as<std::string>()},
            {"created_at", FormatRfc3339Micros(r["created_us"].as<int64_t>())},
            {"state", now_us < starts ? "pending"
                      : now_us < ends ? "active"
                                      : "expired"}};
  if (!r["expired_by"].is_null()) j["expired_by"] = r["expired_by"].as<std::string>();
  return j;
}

constexpr const char* kColumns =
    "id, matchers::text AS matchers, comment, created_by, expired_by,"
    " (extract(epoch FROM starts_at) * 1000000)::bigint AS starts_us,"
    " (extract(epoch FROM ends_at) * 1000000)::bigint AS ends_us,"
    " (extract(epoch FROM created_at) * 1000000)::bigint AS created_us";

std::string Ts(int64_t us) { return FormatRfc3339Micros(us); }

bool CanRead(const std::string& role) {
  return role == "admin" || role == "manager" || role == "support";
}
bool CanWrite(const std::string& role) { return role == "admin" || role == "support"; }

http::Response Ok(int status, const Json& body) {
  http::Response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

}  // namespace

std::variant<SilenceRequest, RequestError> ParseSilenceRequest(std::string_view body,
                                                               int64_t now_us) {
  if (auto deep = FindTooDeep(body)) return Bad(*deep, "is nested too deeply");
  const Json j = Json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return Bad("", "the body is not valid JSON");
  if (!j.is_object()) return Bad("", "the body must be a JSON object");
  static const std::set<std::string> kKeys = {"matchers", "starts_at", "ends_at", "comment"};
  for (const auto& [k, v] : j.items())
    if (!kKeys.count(k)) return Bad(ClientKeyField(k), "unknown field");
  SilenceRequest r;
  auto matchers = Matchers(j);
  if (auto* e = std::get_if<RequestError>(&matchers)) return *e;
  r.matchers = std::move(std::get<std::vector<std::string>>(matchers));
  r.starts_us = now_us;
  if (j.contains("starts_at")) {
    auto starts = Time(j, "starts_at");
    if (auto* e = std::get_if<RequestError>(&starts)) return *e;
    r.starts_us = std::get<int64_t>(starts);
  }
  if (!j.contains("ends_at")) return Bad("ends_at", "is required");
  auto ends = Time(j, "ends_at");
  if (auto* e = std::get_if<RequestError>(&ends)) return *e;
  r.ends_us = std::get<int64_t>(ends);
  if (r.ends_us <= r.starts_us) return Bad("ends_at", "must be after starts_at");
  if (r.ends_us <= now_us) return Bad("ends_at", "must be in the future");
  if (r.ends_us - std::max(r.starts_us, now_us) > kMaxSilenceDays * kMicrosPerDay)
    return Bad("ends_at", "a silence lasts at most " + std::to_string(kMaxSilenceDays) + " days");
  if (!j.contains("comment")) return Bad("comment", "is required (why, and for how long)");
  if (!j["comment"].is_string()) return Bad("comment", "must be a string");
  r.comment = j["comment"].get<std::string>();
  if (r.comment.empty() || r.comment.size() > kMaxSilenceCommentBytes)
    return Bad("comment", "must be 1 to " + std::to_string(kMaxSilenceCommentBytes) + " bytes");
  return r;
}

bool SilenceMatches(const std::vector<std::string>& matchers, const Labels& labels) {
  if (matchers.empty()) return false;
  for (const std::string& text : matchers) {
    std::string error;
    const std::optional<Matcher> m = Matcher::Parse(text, &error);
    if (!m || !m->Matches(labels)) return false;
  }
  return true;
}

bool Silenced(pqxx::work& txn, const Labels& labels, int64_t now_us) {
  const pqxx::result active = txn.exec_params(
      "SELECT matchers::text FROM silences"
      " WHERE ends_at > $1::timestamptz AND starts_at <= $1::timestamptz",
      Ts(now_us));
  for (const auto& row : active) {
    const Json arr = Json::parse(row[0].as<std::string>(), nullptr, false);
    if (!arr.is_array()) continue;
    std::vector<std::string> matchers;
    for (const Json& m : arr)
      if (m.is_string()) matchers.push_back(m.get<std::string>());
    if (matchers.size() == arr.size() && SilenceMatches(matchers, labels)) return true;
  }
  return false;
}

int ReleaseEndedSilences(pqxx::work& txn, int64_t now_us, const ReleasePlan& plan, int limit) {
  // Candidates without locks; each is checked again under its alert's lock.
  const pqxx::result candidates = txn.exec_params(
      "SELECT e.id, e.source, e.dedup_key FROM receiver_alert_events e"
      " JOIN receiver_alerts a ON a.source = e.source AND a.dedup_key = e.dedup_key"
      " AND a.last_event_id = e.id AND a.status = 'firing'"
      " WHERE e.outcome = 'silenced' ORDER BY e.id LIMIT $1",
      limit);
  int released = 0;
  for (const auto& c : candidates) {
    const int64_t id = c[0].as<int64_t>();
    txn.exec_params("SELECT pg_advisory_xact_lock($1::bigint)",
                    AlertLockKey(c[1].as<std::string>(), c[2].as<std::string>()));
    const pqxx::result still = txn.exec_params(
        "SELECT e.alert::text FROM receiver_alert_events e"
        " JOIN receiver_alerts a ON a.source = e.source AND a.dedup_key = e.dedup_key"
        " AND a.last_event_id = e.id AND a.status = 'firing'"
        " WHERE e.id = $1 AND e.outcome = 'silenced'",
        id);
    if (still.empty()) continue;
    const Json alert = Json::parse(still[0][0].as<std::string>(), nullptr, false);
    if (!alert.is_object()) continue;
    IncomingAlert incoming;
    incoming.view = notifier::AlertViewFromJson(alert);
    if (Silenced(txn, incoming.view.labels, now_us)) continue;
    incoming.raw_severity = incoming.view.severity;
    const PlannedAlert planned =
        PlanAlert(incoming, *plan.routes, *plan.channels, plan.default_severity);
    std::vector<notifier::OutboxEntry> entries;
    for (const auto& [channel, destination] : planned.recipients)
      entries.push_back({channel, destination, planned.alert.view});
    if (!entries.empty()) notifier::Enqueue(txn, entries);
    txn.exec_params(
        "UPDATE receiver_alert_events SET outcome = $2, notifications = $3,"
        " incident_pending = true WHERE id = $1",
        id, entries.empty() ? "unrouted" : "notified", static_cast<int>(entries.size()));
    ++released;
  }
  return released;
}

SilenceApi::SilenceApi(PgPool& pool, const Clock& clock,
                       std::function<void(const std::string&)> count_failure)
    : pool_(pool), clock_(clock), count_failure_(std::move(count_failure)) {}

template <typename Fn>
http::Response SilenceApi::WithDatabase(Fn fn) {
  try {
    return InPooledTransaction(pool_, fn);
  } catch (const std::exception& e) {
    spdlog::warn("silences: database error: {}", ScrubPii(e.what()));
    if (count_failure_) count_failure_("silences_api");
    return http::Error(503, "the database is not available; retry later", "",
                       {{"Retry-After", "5"}});
  }
}

http::Response SilenceApi::Answer(const http::Request& req) {
  const std::string& role = req.principal_role;
  if (!CanRead(role)) return http::Error(403, "role '" + role + "' may not see silences");
  if (req.path == kPrefix) {
    if (req.method == "POST") return Create(req);
    if (req.method == "GET") return List(req);
    return http::Error(405, "method not allowed", "", {{"Allow", "GET, POST"}});
  }
  const std::string rest = req.path.substr(std::min(req.path.size(), kPrefix.size() + 1));
  int64_t id = 0;
  const bool numeric = !rest.empty() && rest.size() <= 18 &&
                       rest.find_first_not_of("0123456789") == std::string::npos;
  if (req.path.rfind(std::string(kPrefix) + "/", 0) != 0 || !numeric)
    return http::Error(404, "no such silence", "id");
  id = std::stoll(rest);
  if (req.method == "GET") return GetOne(id);
  if (req.method == "DELETE") {
    if (!CanWrite(role)) return http::Error(403, "role '" + role + "' may not end silences");
    return Expire(id, req.principal);
  }
  return http::Error(405, "method not allowed", "", {{"Allow", "GET, DELETE"}});
}

http::Response SilenceApi::Create(const http::Request& req) {
  if (!CanWrite(req.principal_role))
    return http::Error(403, "role '" + req.principal_role + "' may not create silences");
  const int64_t now = clock_.NowMicros();
  auto parsed = ParseSilenceRequest(req.body, now);
  if (auto* e = std::get_if<RequestError>(&parsed))
    return http::Error(e->http_status, e->message, e->field);
  const SilenceRequest& s = std::get<SilenceRequest>(parsed);
  http::Response out = WithDatabase([&](pqxx::work& txn) {
    const pqxx::row r = txn.exec_params1(
        std::string("INSERT INTO silences (matchers, starts_at, ends_at, comment, created_by,"
                    " created_at) VALUES ($1::jsonb, $2::timestamptz, $3::timestamptz, $4, $5,"
                    " $6::timestamptz) RETURNING ") +
            kColumns,
        Json(s.matchers).dump(), Ts(s.starts_us), Ts(s.ends_us), s.comment, req.principal, Ts(now));
    return Ok(201, {{"silence", SilenceJson(r, now)}});
  });
  if (out.status == 201)
    spdlog::info("silences: {} created a silence of {} matcher(s)", req.principal,
                 s.matchers.size());
  return out;
}

http::Response SilenceApi::List(const http::Request& req) {
  const std::string state = http::ParseQuery(req.query)["state"];
  const char* where = nullptr;
  if (state.empty()) {
    where = "ends_at > $1::timestamptz";  // active and pending
  } else if (state == "active") {
    where = "ends_at > $1::timestamptz AND starts_at <= $1::timestamptz";
  } else if (state == "pending") {
    where = "starts_at > $1::timestamptz";
  } else if (state == "expired") {
    where = "ends_at <= $1::timestamptz";
  } else if (state == "all") {
    where = "$1::timestamptz IS NOT NULL";
  } else {
    return http::Error(400, "must be active, pending, expired or all", "state");
  }
  const int64_t now = clock_.NowMicros();
  return WithDatabase([&](pqxx::work& txn) {
    Json list = Json::array();
    // The newest first, at most 1000 (expired ones accumulate).
    for (const auto& r :
         txn.exec_params(std::string("SELECT ") + kColumns + " FROM silences WHERE " + where +
                             " ORDER BY id DESC LIMIT 1000",
                         Ts(now)))
      list.push_back(SilenceJson(r, now));
    return Ok(200, {{"silences", list}});
  });
}

http::Response SilenceApi::GetOne(int64_t id) {
  const int64_t now = clock_.NowMicros();
  return WithDatabase([&](pqxx::work& txn) {
    const pqxx::result r =
        txn.exec_params(std::string("SELECT ") + kColumns + " FROM silences WHERE id = $1", id);
    if (r.empty()) return http::Error(404, "no such silence", "id");
    return Ok(200, {{"silence", SilenceJson(r[0], now)}});
  });
}

http::Response SilenceApi::Expire(int64_t id, const std::string& by) {
  const int64_t now = clock_.NowMicros();
  http::Response out = WithDatabase([&](pqxx::work& txn) {
    // As Alertmanager expires: ends now, and a pending one also starts now (an
    // empty interval); an expired one is left as it is (DELETE is idempotent).
    const pqxx::result r = txn.exec_params(
        std::string("UPDATE silences SET starts_at = least(starts_at, $2::timestamptz),"
                    " ends_at = $2::timestamptz, expired_by = $3"
                    " WHERE id = $1 AND ends_at > $2::timestamptz RETURNING ") +
            kColumns,
        id, Ts(now), by);
    if (!r.empty()) return Ok(200, {{"silence", SilenceJson(r[0], now)}});
    const pqxx::result old =
        txn.exec_params(std::string("SELECT ") + kColumns + " FROM silences WHERE id = $1", id);
    if (old.empty()) return http::Error(404, "no such silence", "id");
    return Ok(200, {{"silence", SilenceJson(old[0], now)}});
  });
  if (out.status == 200) spdlog::info("silences: {} ended silence {}", by, id);
  return out;
}

}  // namespace bpmc::webhook_receiver
