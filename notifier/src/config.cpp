#include "notifier/config.h"

#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include "common/process.h"
#include "default_templates.h"
#include "encoding.h"
#include "notifier/templates.h"

namespace bpmc::notifier {
namespace {

// Thrown inside this file only; ParseNotifierConfig turns it into its result.
struct ConfigError {
  std::string message;  // "<key path>: <problem>"
};

[[noreturn]] void Fail(const std::string& path, const std::string& problem) {
  throw ConfigError{path + ": " + problem};
}

std::string Join(const std::string& path, const std::string& key) { return path + "." + key; }

void RequireMap(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) Fail(path, "must be a mapping");
}

void CheckKeys(const YAML::Node& node, const std::string& path,
               const std::set<std::string>& allowed) {
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (!allowed.count(key)) Fail(Join(path, key), "unknown key");
  }
}

template <typename T>
T As(const YAML::Node& node, const std::string& path, const char* what) {
  try {
    if (!node.IsScalar()) Fail(path, std::string("must be ") + what);
    return node.as<T>();
  } catch (const YAML::Exception&) {
    Fail(path, std::string("must be ") + what);
  }
}

std::string Str(const YAML::Node& map, const std::string& key, const std::string& path,
                const std::string& fallback) {
  const YAML::Node n = map[key];
  return n ? As<std::string>(n, Join(path, key), "a string") : fallback;
}

double Num(const YAML::Node& map, const std::string& key, const std::string& path, double fallback,
           double min, double max) {
  const YAML::Node n = map[key];
  if (!n) return fallback;
  const double v = As<double>(n, Join(path, key), "a number");
  if (!std::isfinite(v) || v < min || v > max) {
    std::ostringstream ss;
    ss << "must be between " << min << " and " << max;
    Fail(Join(path, key), ss.str());
  }
  return v;
}

int Int(const YAML::Node& map, const std::string& key, const std::string& path, int fallback,
        int min, int max) {
  const YAML::Node n = map[key];
  if (!n) return fallback;
  const int v = As<int>(n, Join(path, key), "an integer");
  if (v < min || v > max) {
    Fail(Join(path, key), "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return v;
}

bool Bool(const YAML::Node& map, const std::string& key, const std::string& path, bool fallback) {
  const YAML::Node n = map[key];
  return n ? As<bool>(n, Join(path, key), "true or false") : fallback;
}

std::chrono::milliseconds Seconds(const YAML::Node& map, const std::string& key,
                                  const std::string& path, std::chrono::milliseconds fallback,
                                  double min, double max) {
  const double fb = static_cast<double>(fallback.count()) / 1000.0;
  return std::chrono::milliseconds(std::llround(Num(map, key, path, fb, min, max) * 1000.0));
}

std::vector<std::string> StrList(const YAML::Node& map, const std::string& key,
                                 const std::string& path) {
  const YAML::Node n = map[key];
  std::vector<std::string> out;
  if (!n) return out;
  const std::string p = Join(path, key);
  if (n.IsScalar()) return {As<std::string>(n, p, "a string or a list of strings")};
  if (!n.IsSequence()) Fail(p, "must be a list of strings");
  for (size_t i = 0; i < n.size(); ++i) {
    out.push_back(As<std::string>(n[i], p + "[" + std::to_string(i) + "]", "a string"));
  }
  return out;
}

std::string ReadFileTrimmed(const std::string& file, const std::string& path) {
  std::optional<std::string> text = ReadTrimmedFile(file);
  if (!text) Fail(path, "cannot read " + file);
  return *text;
}

// A value given as `base` (only when allow_plain: not a secret), `base_env`
// (an environment variable's name) or `base_file` (a file holding it). At most
// one of them. Returns "" when none is given.
std::string SecretOrValue(const YAML::Node& map, const std::string& base, const std::string& path,
                          bool allow_plain, bool required) {
  const bool plain = map[base].IsDefined(), env = map[base + "_env"].IsDefined(),
             file = map[base + "_file"].IsDefined();
  if (plain + env + file > 1)
    Fail(Join(path, base), "give only one of " + base + ", " + base + "_env, " + base + "_file");
  if (plain && !allow_plain) {
    Fail(Join(path, base), "is a secret: use " + base + "_env or " + base + "_file");
  }
  std::string value;
  if (plain) value = Str(map, base, path, "");
  if (env) {
    const std::string var = Str(map, base + "_env", path, "");
    const char* v = std::getenv(var.c_str());
    if (v == nullptr || *v == '\0')
      Fail(Join(path, base + "_env"), "environment variable " + var + " is not set");
    value = v;
  }
  if (file) value = ReadFileTrimmed(Str(map, base + "_file", path, ""), Join(path, base + "_file"));
  if (required && value.empty()) {
    Fail(Join(path, base), "is required (" + std::string(allow_plain ? base + ", " : "") + base +
                               "_env or " + base + "_file)");
  }
  return value;
}

Template Tmpl(const YAML::Node& map, const std::string& key, const std::string& path,
              const char* fallback, Escape escape, const std::vector<std::string>& extra = {}) {
  Template t;
  t.escape = escape;
  t.source = map[key] ? As<std::string>(map[key], Join(path, key), "a string") : fallback;
  if (std::string e = CheckTemplate(t.source, extra); !e.empty()) Fail(Join(path, key), e);
  return t;
}

std::string RequireHttpUrl(const std::string& url, const std::string& path) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    Fail(path, "must be an http:// or https:// URL");
  }
  return url;
}

