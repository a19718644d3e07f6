#pragma once
// The Slack channel in its app form (a bot token instead of an incoming webhook,
// docs/RECEIVER.md "Slack app"): chat.postMessage with Block Kit buttons on incident
// pages, chat.update when the incident changes state, and the verification of
// Slack's interactivity requests. Pure functions, and the notifier's table of sent
// messages (migration 0003_slack_app.sql).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_client.h"
#include "notifier/config.h"
#include "notifier/notification.h"
#include "notifier/telegram.h"

namespace bpmc::notifier {

// True for a Slack channel configured with bot_token (the app form).
bool IsSlackApp(const ChannelConfig& channel);

// The Block Kit of a page: a section (state line, title, summary; mrkdwn, escaped) and, for
// an incident page that is not resolved, an actions block with Acknowledge (while firing),
// Resolve, Snooze 1h (while acknowledged) and Escalate now buttons whose values are the
// Telegram-style "a:<id>" / "r:<id>" / "s:<id>" / "e:<id>", then (when `choices` is not
// empty) a static_select "Reassign to…" (action_id bpmc_reassign) whose options carry
// "p:<id>:<person>" / "q:<id>:<schedule>" (TelegramReassignData; at most 8 that fit 64
// bytes, in the order given).
nlohmann::json SlackAppBlocks(const ChannelConfig& channel, const std::string& destination,
                              const AlertView& alert,
                              const std::vector<ReassignChoice>& choices = {});

// POST <api_url>/chat.postMessage to `slack_channel` (a channel id, or a member id for a
// direct message) and POST <api_url>/chat.update of (`slack_channel`, `ts`), with
// "Authorization: Bearer <bot token>".
HttpRequest SlackPostMessage(const ChannelConfig& channel, const std::string& slack_channel,
                             const std::string& destination, const AlertView& alert,
                             const std::vector<ReassignChoice>& choices = {});
HttpRequest SlackUpdateMessage(const ChannelConfig& channel, const std::string& slack_channel,
                               const std::string& ts, const std::string& destination,
                               const AlertView& alert,
                               const std::vector<ReassignChoice>& choices = {});

// A Web API answer: {"ok":true,"channel":"C1","ts":"1.2"} or {"ok":false,"error":"..."}.
struct SlackReply {
  bool ok = false;
  std::string error, channel, ts;
};
SlackReply ParseSlackReply(std::string_view body);
// Errors worth another attempt (Slack's own trouble); others are permanent.
bool SlackErrorRetryable(const std::string& error);

// Slack's request signature: "v0=" + hex(HMAC-SHA256(signing_secret, "v0:<ts>:<body>")),
// the timestamp within `window_s` of now. `secrets`: every configured app's signing secret.
enum class SlackSignature { kOk, kMissing, kStale, kBad };
SlackSignature VerifySlackSignature(const std::vector<std::string>& secrets,
                                    std::string_view timestamp, std::string_view signature,
                                    std::string_view body, int64_t now_us, int64_t window_s = 300);
// The signature header for `body` at `timestamp` (tests and tools).
std::string SlackSignatureFor(const std::string& secret, const std::string& timestamp,
                              std::string_view body);

// --- The notifier's table of sent Slack messages (throw pqxx exceptions) ----------

struct SlackSent {
  std::string slack_channel, ts;
};
std::optional<SlackSent> FindSlackMessage(pqxx::work& txn, const std::string& channel,
                                          const std::string& destination,
                                          const std::string& thread_key);
void SaveSlackMessage(pqxx::work& txn, const std::string& channel, const std::string& destination,
                      const std::string& thread_key, const SlackSent& sent);

}  // namespace bpmc::notifier
