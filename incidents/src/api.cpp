#include "incidents/api.h"

#include <spdlog/spdlog.h>

#include "common/json_depth.h"
#include "common/pii.h"
#include "incidents/links.h"
#include "oncall/api.h"
#include "oncall/config.h"
#include "parse.h"

namespace bpmc::incidents {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kIncidentsPrefix = "/api/v1/incidents";
constexpr std::string_view kOverridesPrefix = "/api/v1/overrides";
constexpr std::string_view kAckPrefix = "/ack/";
constexpr size_t kMaxNote = 4000;
constexpr size_t kMaxConnector = 100;
constexpr std::string_view kOnCallPath = "/api/v1/oncall";
constexpr std::string_view kPoliciesPath = "/api/v1/oncall/policies";

HttpAnswer JsonAnswer(int status, const Json& body) {
  HttpAnswer a;
  a.status = status;
  a.body = notifier::DumpJson(body) + "\n";
  return a;
}

HttpAnswer Error(int status, const std::string& message, const std::string& field = "") {
  return http::Error(status, message, field);
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

HttpAnswer Html(int status, const std::string& title, const std::string& body_html) {
  HttpAnswer a;
  a.status = status;
  a.content_type = "text/html; charset=utf-8";
  a.body =
      "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
      "content=\"width=device-width\"><title>" +
      HtmlEscape(title) + "</title></head><body><h1>" + HtmlEscape(title) + "</h1>" + body_html +
      "</body></html>\n";
  for (const auto& [name, value] : kAckPageHeaders) a.headers.emplace_back(name, value);
  return a;
}

// A positive id.
bool ParseId(std::string_view s, int64_t* out) { return ParseDecimal(s, out) && *out > 0; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool CanRead(const Caller& c) {
  return c.role == "admin" || c.role == "manager" || c.role == "support";
}
bool CanWrite(const Caller& c) { return c.role == "admin" || c.role == "support"; }

HttpAnswer OutcomeAnswer(
    Engine::Outcome out, int64_t id, const char* done_status,
    const char* conflict = "the incident is already acknowledged or resolved") {
  switch (out) {
    case Engine::Outcome::kDone:
      return JsonAnswer(200, {{"status", "ok"}, {"id", id}, {"incident_status", done_status}});
    case Engine::Outcome::kAlready:
      return JsonAnswer(409,
                        {{"error", conflict}, {"message", conflict}, {"field", ""}, {"id", id}});
    case Engine::Outcome::kNotFound:
      break;
  }
  return Error(404, "no such incident");
}

}  // namespace

std::optional<std::string> QueryValue(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (PercentDecode(pair.substr(0, eq)) == name)
      return eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::variant<IncidentFilter, RequestError> ParseIncidentListQuery(std::string_view query) {
  IncidentFilter f;
  f.status = QueryValue(query, "status").value_or("");
  if (!f.status.empty() && f.status != "triggered" && f.status != "acknowledged" &&
      f.status != "resolved")
    return RequestError{400, "status must be triggered, acknowledged or resolved", "status"};
  if (auto c = QueryValue(query, "connector")) {
    if (c->empty() || c->size() > kMaxConnector)
      return RequestError{
          400, "connector must have 1 to " + std::to_string(kMaxConnector) + " bytes", "connector"};
    f.connector = std::move(*c);
  }
  int64_t limit = 50;
  if (auto l = QueryValue(query, "limit"); l && (!ParseId(*l, &limit) || limit > 500))
    return RequestError{400, "limit must be between 1 and 500", "limit"};
  f.limit = static_cast<int>(limit);
  if (auto b = QueryValue(query, "before"); b && !ParseId(*b, &f.before))
    return RequestError{400, "before must be an incident id", "before"};
  return f;
}

namespace {

// A JSON object body with only `keys`, or the error (400, naming the field).
std::variant<Json, RequestError> ObjectBody(std::string_view body,
                                            std::initializer_list<const char*> keys) {
  if (auto deep = FindTooDeep(body)) return RequestError{400, "is nested too deeply", *deep};
  Json j = Json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return RequestError{400, "the body is not valid JSON", ""};
  if (!j.is_object()) return RequestError{400, "the body must be a JSON object", ""};
  for (const auto& item : j.items()) {
    bool known = false;
    for (const char* k : keys) known = known || item.key() == k;
    if (!known) return RequestError{400, "unknown field", item.key().substr(0, 64)};
  }
  return j;
}

}  // namespace

std::variant<int64_t, RequestError> ParseSnoozeRequest(std::string_view body) {
  auto parsed = ObjectBody(body, {"duration"});
  if (auto* e = std::get_if<RequestError>(&parsed)) return *e;
  const Json& j = std::get<Json>(parsed);
  const char* kRange = "must be a duration from 1m to 24h, like \"30m\" or \"1h30m\"";
  if (!j.contains("duration")) return RequestError{400, "is required", "duration"};
  if (!j["duration"].is_string()) return RequestError{400, kRange, "duration"};
  const std::string& text = j["duration"].get_ref<const std::string&>();
  const auto us = text.size() > 32 ? std::nullopt : oncall::ParseDurationMicros(text);
  if (!us || *us < kMinSnoozeMicros || *us > kMaxSnoozeMicros)
    return RequestError{400, kRange, "duration"};
  return *us;
}

std::variant<oncall::Target, RequestError> ParseReassignRequest(
    std::string_view body, const oncall::OnCallConfig& config) {
  auto parsed = ObjectBody(body, {"person", "schedule"});
  if (auto* e = std::get_if<RequestError>(&parsed)) return *e;
  const Json& j = std::get<Json>(parsed);
  if (j.contains("person") == j.contains("schedule"))
    return RequestError{400, "give exactly one of person and schedule", "person"};
  const char* field = j.contains("person") ? "person" : "schedule";
  if (!j[field].is_string()) return RequestError{400, "must be a string", field};
  const std::string& id = j[field].get_ref<const std::string&>();
  oncall::Target t;
  t.id = id;
  if (j.contains("person")) {
    t.kind = oncall::Target::Kind::kPerson;
    if (!config.people.count(id))
      return RequestError{400, "unknown person '" + id.substr(0, 64) + "'", field};
  } else {
    t.kind = oncall::Target::Kind::kSchedule;
    if (!config.schedules.count(id))
      return RequestError{400, "unknown schedule '" + id.substr(0, 64) + "'", field};
  }
  return t;
}

Api::Api(Engine& engine, Authenticator authenticate)
    : engine_(engine), authenticate_(std::move(authenticate)) {}

bool Api::Owns(std::string_view path) {
  if (path == kOnCallPath || path == kPoliciesPath || path == kIncidentsPrefix) return true;
  if (path == kOverridesPrefix || path.rfind(std::string(kOverridesPrefix) + "/", 0) == 0)
    return true;
  if (path.rfind(std::string(kIncidentsPrefix) + "/", 0) == 0) return true;
  return path.rfind(kAckPrefix, 0) == 0;
}

HttpAnswer Api::Answer(const HttpCall& call) {
  try {
    if (call.path.rfind(kAckPrefix, 0) == 0) return AckLink(call);
    std::optional<Caller> caller = authenticate_ ? authenticate_(call) : std::nullopt;
    if (!caller) {
      HttpAnswer a = Error(401, "a platform user's bearer token is required", "Authorization");
      a.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"bpmc-receiver\"");
      return a;
    }
    if (!CanRead(*caller)) return Error(403, "role '" + caller->role + "' may not see incidents");
    if (call.path.rfind(kOverridesPrefix, 0) == 0) return Overrides(call, *caller);
    if (call.path == kPoliciesPath) {
      if (call.method != "GET") return Error(405, "method not allowed");
      return JsonAnswer(200, oncall::PoliciesJson(engine_.options().oncall));
    }
    if (call.path == kOnCallPath) {
      if (call.method != "GET") return Error(405, "method not allowed");
      const oncall::OnCallHttpAnswer a = oncall::AnswerOnCallRequest(
          engine_.OnCallWithOverrides(), QueryValue(call.query, "at"),
          QueryValue(call.query, "schedule"),
          engine_.options().clock ? *engine_.options().clock : SystemClock::Get());
      return JsonAnswer(a.status, a.body);
    }
    return Incidents(call, *caller);
  } catch (const std::exception& e) {
    spdlog::warn("incidents API: {}", ScrubPii(e.what()));
    if (engine_.options().count_failure) engine_.options().count_failure("incident_api");
    HttpAnswer a = Error(503, "the database is unavailable; retry later");
    a.headers.emplace_back("Retry-After", "5");
    return a;
  }
}

HttpAnswer Api::Incidents(const HttpCall& call, const Caller& caller) {
  std::string_view rest = std::string_view(call.path).substr(kIncidentsPrefix.size());
  if (rest.empty() || rest == "/") {
    if (call.method != "GET") return Error(405, "method not allowed");
    auto filter = ParseIncidentListQuery(call.query);
    if (auto* e = std::get_if<RequestError>(&filter))
      return Error(e->http_status, e->message, e->field);
    Json list = Json::array();
    for (const IncidentRecord& i : engine_.List(std::get<IncidentFilter>(filter)))
      list.push_back(IncidentJson(i, false));
    return JsonAnswer(200, {{"incidents", list}});
  }
  rest.remove_prefix(1);
  const size_t slash = rest.find('/');
  int64_t id = 0;
  if (!ParseId(rest.substr(0, slash), &id)) return Error(404, "no such incident");
  const std::string_view action =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (action.empty() || action == "report") {
    if (call.method != "GET") return Error(405, "method not allowed");
    const auto incident = engine_.Load(id);
    if (!incident) return Error(404, "no such incident");
    if (action.empty()) return JsonAnswer(200, IncidentJson(*incident, true));
    HttpAnswer a;
    a.content_type = "text/markdown; charset=utf-8";
    a.body = ReportMarkdown(*incident);
    return a;
  }
  if (action != "ack" && action != "resolve" && action != "notes" && action != "escalate" &&
      action != "snooze" && action != "reassign")
    return Error(404, "no such endpoint");
  if (call.method != "POST") return Error(405, "method not allowed");
  if (!CanWrite(caller)) return Error(403, "role '" + caller.role + "' may not change incidents");
  if (action == "ack")
    return OutcomeAnswer(engine_.Acknowledge(id, caller.name, "api"), id, "acknowledged");
  if (action == "resolve") return OutcomeAnswer(engine_.Resolve(id, caller.name), id, "resolved");
  if (action == "escalate")
    return OutcomeAnswer(engine_.EscalateNow(id, caller.name), id, "triggered",
                         "the incident is resolved or has no escalation policy");
  if (action == "snooze") {
    auto duration = ParseSnoozeRequest(call.body);
    if (auto* e = std::get_if<RequestError>(&duration))
      return Error(e->http_status, e->message, e->field);
    return OutcomeAnswer(engine_.Snooze(id, caller.name, std::get<int64_t>(duration)), id,
                         "acknowledged", "only an acknowledged incident can be snoozed");
  }
  if (action == "reassign") {
    auto target = ParseReassignRequest(call.body, engine_.options().oncall);
    if (auto* e = std::get_if<RequestError>(&target))
      return Error(e->http_status, e->message, e->field);
    return OutcomeAnswer(engine_.Reassign(id, caller.name, std::get<oncall::Target>(target)), id,
                         "triggered", "the incident is resolved");
  }
  if (FindTooDeep(call.body)) return Error(400, "the body must be {\"text\": \"...\"}", "text");
  const Json body = Json::parse(call.body, nullptr, false);
  if (!body.is_object() || !body.contains("text") || !body["text"].is_string())
    return Error(400, "the body must be {\"text\": \"...\"}", "text");
  const std::string text = body["text"].get<std::string>();
  if (text.empty() || text.size() > kMaxNote)
    return Error(400, "text must have 1 to " + std::to_string(kMaxNote) + " bytes", "text");
  return OutcomeAnswer(engine_.AddNote(id, caller.name, text), id, "noted");
}

HttpAnswer Api::Overrides(const HttpCall& call, const Caller& caller) {
  if (call.path == kOverridesPrefix) {
    if (call.method == "GET")
      return JsonAnswer(200,
                        {{"overrides", engine_.Overrides(QueryValue(call.query, "all") == "1")}});
    if (call.method != "POST") return Error(405, "method not allowed");
    if (!CanWrite(caller))
      return Error(403, "role '" + caller.role + "' may not change on-call overrides");
    auto added = engine_.AddOverride(call.body, caller.name);
    if (auto* e = std::get_if<RequestError>(&added))
      return Error(e->http_status, e->message, e->field);
    return JsonAnswer(201, {{"override", std::get<Json>(added)}});
  }
  int64_t id = 0;
  if (!ParseId(std::string_view(call.path).substr(kOverridesPrefix.size() + 1), &id))
    return Error(404, "no such override", "id");
  if (call.method != "DELETE") return Error(405, "method not allowed");
  if (!CanWrite(caller))
    return Error(403, "role '" + caller.role + "' may not change on-call overrides");
  const std::optional<Json> cancelled = engine_.CancelOverride(id, caller.name);
  if (!cancelled) return Error(404, "no such override", "id");
  return JsonAnswer(200, {{"override", *cancelled}});
}

HttpAnswer Api::AckLink(const HttpCall& call) {
  const std::string& secret = engine_.options().config.ack_link_secret;
  if (secret.empty()) return Html(404, "Not found", "<p>Acknowledgement links are off.</p>");
  const std::string token = call.path.substr(kAckPrefix.size());
  AckClaim claim;
  const LinkCheck check = VerifyAckToken(secret, token, engine_.NowMicros() / 1000000, &claim);
  if (check == LinkCheck::kExpired)
    return Html(410, "Link expired", "<p>This acknowledgement link has expired.</p>");
  if (check != LinkCheck::kOk)
    return Html(404, "Not found", "<p>This is not a valid acknowledgement link.</p>");
  const std::string who = claim.person.empty() ? "link" : claim.person;
  if (call.method == "GET") {
    return Html(200, "Acknowledge incident #" + std::to_string(claim.incident_id),
                "<form method=\"post\"><button type=\"submit\">Acknowledge as " + HtmlEscape(who) +
                    "</button></form>");
  }
  if (call.method != "POST") return Html(405, "Method not allowed", "");
  const Engine::Outcome out = engine_.Acknowledge(claim.incident_id, who, "link");
  if (out == Engine::Outcome::kNotFound) return Html(404, "Not found", "<p>No such incident.</p>");
  return Html(200, "Incident #" + std::to_string(claim.incident_id),
              out == Engine::Outcome::kDone ? "<p>Acknowledged. Escalation stopped.</p>"
                                            : "<p>Already acknowledged or resolved.</p>");
}

}  // namespace bpmc::incidents