std::vector<std::pair<std::string, std::string>> Headers(const YAML::Node& map,
                                                         const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  const YAML::Node h = map["headers"];
  if (h) {
    RequireMap(h, Join(path, "headers"));
    for (const auto& kv : h) {
      const std::string name = kv.first.as<std::string>();
      out.emplace_back(name,
                       As<std::string>(kv.second, Join(Join(path, "headers"), name), "a string"));
    }
  }
  // auth: {bearer_token_env|_file} or {username, password_env|_file}: secrets kept out of YAML.
  const YAML::Node auth = map["auth"];
  if (auth) {
    const std::string p = Join(path, "auth");
    RequireMap(auth, p);
    CheckKeys(auth, p,
              {"bearer_token", "bearer_token_env", "bearer_token_file", "username", "password",
               "password_env", "password_file"});
    const std::string token = SecretOrValue(auth, "bearer_token", p, false, false);
    if (!token.empty()) {
      out.emplace_back("Authorization", "Bearer " + token);
    } else {
      const std::string user = Str(auth, "username", p, "");
      if (user.empty()) Fail(p, "needs bearer_token_env/_file or username + password_env/_file");
      const std::string password = SecretOrValue(auth, "password", p, false, true);
      out.emplace_back("Authorization", "Basic " + Base64Encode(user + ":" + password));
    }
  }
  return out;
}

const std::set<std::string> kCommonKeys = {"type", "rate_limit", "max_bundle", "timeout_seconds"};

std::set<std::string> With(std::set<std::string> keys) {
  keys.insert(kCommonKeys.begin(), kCommonKeys.end());
  return keys;
}

