#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "notifier/mailer.h"

namespace bpmc::notifier {

// How a template's {{values}} are escaped: depends on where the text goes.
enum class Escape {
  kNone,      // plain text (email subject and text part, SMS text, PagerDuty summary)
  kHtml,      // HTML email part
  kSlack,     // Slack mrkdwn: & < > only
  kJson,      // inside a JSON string literal of a request body template
  kForm,      // application/x-www-form-urlencoded value
  kTelegram,  // Telegram's HTML parse mode: & < > " only (it refuses &apos;)
};

// A mustache template that parsed and passed the name check at config load.
struct Template {
  std::string source;
  Escape escape = Escape::kNone;
};

// At most `messages` messages per `per` to one (channel, destination);
// messages == 0 means no limit. What would exceed it is bundled.
struct RateLimit {
  int messages = 0;
  std::chrono::milliseconds per{0};
};

enum class ChannelType { kEmail, kSlack, kSms, kWebhook, kPagerDuty, kTelegram };

struct EmailChannel {
  SmtpSettings smtp;
  std::string from;
  std::vector<std::string> to;  // each address is a destination
  Template subject, text, html;
};

struct SlackChannel {
  std::string url;  // the incoming-webhook URL (a secret); empty for the app form
  // The app form (docs/RECEIVER.md "Slack app"): chat.postMessage with a bot token.
  std::string bot_token;       // xoxb-... (a secret: bot_token_env / bot_token_file)
  std::string channel;         // the channel id posted to for destination ""
  std::string signing_secret;  // verifies POST /v1/slack/interactions (a secret)
  std::string api_url = "https://slack.com/api";
  Template title;  // one line per alert (mrkdwn)
  Template text;   // the alert's body (mrkdwn)
};

struct SmsChannel {
  std::string url;
  std::string method = "POST";
  std::vector<std::pair<std::string, std::string>> headers;  // incl. resolved auth
  std::string content_type = "application/json";
  Template text;  // the SMS text; then cut to `max_parts` SMS (160 GSM-7 / 70 UCS-2 chars each)
  Template body;  // the provider's request body; sees {{to}}, {{text}}, {{part}}, {{parts}}
  std::vector<std::string> to;  // phone numbers, each a destination
  int max_parts = 1;
};

struct WebhookChannel {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string secret;                                 // HMAC-SHA256 key; empty: no signature header
  std::string signature_header = "X-BPMC-Signature";  // value "sha256=<hex of HMAC(body)>"
  bool has_body_template = false;
  Template body;  // optional; default body is the JSON documented in notifier/README
};

struct PagerDutyChannel {
  std::string url = "https://events.pagerduty.com/v2/enqueue";
  std::string routing_key;  // integration key (a secret)
  Template summary;
  std::string component, group, event_class;        // optional payload fields
  std::map<std::string, std::string> severity_map;  // our severity → PD severity
};

// A Telegram bot (Bot API, docs/RECEIVER.md "Telegram"). Destinations are chat ids ("123",
// "-100123" for a group) or "person:<id>" (the chat that person bound with /start).
struct TelegramChannel {
  std::string bot_token;                             // a secret (bot_token_env / bot_token_file)
  std::string api_url = "https://api.telegram.org";  // requests go to <api_url>/bot<token>/<method>
  std::vector<std::string> chat_ids;  // the channel's own destinations (may be empty)
  Template text;                      // HTML (parse_mode HTML), values escaped
  RateLimit group_limit;              // per group chat (negative chat id): 20/min
  int bot_per_second = 30;            // all chats of this bot, per process (0: no limit)
  bool poll_updates = true;           // long-poll getUpdates for button presses and /start
  std::chrono::milliseconds poll_timeout{10000};  // getUpdates' long-poll wait
};

// One named channel from `channels:`. Only the member matching `type` is used.
struct ChannelConfig {
  std::string name;
  ChannelType type = ChannelType::kWebhook;
  RateLimit rate_limit;
  int max_bundle = 50;  // alerts in one bundled message (webhook: 100; PagerDuty never bundles)
  std::chrono::milliseconds timeout{10000};  // one HTTP request
  EmailChannel email;
  SlackChannel slack;
  SmsChannel sms;
  WebhookChannel webhook;
  PagerDutyChannel pagerduty;
  TelegramChannel telegram;
};

// `delivery:`: retries of one outbox row.
struct DeliveryPolicy {
  int max_attempts = 10;
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{300000};
  double jitter = 0.5;  // a retry waits uniformly in [(1 - jitter) * d, d]
  std::chrono::milliseconds max_retry_after{3600000};  // cap on a peer's Retry-After
};

struct NotifierConfig {
  std::map<std::string, ChannelConfig> channels;  // by name
  DeliveryPolicy delivery;
};

// Parses the `channels:` and `delivery:` sections; templates are compiled here. On error returns
// false and sets *error to a message starting with the key path, e.g. "channels.ops-slack.url:
// ...". Either node may be undefined/null (no channels; default policy). Secrets (`*_env`, `*_file`
// keys) are read here from the environment and files.
bool ParseNotifierConfig(const YAML::Node& channels, const YAML::Node& delivery,
                         NotifierConfig* out, std::string* error);

// The recipients a route target expands to, for fan-out into OutboxEntry rows
// (e.g. an SMS channel with three phone numbers gives three destinations).
// Email and SMS: one per address/number; Telegram: one per chat id (none when it has no
// chat_ids: people's contact methods name their chats); other channels: {""}. Unknown: {}.
std::vector<std::string> Destinations(const NotifierConfig&, const std::string& channel);
bool HasChannel(const NotifierConfig&, const std::string& channel);

}  // namespace bpmc::notifier
