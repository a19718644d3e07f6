#include "notifier/slack_app.h"

#include <charconv>

#include "common/ids.h"
#include "notifier/channels.h"
#include "notifier/telegram.h"
#include "notifier/templates.h"

namespace bpmc::notifier {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxSectionText = 3000;  // Block Kit's limit for a section's text

std::string CutUtf8(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  std::string out = s.substr(0, end);
  const size_t amp = out.rfind('&');  // never inside &amp; &lt; &gt;
  if (amp != std::string::npos && out.find(';', amp) == std::string::npos) out.resize(amp);
  return out;
}

// The first line's start. An incident's page brings its own headline in the reader's
// language and zone (annotations.page_headline, shown by the text template): an icon
// only. Other alerts get an English state line in UTC.
std::string StateLine(const AlertView& a) {
  if (!AnnotationOf(a, "page_headline").empty())
    return a.status == "acknowledged" ? ":white_check_mark:"
           : a.status == "resolved"   ? ":large_green_circle:"
           : a.severity == "critical" ? ":red_circle:"
           : a.severity == "warning"  ? ":large_orange_circle:"
                                      : ":large_blue_circle:";
  std::string line;
  if (a.status == "acknowledged") {
    line = ":white_check_mark: *Acknowledged*";
    if (const std::string by = AnnotationOf(a, "acknowledged_by"); !by.empty())
      line += " by " + SlackEscape(by);
    if (const std::string at = UtcClockTime(AnnotationOf(a, "acknowledged_at")); !at.empty())
      line += " at " + at;
  } else if (a.status == "resolved") {
    line = ":large_green_circle: *Resolved*";
    if (const std::string by = AnnotationOf(a, "resolved_by"); !by.empty())
      line += " by " + SlackEscape(by);
  } else {
    line = ":red_circle: *FIRING* " + SlackEscape(a.severity);
  }
  return line;
}

std::string Text(const ChannelConfig& channel, const std::string& destination,
                 const AlertView& alert) {
  const Json ctx = TemplateContext({alert}, channel.name, destination);
  std::string body = Render(channel.slack.title, ctx);
  const std::string text = Render(channel.slack.text, ctx);
  if (!text.empty()) body += "\n" + text;
  const bool page = !AnnotationOf(alert, "page_headline").empty();
  return CutUtf8(StateLine(alert) + (page ? " " : "\n") + body, kMaxSectionText);
}

Json Button(const char* text, TelegramAction action, int64_t id, const char* action_id,
            const char* style) {
  Json b = {{"type", "button"},
            {"text", {{"type", "plain_text"}, {"text", text}}},
            {"action_id", action_id},
            {"value", TelegramCallbackData(action, id)}};
  if (style) b["style"] = style;
  return b;
}

HttpRequest ApiPost(const ChannelConfig& channel, const std::string& method, const Json& body) {
  HttpRequest r;
  r.method = "POST";
  r.url = channel.slack.api_url + "/" + method;
  r.timeout = channel.timeout;
  r.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
  r.headers.emplace_back("Authorization", "Bearer " + channel.slack.bot_token);
  r.body = DumpJson(body);
  return r;
}

}  // namespace

bool IsSlackApp(const ChannelConfig& channel) {
  return channel.type == ChannelType::kSlack && !channel.slack.bot_token.empty();
}

Json SlackAppBlocks(const ChannelConfig& channel, const std::string& destination,
                    const AlertView& alert, const std::vector<ReassignChoice>& choices) {
  Json blocks = Json::array();
  blocks.push_back({{"type", "section"},
                    {"text", {{"type", "mrkdwn"}, {"text", Text(channel, destination, alert)}}}});
  const int64_t id = TelegramIncidentId(alert);
  if (id != 0 && alert.status != "resolved") {
    Json elements = Json::array();
    const bool en = AnnotationOf(alert, "page_locale") == "en";  // ru by default
    if (alert.status == "firing")
      elements.push_back(Button(en ? "Acknowledge" : "Подтвердить", TelegramAction::kAcknowledge,
                                id, "bpmc_ack", "primary"));
    elements.push_back(
        Button(en ? "Resolve" : "Решить", TelegramAction::kResolve, id, "bpmc_resolve", nullptr));
    if (alert.status == "acknowledged")
      elements.push_back(Button(en ? "Snooze 1h" : "Отложить на 1 ч", TelegramAction::kSnooze, id,
                                "bpmc_snooze", nullptr));
    elements.push_back(Button(en ? "Escalate now" : "Эскалировать", TelegramAction::kEscalate, id,
                              "bpmc_escalate", "danger"));
    Json options = Json::array();
    for (const ReassignChoice& c : choices) {
      if (options.size() >= kMaxReassignChoices) break;
      const auto value = TelegramReassignData(id, c.schedule, c.id);
      if (!value) continue;  // over 64 bytes: not offered, as in Telegram
      // Slack's option text is at most 75 characters.
      options.push_back(
          {{"text", {{"type", "plain_text"}, {"text", CutUtf8(c.label, 75)}}}, {"value", *value}});
    }
    if (!options.empty())
      elements.push_back(
          {{"type", "static_select"},
           {"action_id", "bpmc_reassign"},
           {"placeholder",
            {{"type", "plain_text"}, {"text", en ? "Reassign to…" : "Переназначить…"}}},
           {"options", options}});
    blocks.push_back({{"type", "actions"}, {"block_id", "bpmc_incident"}, {"elements", elements}});
  }
  return blocks;
}