void ParseEmail(const YAML::Node& n, const std::string& path, EmailChannel* e) {
  CheckKeys(n, path,
            With({"smtp", "from", "to", "subject_template", "text_template", "html_template"}));
  const YAML::Node smtp = n["smtp"];
  const std::string sp = Join(path, "smtp");
  if (!smtp) Fail(sp, "is required");
  RequireMap(smtp, sp);
  CheckKeys(smtp, sp,
            {"url", "starttls", "username", "password", "password_env", "password_file", "ca_file",
             "verify_tls", "timeout_seconds"});
  e->smtp.url = Str(smtp, "url", sp, "");
  if (e->smtp.url.rfind("smtp://", 0) != 0 && e->smtp.url.rfind("smtps://", 0) != 0) {
    Fail(Join(sp, "url"), "must be an smtp:// or smtps:// URL");
  }
  const std::string starttls = Str(smtp, "starttls", sp, "required");
  if (starttls == "required")
    e->smtp.starttls = SmtpSettings::StartTls::kRequired;
  else if (starttls == "optional")
    e->smtp.starttls = SmtpSettings::StartTls::kOptional;
  else if (starttls == "none")
    e->smtp.starttls = SmtpSettings::StartTls::kNone;
  else
    Fail(Join(sp, "starttls"), "must be required, optional or none");
  e->smtp.username = Str(smtp, "username", sp, "");
  e->smtp.password = SecretOrValue(smtp, "password", sp, false, !e->smtp.username.empty());
  e->smtp.ca_file = Str(smtp, "ca_file", sp, "");
  e->smtp.verify_tls = Bool(smtp, "verify_tls", sp, true);
  e->smtp.timeout = Seconds(smtp, "timeout_seconds", sp, e->smtp.timeout, 0.1, 600);
  e->from = Str(n, "from", path, "");
  if (e->from.find('@') == std::string::npos) Fail(Join(path, "from"), "must be an email address");
  e->to = StrList(n, "to", path);
  if (e->to.empty()) Fail(Join(path, "to"), "needs at least one address");
  for (size_t i = 0; i < e->to.size(); ++i) {
    if (e->to[i].find('@') == std::string::npos ||
        e->to[i].find_first_of("<> \r\n") != std::string::npos) {
      Fail(Join(path, "to") + "[" + std::to_string(i) + "]", "must be a bare email address");
    }
  }
  e->subject = Tmpl(n, "subject_template", path, defaults::kEmailSubject, Escape::kNone);
  e->text = Tmpl(n, "text_template", path, defaults::kEmailText, Escape::kNone);
  e->html = Tmpl(n, "html_template", path, defaults::kEmailHtml, Escape::kHtml);
}

void ParseSlack(const YAML::Node& n, const std::string& path, SlackChannel* s) {
  CheckKeys(n, path,
            With({"url", "url_env", "url_file", "title_template", "text_template", "bot_token",
                  "bot_token_env", "bot_token_file", "channel", "signing_secret",
                  "signing_secret_env", "signing_secret_file", "api_url"}));
  const bool app = n["bot_token"] || n["bot_token_env"] || n["bot_token_file"];
  if (app) {
    if (n["url"] || n["url_env"] || n["url_file"])
      Fail(Join(path, "url"), "give either url (an incoming webhook) or bot_token (an app)");
    s->bot_token = SecretOrValue(n, "bot_token", path, false, true);
    s->channel = Str(n, "channel", path, "");
    if (s->channel.empty() || s->channel.find_first_of(" \t\r\n/") != std::string::npos)
      Fail(Join(path, "channel"), "is required with bot_token (a channel id like C0123ABCD)");
    s->signing_secret = SecretOrValue(n, "signing_secret", path, false, true);
    s->api_url = RequireHttpUrl(Str(n, "api_url", path, s->api_url), Join(path, "api_url"));
    while (!s->api_url.empty() && s->api_url.back() == '/') s->api_url.pop_back();
  } else {
    for (const char* key :
         {"channel", "signing_secret", "signing_secret_env", "signing_secret_file", "api_url"})
      if (n[key]) Fail(Join(path, key), "only with bot_token (the app form)");
    s->url = RequireHttpUrl(SecretOrValue(n, "url", path, true, true), Join(path, "url"));
  }
  s->title = Tmpl(n, "title_template", path, defaults::kSlackTitle, Escape::kSlack);
  s->text = Tmpl(n, "text_template", path, defaults::kSlackText, Escape::kSlack);
}

