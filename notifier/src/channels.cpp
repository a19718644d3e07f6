#include "notifier/channels.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>

#include "common/ids.h"
#include "notifier/sms.h"
#include "notifier/telegram.h"
#include "notifier/templates.h"

namespace bpmc::notifier {
namespace {

using Json = nlohmann::json;

// Slack shows at most this many alerts as attachments; the fallback text lists all.
constexpr size_t kSlackMaxAttachments = 20;
// PagerDuty limits.
constexpr size_t kPdMaxDedupKey = 255;
constexpr size_t kPdMaxSummary = 1024;

HttpRequest JsonPost(const ChannelConfig& channel, const std::string& url, const Message& message,
                     std::string body) {
  HttpRequest r;
  r.method = "POST";
  r.url = url;
  r.timeout = channel.timeout;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Idempotency-Key", message.message_id);
  r.body = std::move(body);
  return r;
}

// Cuts at a UTF-8 character boundary so that the result is at most `max` bytes.
std::string CutUtf8(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return s;
}

Json SlackAttachment(const SlackChannel& slack, const Message& m, const AlertView& a) {
  const Json ctx = TemplateContext({a}, m.channel, m.destination);
  std::string body = Render(slack.title, ctx);
  const std::string text = Render(slack.text, ctx);
  if (!text.empty()) body += "\n" + text;
  std::string meta = "started " + SlackEscape(a.starts_at);
  if (a.status == "resolved" && !a.ends_at.empty()) meta += " · resolved " + SlackEscape(a.ends_at);
  // An unsafe URL loses its link (counted by the Deliverer through DroppedLinks).
  const std::string source = SlackLink(a.generator_url, "Source");
  const std::string runbook = SlackLink(a.runbook_url, "Runbook");
  if (!source.empty()) meta += " · " + source;
  if (!runbook.empty()) meta += " · " + runbook;
  Json blocks = Json::array();
  blocks.push_back(
      {{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", CutUtf8(body, 3000)}}}});
  blocks.push_back(
      {{"type", "context"}, {"elements", Json::array({{{"type", "mrkdwn"}, {"text", meta}}})}});
  // An incident's page: its links as buttons (link buttons work in incoming webhooks).
  Json buttons = Json::array();
  const auto note = [&](const char* k) {
    auto it = a.annotations.find(k);
    return it == a.annotations.end() ? std::string() : it->second;
  };
  for (const auto& [url_key, label_key, style] :
       {std::tuple{"ack_url", "page_ack_label", "danger"},
        std::tuple{"incident_url", "page_open_label", ""}}) {
    const std::string url = note(url_key), label = note(label_key);
    if (label.empty() || !IsSafeLinkUrl(url) || url.size() > 3000) continue;
    Json b = {{"type", "button"},
              {"text", {{"type", "plain_text"}, {"text", CutUtf8(label, 75)}}},
              {"url", url},
              {"action_id", url_key}};
    if (*style) b["style"] = style;
    buttons.push_back(std::move(b));
  }
  if (!buttons.empty()) blocks.push_back({{"type", "actions"}, {"elements", buttons}});
  return {{"color", SlackColor(a)}, {"blocks", blocks}};
}

HttpRequest BuildSlack(const ChannelConfig& channel, const Message& m) {
  const SlackChannel& slack = channel.slack;
  // The fallback text (notifications, screen readers) lists every alert, one line each.
  std::string fallback;
  int firing = 0;
  for (const AlertView& a : m.alerts) {
    if (!fallback.empty()) fallback += "\n";
    fallback += OneLine(Render(slack.title, TemplateContext({a}, m.channel, m.destination)));
    firing += a.status == "firing" ? 1 : 0;
  }
  Json payload;
  Json attachments = Json::array();
  for (size_t i = 0; i < m.alerts.size() && i < kSlackMaxAttachments; ++i) {
    attachments.push_back(SlackAttachment(slack, m, m.alerts[i]));
  }
  if (m.alerts.size() > 1) {
    const std::string head = "*" + std::to_string(m.alerts.size()) + " alerts* (" +
                             std::to_string(firing) + " firing, " +
                             std::to_string(m.alerts.size() - static_cast<size_t>(firing)) +
                             " resolved), bundled by the rate limit";
    Json blocks = Json::array();
    blocks.push_back({{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", head}}}});
    if (m.alerts.size() > kSlackMaxAttachments) {
      const std::string more = "…and " + std::to_string(m.alerts.size() - kSlackMaxAttachments) +
                               " more (listed in the notification text)";
      attachments.push_back(
          {{"color", "#999999"},
           {"blocks",
            Json::array({{{"type", "context"},
                          {"elements", Json::array({{{"type", "mrkdwn"}, {"text", more}}})}}})}});
    }
    payload["blocks"] = blocks;
    fallback = head + "\n" + fallback;
  }
  payload["text"] = fallback;
  payload["attachments"] = attachments;
  return JsonPost(channel, slack.url, m, DumpJson(payload));
}

std::vector<HttpRequest> BuildSms(const ChannelConfig& channel, const Message& m) {
  const SmsChannel& sms = channel.sms;
  const Json ctx = TemplateContext(m.alerts, m.channel, m.destination);
  const std::vector<std::string> parts = SplitSms(Render(sms.text, ctx), sms.max_parts);
  std::vector<HttpRequest> out;
  for (size_t i = 0; i < parts.size(); ++i) {
    Json body_ctx = ctx;
    body_ctx["to"] = m.destination;
    body_ctx["text"] = parts[i];
    body_ctx["part"] = std::to_string(i + 1);
    body_ctx["parts"] = std::to_string(parts.size());
    HttpRequest r;
    r.method = sms.method;
    r.url = sms.url;
    r.timeout = channel.timeout;
    r.headers.emplace_back("Content-Type", sms.content_type);
    r.headers.emplace_back("Idempotency-Key", parts.size() == 1
                                                  ? m.message_id
                                                  : m.message_id + "-" + std::to_string(i + 1));
    r.headers.insert(r.headers.end(), sms.headers.begin(), sms.headers.end());
    r.body = Render(sms.body, body_ctx);
    out.push_back(std::move(r));
  }
  return out;
}

HttpRequest BuildWebhook(const ChannelConfig& channel, const Message& m) {
  const WebhookChannel& hook = channel.webhook;
  std::string body;
  if (hook.has_body_template) {
    Json ctx = TemplateContext(m.alerts, m.channel, m.destination);
    ctx["message_id"] = m.message_id;
    body = Render(hook.body, ctx);
  } else {
    bool any_firing = false;
    Json alerts = Json::array();
    for (const AlertView& a : m.alerts) {
      alerts.push_back(ToJson(a));
      any_firing = any_firing || a.status == "firing";
    }
    body = DumpJson(Json{{"version", "1"},
                         {"message_id", m.message_id},
                         {"channel", m.channel},
                         {"status", any_firing ? "firing" : "resolved"},
                         {"count", m.alerts.size()},
                         {"alerts", alerts}});
  }
  HttpRequest r = JsonPost(channel, hook.url, m, std::move(body));
  r.headers.insert(r.headers.end(), hook.headers.begin(), hook.headers.end());
  if (!hook.secret.empty()) {
    r.headers.emplace_back(hook.signature_header,
                           "sha256=" + HexEncode(HmacSha256(hook.secret, r.body)));
  }
  return r;
}

std::string PagerDutyDedupKey(const AlertView& a) {
  const std::string key = a.dedup_key.empty() ? a.alertname : a.dedup_key;
  return key.size() <= kPdMaxDedupKey ? key : HexEncode(Sha256(key));
}

HttpRequest BuildPagerDuty(const ChannelConfig& channel, const Message& m) {
  const PagerDutyChannel& pd = channel.pagerduty;
  const AlertView& a = m.alerts.front();  // PagerDuty never bundles: one event per alert
  Json event{{"routing_key", pd.routing_key}, {"dedup_key", PagerDutyDedupKey(a)}};
  if (a.status == "resolved") {
    event["event_action"] = "resolve";  // PagerDuty needs only the trigger's key
  } else if (a.status == "acknowledged") {
    event["event_action"] = "acknowledge";  // an incident's acknowledgement (incidents/)
  } else {
    event["event_action"] = "trigger";
    std::string source = a.labels.count("instance") ? a.labels.at("instance") : a.source;
    if (source.empty()) source = "bpmc";
    Json payload{
        {"summary",
         CutUtf8(OneLine(Render(pd.summary, TemplateContext({a}, m.channel, m.destination))),
                 kPdMaxSummary)},
        {"source", source},
        {"severity", PagerDutySeverity(pd, a.severity)},
        {"custom_details",
         {{"description", a.description},
          {"labels", a.labels},
          {"annotations", a.annotations},
          {"source", a.source}}}};
    if (!a.starts_at.empty()) payload["timestamp"] = a.starts_at;
    if (!pd.component.empty()) payload["component"] = pd.component;
    if (!pd.group.empty()) payload["group"] = pd.group;
    if (!pd.event_class.empty())
      payload["class"] = pd.event_class;
    else if (!a.alertname.empty())
      payload["class"] = a.alertname;
    event["payload"] = payload;
    Json links = Json::array();
    const bool source_ok = IsSafeLinkUrl(a.generator_url);
    if (source_ok) links.push_back({{"href", a.generator_url}, {"text", "Source"}});
    if (IsSafeLinkUrl(a.runbook_url))
      links.push_back({{"href", a.runbook_url}, {"text", "Runbook"}});
    if (!links.empty()) event["links"] = links;
    event["client"] = "BPM Centr";
    if (source_ok) event["client_url"] = a.generator_url;
  }
  return JsonPost(channel, pd.url, m, DumpJson(event));
}

}  // namespace

// PagerDuty keeps one incident per event; a Telegram page carries its own buttons.
bool CanBundle(const ChannelConfig& channel) {
  return channel.type != ChannelType::kPagerDuty && channel.type != ChannelType::kTelegram &&
         !(channel.type == ChannelType::kSlack && !channel.slack.bot_token.empty());
}

std::vector<HttpRequest> BuildHttpRequests(const ChannelConfig& channel, const Message& message) {
  switch (channel.type) {
    case ChannelType::kSlack:
      return {BuildSlack(channel, message)};
    case ChannelType::kSms:
      return BuildSms(channel, message);
    case ChannelType::kWebhook:
      return {BuildWebhook(channel, message)};
    case ChannelType::kPagerDuty:
      return {BuildPagerDuty(channel, message)};
    case ChannelType::kTelegram:
      return {TelegramSendMessage(channel, message.destination, message.alerts.front())};
    case ChannelType::kEmail:
      break;
  }
  return {};
}

MailMessage BuildMail(const ChannelConfig& channel, const Message& m) {
  const EmailChannel& email = channel.email;
  const Json ctx = TemplateContext(m.alerts, m.channel, m.destination);
  MailMessage mail;
  mail.from = email.from;
  mail.to = {m.destination};
  mail.subject = OneLine(Render(email.subject, ctx));  // no header injection
  mail.text = Render(email.text, ctx);
  mail.html = Render(email.html, ctx);
  mail.message_id = m.message_id + "@bpmc";
  // An incident's mails share a thread (incidents/model.h PageView): its first page
  // to this address is the thread's root, the others refer to it.
  if (m.alerts.size() == 1) {
    const auto& notes = m.alerts.front().annotations;
    if (auto t = notes.find("mail_thread"); t != notes.end() && !t->second.empty()) {
      if (notes.count("mail_thread_root"))
        mail.message_id = t->second;
      else
        mail.in_reply_to = t->second;
    }
  }
  return mail;
}

std::string SlackEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

bool IsSafeLinkUrl(const std::string& url) {
  const auto starts = [&](const char* prefix) {
    const size_t n = std::char_traits<char>::length(prefix);
    if (url.size() <= n) return false;
    for (size_t i = 0; i < n; ++i) {
      if (std::tolower(static_cast<unsigned char>(url[i])) != prefix[i]) return false;
    }
    return true;
  };
  if (!starts("http://") && !starts("https://")) return false;
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '<' || c == '>' || c == '|' || u <= 0x20 || u == 0x7F) return false;
  }
  return true;
}

std::string SlackLink(const std::string& url, const std::string& text) {
  if (!IsSafeLinkUrl(url)) return "";
  std::string escaped_url;
  for (char c : url) escaped_url += c == '&' ? std::string("&amp;") : std::string(1, c);
  return "<" + escaped_url + "|" + SlackEscape(text) + ">";
}

int DroppedLinks(const ChannelConfig& channel, const Message& message) {
  if (channel.type != ChannelType::kSlack && channel.type != ChannelType::kPagerDuty) return 0;
  int dropped = 0;
  size_t shown = message.alerts.size();
  if (channel.type == ChannelType::kSlack) shown = std::min(shown, kSlackMaxAttachments);
  if (channel.type == ChannelType::kPagerDuty) shown = std::min<size_t>(shown, 1);
  for (size_t i = 0; i < shown; ++i) {
    const AlertView& a = message.alerts[i];
    if (channel.type == ChannelType::kPagerDuty &&
        (a.status == "resolved" || a.status == "acknowledged")) {
      continue;  // resolve and acknowledge events carry no links
    }
    for (const std::string* url : {&a.generator_url, &a.runbook_url}) {
      if (!url->empty() && !IsSafeLinkUrl(*url)) ++dropped;
    }
  }
  return dropped;
}

std::string SlackColor(const AlertView& a) {
  if (a.status == "resolved") return "#2EB67D";
  if (a.severity == "critical") return "#E01E5A";
  if (a.severity == "warning") return "#ECB22E";
  return "#36C5F0";
}

std::string PagerDutySeverity(const PagerDutyChannel& channel, const std::string& severity) {
  auto it = channel.severity_map.find(severity);
  if (it != channel.severity_map.end()) return it->second;
  return severity == "critical" || severity == "error" || severity == "warning" ? severity : "info";
}

}  // namespace bpmc::notifier
