#include "slack_interactions.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "button_press.h"
#include "common/ids.h"
#include "common/json_depth.h"
#include "notifier/slack_app.h"
#include "notifier/telegram.h"

namespace bpmc::webhook_receiver {
namespace {

using Json = nlohmann::json;

}  // namespace

std::map<std::string, std::string> SlackMembers(const oncall::OnCallConfig& oncall) {
  std::map<std::string, std::string> out;
  for (const auto& [id, person] : oncall.people)
    for (const oncall::ContactMethod& m : person.contact_methods)
      if (m.type == oncall::ContactType::kSlack && !m.address.empty()) out.emplace(m.address, id);
  return out;
}

void SlackInteractions::Failure(const std::string& reason) {
  if (deps_.count_failure) deps_.count_failure(reason);
}

void SlackInteractions::Audit(const std::string& person, std::map<std::string, std::string> params,
                              int status, const std::string& denial, const std::string& ip) {
  if (!deps_.audit) return;
  identity::AuditEntry e;
  if (!person.empty()) e.actor = identity::AuditActor{"", person, ""};
  e.method = "POST";
  e.endpoint = "/v1/slack/interactions";
  e.params = std::move(params);
  e.ip = ip;
  e.allowed = denial.empty();
  e.status = status;
  e.denial = denial;
  deps_.audit->Record(e);
}

http::Response SlackInteractions::Answer(const http::Request& request) {
  const notifier::SlackSignature sig = notifier::VerifySlackSignature(
      deps_.signing_secrets, request.Header("x-slack-request-timestamp"),
      request.Header("x-slack-signature"), request.body, deps_.clock->NowMicros());
  if (sig != notifier::SlackSignature::kOk) {
    Failure("slack_bad_signature");
    const bool stale = sig == notifier::SlackSignature::kStale;
    return http::Error(401,
                       stale ? "the request timestamp is more than 5 minutes from now"
                             : "missing or invalid Slack signature",
                       stale ? "X-Slack-Request-Timestamp" : "X-Slack-Signature");
  }
  const std::string payload = http::ParseQuery(request.body)["payload"];
  if (payload.empty()) return http::Error(400, "payload is required", "payload");
  if (FindTooDeep(payload)) return http::Error(400, "payload is nested too deeply", "payload");
  const Json j = Json::parse(payload, nullptr, false);
  if (!j.is_object()) return http::Error(400, "payload must be a JSON object", "payload");
  if (j.value("type", "") != "block_actions") return http::Text(200, "", "text/plain");
  const Json& user = j.contains("user") && j["user"].is_object() ? j["user"] : Json::object();
  const std::string member = user.value("id", "");
  const Json& actions = j.contains("actions") ? j["actions"] : Json();
  // A button carries actions[0].value; the "Reassign to…" static_select carries
  // actions[0].selected_option.value instead.
  std::string value;
  if (actions.is_array() && !actions.empty() && actions[0].is_object()) {
    const Json& a = actions[0];
    if (a.contains("value") && a["value"].is_string()) {
      value = a["value"].get<std::string>();
    } else if (a.contains("selected_option") && a["selected_option"].is_object() &&
               a["selected_option"].contains("value") &&
               a["selected_option"]["value"].is_string()) {
      value = a["selected_option"]["value"].get<std::string>();
    }
  }
  if (value.empty())
    return http::Error(400, "actions[0].value or actions[0].selected_option.value is required",
                       "payload.actions");
  auto press = notifier::ParseTelegramCallbackData(value);
  // The Telegram-only menu buttons are no Slack action.
  if (press && (press->action == notifier::TelegramAction::kReassignMenu ||
                press->action == notifier::TelegramAction::kReassignBack))
    press.reset();
  std::map<std::string, std::string> params;
  if (press) {
    params = {{"action", PressActionName(press->action)},
              {"incident", std::to_string(press->incident_id)}};
    if (press->action == notifier::TelegramAction::kReassign)
      params["target"] = PressTargetName(*press);
  }
  auto it = deps_.members.find(member);
  if (it == deps_.members.end()) {
    // The authority is the member's contact method, never the button.
    Failure("slack_unmapped_user");
    params["slack_user"] =
        "sha256:" + HexEncode(Sha256("bpmc-slack-user\n" + member)).substr(0, 16);
    Audit("", params, 403, "Slack member not mapped to a person", request.remote_ip);
    return http::Text(200, "", "text/plain");
  }
  const std::string& person = it->second;
  if (!press) {
    Failure("slack_bad_button");
    Audit(person, params, 400, "unknown button", request.remote_ip);
    return http::Error(400, "unknown button value", "payload.actions");
  }
  using Outcome = incidents::Engine::Outcome;
  Outcome outcome = Outcome::kNotFound;
  try {
    if (!FirstSight(request.Header("x-slack-signature"))) {
      Failure("slack_replayed_interaction");
      Audit(person, params, 409, "replayed interaction (signature already acted on)",
            request.remote_ip);
      return http::Text(200, "", "text/plain");
    }
    outcome = ActOnPress(*deps_.engine, *press, person, "slack");
  } catch (const std::exception&) {
    Failure("slack_interaction");
    spdlog::warn("slack: cannot act on a button press now");
    return http::Error(503, "cannot act now; press again", "", {{"Retry-After", "5"}});
  }
  Audit(person, params,
        outcome == Outcome::kDone      ? 200
        : outcome == Outcome::kAlready ? 409
                                       : 404,
        "", request.remote_ip);
  return http::Text(200, "", "text/plain");
}

bool SlackInteractions::FirstSight(const std::string& signature) {
  if (!deps_.pool) return true;
  PgPool::Lease conn = deps_.pool->Acquire();
  try {
    pqxx::work txn(*conn);
    txn.exec0("DELETE FROM slack_interactions_seen WHERE seen_at < now() - interval '10 minutes'");
    const pqxx::result r = txn.exec_params(
        "INSERT INTO slack_interactions_seen (digest) VALUES ($1) ON CONFLICT DO NOTHING",
        HexEncode(Sha256(signature)));
    txn.commit();
    return r.affected_rows() == 1;
  } catch (...) {
    conn.MarkBroken();
    throw;
  }
}

}  // namespace bpmc::webhook_receiver