void ParseSms(const YAML::Node& n, const std::string& path, SmsChannel* s) {
  CheckKeys(n, path,
            With({"url", "method", "headers", "auth", "content_type", "text_template",
                  "body_template", "to", "max_parts"}));
  s->url = RequireHttpUrl(Str(n, "url", path, ""), Join(path, "url"));
  s->method = Str(n, "method", path, "POST");
  if (s->method != "POST" && s->method != "PUT") Fail(Join(path, "method"), "must be POST or PUT");
  s->headers = Headers(n, path);
  s->content_type = Str(n, "content_type", path, "application/json");
  const bool form = s->content_type.rfind("application/x-www-form-urlencoded", 0) == 0;
  const bool json = s->content_type.find("json") != std::string::npos;
  if (!form && !json) {
    Fail(Join(path, "content_type"),
         "must be application/json or application/x-www-form-urlencoded");
  }
  s->text = Tmpl(n, "text_template", path, defaults::kSmsText, Escape::kNone);
  s->body = Tmpl(n, "body_template", path, form ? defaults::kSmsFormBody : defaults::kSmsJsonBody,
                 form ? Escape::kForm : Escape::kJson, {"to", "text", "part", "parts"});
  s->to = StrList(n, "to", path);
  if (s->to.empty()) Fail(Join(path, "to"), "needs at least one phone number");
  s->max_parts = Int(n, "max_parts", path, 1, 1, 10);
}

void ParseWebhook(const YAML::Node& n, const std::string& path, WebhookChannel* w) {
  CheckKeys(n, path,
            With({"url", "url_env", "url_file", "headers", "auth", "secret", "secret_env",
                  "secret_file", "signature_header", "body_template"}));
  w->url = RequireHttpUrl(SecretOrValue(n, "url", path, true, true), Join(path, "url"));
  w->headers = Headers(n, path);
  w->secret = SecretOrValue(n, "secret", path, false, false);
  w->signature_header = Str(n, "signature_header", path, w->signature_header);
  if (n["body_template"]) {
    w->has_body_template = true;
    w->body = Tmpl(n, "body_template", path, "", Escape::kJson, {"message_id"});
  }
}

void ParsePagerDuty(const YAML::Node& n, const std::string& path, PagerDutyChannel* p) {
  CheckKeys(n, path,
            With({"url", "routing_key", "routing_key_env", "routing_key_file", "summary_template",
                  "component", "group", "class", "severity_map"}));
  p->url = RequireHttpUrl(Str(n, "url", path, p->url), Join(path, "url"));
  p->routing_key = SecretOrValue(n, "routing_key", path, false, true);
  p->summary = Tmpl(n, "summary_template", path, defaults::kPagerDutySummary, Escape::kNone);
  p->component = Str(n, "component", path, "");
  p->group = Str(n, "group", path, "");
  p->event_class = Str(n, "class", path, "");
  p->severity_map = {{"critical", "critical"}, {"warning", "warning"}, {"info", "info"}};
  if (const YAML::Node m = n["severity_map"]) {
    const std::string mp = Join(path, "severity_map");
    RequireMap(m, mp);
    CheckKeys(m, mp, {"critical", "warning", "info"});
    for (const auto& kv : m) {
      const std::string key = kv.first.as<std::string>();
      const std::string v = As<std::string>(kv.second, Join(mp, key), "a string");
      if (v != "critical" && v != "error" && v != "warning" && v != "info") {
        Fail(Join(mp, key), "must be critical, error, warning or info");
      }
      p->severity_map[key] = v;
    }
  }
}