HttpRequest SlackPostMessage(const ChannelConfig& channel, const std::string& slack_channel,
                             const std::string& destination, const AlertView& alert,
                             const std::vector<ReassignChoice>& choices) {
  const std::string fallback =
      Render(channel.slack.title, TemplateContext({alert}, channel.name, destination));
  return ApiPost(channel, "chat.postMessage",
                 {{"channel", slack_channel},
                  {"text", CutUtf8(fallback, kMaxSectionText)},
                  {"blocks", SlackAppBlocks(channel, destination, alert, choices)},
                  {"unfurl_links", false}});
}

HttpRequest SlackUpdateMessage(const ChannelConfig& channel, const std::string& slack_channel,
                               const std::string& ts, const std::string& destination,
                               const AlertView& alert, const std::vector<ReassignChoice>& choices) {
  const std::string fallback =
      Render(channel.slack.title, TemplateContext({alert}, channel.name, destination));
  return ApiPost(channel, "chat.update",
                 {{"channel", slack_channel},
                  {"ts", ts},
                  {"text", CutUtf8(fallback, kMaxSectionText)},
                  {"blocks", SlackAppBlocks(channel, destination, alert, choices)}});
}

SlackReply ParseSlackReply(std::string_view body) {
  SlackReply out;
  const Json j = Json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_object()) return out;
  out.ok = j.value("ok", false) == true;
  auto str = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out.error = str("error");
  out.channel = str("channel");
  out.ts = str("ts");
  return out;
}

bool SlackErrorRetryable(const std::string& error) {
  return error == "ratelimited" || error == "internal_error" || error == "fatal_error" ||
         error == "service_unavailable" || error == "request_timeout";
}

SlackSignature VerifySlackSignature(const std::vector<std::string>& secrets,
                                    std::string_view timestamp, std::string_view signature,
                                    std::string_view body, int64_t now_us, int64_t window_s) {
  if (timestamp.empty() || signature.empty()) return SlackSignature::kMissing;
  int64_t ts = 0;
  auto [p, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), ts);
  if (ec != std::errc() || p != timestamp.data() + timestamp.size()) return SlackSignature::kBad;
  const int64_t now_s = now_us / 1000000;
  if (ts < now_s - window_s || ts > now_s + window_s) return SlackSignature::kStale;
  const std::string base = "v0:" + std::string(timestamp) + ":" + std::string(body);
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    const std::string want = "v0=" + HexEncode(HmacSha256(secret, base));
    if (ConstantTimeEquals(want, signature)) return SlackSignature::kOk;
  }
  return SlackSignature::kBad;
}

std::string SlackSignatureFor(const std::string& secret, const std::string& timestamp,
                              std::string_view body) {
  return "v0=" + HexEncode(HmacSha256(secret, "v0:" + timestamp + ":" + std::string(body)));
}

std::optional<SlackSent> FindSlackMessage(pqxx::work& txn, const std::string& channel,
                                          const std::string& destination,
                                          const std::string& thread_key) {
  const pqxx::result r = txn.exec_params(
      "SELECT slack_channel, ts FROM slack_messages WHERE channel = $1 AND destination = $2"
      " AND thread_key = $3",
      channel, destination, thread_key);
  if (r.empty()) return std::nullopt;
  return SlackSent{r[0][0].as<std::string>(), r[0][1].as<std::string>()};
}

void SaveSlackMessage(pqxx::work& txn, const std::string& channel, const std::string& destination,
                      const std::string& thread_key, const SlackSent& sent) {
  txn.exec_params(
      "INSERT INTO slack_messages (channel, destination, thread_key, slack_channel, ts)"
      " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel, destination, thread_key)"
      " DO UPDATE SET slack_channel = EXCLUDED.slack_channel, ts = EXCLUDED.ts,"
      " updated_at = now()",
      channel, destination, thread_key, sent.slack_channel, sent.ts);
}

}  // namespace bpmc::notifier