void ParseTelegram(const YAML::Node& n, const std::string& path, TelegramChannel* t) {
  CheckKeys(n, path,
            With({"bot_token_env", "bot_token_file", "bot_token", "api_url", "chat_ids",
                  "text_template", "group_rate_limit", "bot_messages_per_second", "poll_updates",
                  "poll_timeout_seconds"}));
  t->bot_token = SecretOrValue(n, "bot_token", path, false, true);
  // The token goes into request paths: Telegram's are <digits>:<base64url-ish>.
  if (t->bot_token.find_first_of("/?#% \t\r\n") != std::string::npos)
    Fail(Join(path, "bot_token"), "is not a Telegram bot token (123456:ABC-...)");
  t->api_url = RequireHttpUrl(Str(n, "api_url", path, t->api_url), Join(path, "api_url"));
  while (!t->api_url.empty() && t->api_url.back() == '/') t->api_url.pop_back();
  t->chat_ids = StrList(n, "chat_ids", path);
  for (size_t i = 0; i < t->chat_ids.size(); ++i) {
    const std::string& c = t->chat_ids[i];
    const size_t digits = c.size() - (c.rfind('-', 0) == 0 ? 1 : 0);
    if (digits == 0 || digits > 20 ||
        c.find_first_not_of("0123456789", c.size() - digits) != std::string::npos)
      Fail(Join(path, "chat_ids") + "[" + std::to_string(i) + "]",
           "must be a numeric chat id (negative for groups)");
  }
  t->text = Tmpl(n, "text_template", path, defaults::kTelegramText, Escape::kTelegram);
  t->group_limit = {20, std::chrono::seconds(60)};
  if (const YAML::Node g = n["group_rate_limit"]) {
    const std::string p = Join(path, "group_rate_limit");
    RequireMap(g, p);
    CheckKeys(g, p, {"messages", "per_seconds"});
    t->group_limit.messages = Int(g, "messages", p, 20, 1, 100000);
    t->group_limit.per = Seconds(g, "per_seconds", p, std::chrono::seconds(60), 0.001, 86400);
  }
  t->bot_per_second = Int(n, "bot_messages_per_second", path, 30, 0, 1000);
  t->poll_updates = Bool(n, "poll_updates", path, true);
  t->poll_timeout = Seconds(n, "poll_timeout_seconds", path, t->poll_timeout, 0, 50);
}

// Defaults that match the peers: Slack takes about one message a second per
// hook; SMS and email at most one a minute per person (GoAlert's rule);
// PagerDuty about 120 events a minute per integration key. A generic webhook
// gets 20 requests a second: beyond that its alerts arrive in bundles (the
// `alerts` array), as Alertmanager's own webhook groups them.
RateLimit DefaultRateLimit(ChannelType type) {
  using std::chrono::seconds;
  switch (type) {
    case ChannelType::kSlack:
      return {1, seconds(1)};
    case ChannelType::kSms:
      return {1, seconds(60)};
    case ChannelType::kEmail:
      return {1, seconds(60)};
    case ChannelType::kPagerDuty:
      return {120, seconds(60)};
    case ChannelType::kWebhook:
      return {20, seconds(1)};
    case ChannelType::kTelegram:
      return {1, seconds(1)};  // Telegram: about one message a second per chat
  }
  return {};
}

RateLimit ParseRateLimit(const YAML::Node& n, const std::string& path, ChannelType type) {
  const YAML::Node r = n["rate_limit"];
  if (!r) return DefaultRateLimit(type);
  const std::string p = Join(path, "rate_limit");
  if (r.IsScalar() && r.as<std::string>() == "none") return {};
  RequireMap(r, p);
  CheckKeys(r, p, {"messages", "per_seconds"});
  RateLimit limit;
  limit.messages = Int(r, "messages", p, 1, 1, 100000);
  limit.per = Seconds(r, "per_seconds", p, std::chrono::seconds(1), 0.001, 86400);
  return limit;
}

ChannelConfig ParseChannel(const std::string& name, const YAML::Node& n) {
  const std::string path = "channels." + name;
  RequireMap(n, path);
  ChannelConfig c;
  c.name = name;
  const std::string type = Str(n, "type", path, "");
  if (type == "email")
    c.type = ChannelType::kEmail;
  else if (type == "slack")
    c.type = ChannelType::kSlack;
  else if (type == "sms")
    c.type = ChannelType::kSms;
  else if (type == "webhook")
    c.type = ChannelType::kWebhook;
  else if (type == "pagerduty")
    c.type = ChannelType::kPagerDuty;
  else if (type == "telegram")
    c.type = ChannelType::kTelegram;
  else
    Fail(Join(path, "type"), "must be email, slack, sms, webhook, pagerduty or telegram");
  c.rate_limit = ParseRateLimit(n, path, c.type);
  c.max_bundle = Int(n, "max_bundle", path, c.type == ChannelType::kWebhook ? 100 : 50, 1, 1000);
  c.timeout = Seconds(n, "timeout_seconds", path, c.timeout, 0.1, 600);
  switch (c.type) {
    case ChannelType::kEmail:
      ParseEmail(n, path, &c.email);
      break;
    case ChannelType::kSlack:
      ParseSlack(n, path, &c.slack);
      break;
    case ChannelType::kSms:
      ParseSms(n, path, &c.sms);
      break;
    case ChannelType::kWebhook:
      ParseWebhook(n, path, &c.webhook);
      break;
    case ChannelType::kPagerDuty:
      ParsePagerDuty(n, path, &c.pagerduty);
      break;
    case ChannelType::kTelegram:
      ParseTelegram(n, path, &c.telegram);
      break;
  }
  return c;
}

DeliveryPolicy ParseDelivery(const YAML::Node& n) {
  DeliveryPolicy d;
  if (!n || n.IsNull()) return d;
  const std::string path = "delivery";
  RequireMap(n, path);
  CheckKeys(n, path,
            {"max_attempts", "initial_backoff_seconds", "max_backoff_seconds", "jitter",
             "max_retry_after_seconds"});
  d.max_attempts = Int(n, "max_attempts", path, d.max_attempts, 1, 1000);
  d.initial_backoff = Seconds(n, "initial_backoff_seconds", path, d.initial_backoff, 0.001, 86400);
  d.max_backoff = Seconds(n, "max_backoff_seconds", path, d.max_backoff, 0.001, 86400);
  if (d.max_backoff < d.initial_backoff) {
    Fail(Join(path, "max_backoff_seconds"), "must not be less than initial_backoff_seconds");
  }
  d.jitter = Num(n, "jitter", path, d.jitter, 0.0, 1.0);
  d.max_retry_after = Seconds(n, "max_retry_after_seconds", path, d.max_retry_after, 0, 86400);
  return d;
}

}  // namespace

bool ParseNotifierConfig(const YAML::Node& channels, const YAML::Node& delivery,
                         NotifierConfig* out, std::string* error) {
  try {
    NotifierConfig config;
    if (channels && !channels.IsNull()) {
      RequireMap(channels, "channels");
      for (const auto& kv : channels) {
        const std::string name = kv.first.as<std::string>();
        if (name.empty() || name.find_first_of(" \t\r\n.") != std::string::npos) {
          Fail("channels." + name, "a channel name must be non-empty, without spaces or dots");
        }
        config.channels[name] = ParseChannel(name, kv.second);
      }
    }
    config.delivery = ParseDelivery(delivery);
    *out = std::move(config);
    return true;
  } catch (const ConfigError& e) {
    *error = e.message;
    return false;
  } catch (const YAML::Exception& e) {
    *error = "channels: " + std::string(e.what());
    return false;
  }
}

std::vector<std::string> Destinations(const NotifierConfig& config, const std::string& channel) {
  auto it = config.channels.find(channel);
  if (it == config.channels.end()) return {};
  switch (it->second.type) {
    case ChannelType::kEmail:
      return it->second.email.to;
    case ChannelType::kSms:
      return it->second.sms.to;
    case ChannelType::kTelegram:
      return it->second.telegram.chat_ids;
    default:
      return {""};
  }
}

bool HasChannel(const NotifierConfig& config, const std::string& channel) {
  return config.channels.count(channel) > 0;
}

}  // namespace bpmc::notifier
