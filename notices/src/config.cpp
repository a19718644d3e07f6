#include "notices/config.h"

#include <set>

#include "common/yaml_keys.h"
#include "oncall/config.h"

namespace bpmc::notices {
namespace {

struct Bad {
  std::string key, message;
};

std::string Key(const std::string& k) { return "notices." + k; }

int64_t Duration(const YAML::Node& node, const std::string& key, int64_t min_us) {
  if (!node.IsScalar()) throw Bad{key, "must be a duration like 30s, 15m, 24h"};
  const auto us = oncall::ParseDurationMicros(node.as<std::string>());
  if (!us)
    throw Bad{key, "must be a duration like 30s, 15m, 24h, got '" + node.as<std::string>() + "'"};
  if (*us < min_us) throw Bad{key, "is too short"};
  return *us;
}

int Count(const YAML::Node& node, const std::string& key) {
  int n = 0;
  try {
    if (!node.IsScalar()) throw Bad{key, "must be a number"};
    n = node.as<int>();
  } catch (const YAML::Exception&) {
    throw Bad{key, "must be a number"};
  }
  if (n < 1 || n > 1000000) throw Bad{key, "must be between 1 and 1000000"};
  return n;
}

void OnlyKeys(const YAML::Node& node, const std::string& key,
              const std::set<std::string>& allowed) {
  if (auto e = CheckOnlyKeys(node, key, allowed)) throw Bad{e->key, e->message};
}

// {<count_key>: N, per: <duration>} into *n and *per_us.
void Limit(const YAML::Node& node, const std::string& key, const std::string& count_key, int* n,
           int64_t* per_us) {
  OnlyKeys(node, key, {count_key, "per"});
  if (!node[count_key] || !node["per"]) throw Bad{key, "needs " + count_key + " and per"};
  *n = Count(node[count_key], key + "." + count_key);
  *per_us = Duration(node["per"], key + ".per", 1000);
}

// templates: {<kind>: {<locale>: {title: "...", body: "..."}}}: each given text
// replaces the built-in one after CheckNoticeTemplate.
void Templates(const YAML::Node& node, NoticeTemplates* out) {
  const std::string key = Key("templates");
  if (!node.IsMap()) throw Bad{key, "must be a mapping of notice kinds"};
  const std::vector<std::string>& kinds = NoticeKinds();
  OnlyKeys(node, key, std::set<std::string>(kinds.begin(), kinds.end()));
  for (const auto& kind_node : node) {
    const std::string kind = kind_node.first.as<std::string>();
    const std::string kind_key = key + "." + kind;
    if (!kind_node.second.IsMap()) throw Bad{kind_key, "must be a mapping of locales (ru, en)"};
    OnlyKeys(kind_node.second, kind_key, {"ru", "en"});
    for (const auto& locale_node : kind_node.second) {
      const std::string locale = locale_node.first.as<std::string>();
      const std::string locale_key = kind_key + "." + locale;
      if (!locale_node.second.IsMap()) throw Bad{locale_key, "must be {title, body}"};
      OnlyKeys(locale_node.second, locale_key, {"title", "body"});
      NoticeTemplate& t = (*out)[{kind, locale}];
      for (const char* part : {"title", "body"}) {
        const YAML::Node text = locale_node.second[part];
        if (!text) continue;
        const std::string part_key = locale_key + "." + part;
        if (!text.IsScalar()) throw Bad{part_key, "must be a template string"};
        const std::string source = text.as<std::string>();
        if (std::string e = CheckNoticeTemplate(source, kind); !e.empty()) throw Bad{part_key, e};
        (std::string(part) == "title" ? t.title : t.body) = source;
      }
    }
  }
}

void Parse(const YAML::Node& node, const notifier::NotifierConfig& channels, NoticesConfig* c) {
  OnlyKeys(node, "notices",
           {"email_channel", "telegram_channel", "maintenance_notice_before",
            "connector_problem_after", "payment_lookback", "poll_interval", "rate_limit",
            "api_rate_limit", "database_connections", "templates"});
  c->enabled = true;
  if (node["email_channel"]) {
    if (!node["email_channel"].IsScalar())
      throw Bad{Key("email_channel"), "must be a channel name"};
    c->email_channel = node["email_channel"].as<std::string>();
    auto it = channels.channels.find(c->email_channel);
    if (it == channels.channels.end())
      throw Bad{Key("email_channel"),
                "unknown channel '" + c->email_channel + "' (not under channels:)"};
    if (it->second.type != notifier::ChannelType::kEmail)
      throw Bad{Key("email_channel"), "channel '" + c->email_channel + "' is not of type email"};
  }
  if (node["telegram_channel"]) {
    if (!node["telegram_channel"].IsScalar())
      throw Bad{Key("telegram_channel"), "must be a channel name"};
    c->telegram_channel = node["telegram_channel"].as<std::string>();
    auto it = channels.channels.find(c->telegram_channel);
    if (it == channels.channels.end())
      throw Bad{Key("telegram_channel"),
                "unknown channel '" + c->telegram_channel + "' (not under channels:)"};
    if (it->second.type != notifier::ChannelType::kTelegram)
      throw Bad{Key("telegram_channel"),
                "channel '" + c->telegram_channel + "' is not of type telegram"};
  }
  if (node["maintenance_notice_before"])
    c->maintenance_notice_before_us =
        Duration(node["maintenance_notice_before"], Key("maintenance_notice_before"), 0);
  if (node["connector_problem_after"])
    c->connector_problem_after_us =
        Duration(node["connector_problem_after"], Key("connector_problem_after"), 0);
  if (node["payment_lookback"])
    c->payment_lookback_us = Duration(node["payment_lookback"], Key("payment_lookback"), 1000000);
  if (node["poll_interval"])
    c->poll_interval_us = Duration(node["poll_interval"], Key("poll_interval"), 10000);
  if (node["rate_limit"])
    Limit(node["rate_limit"], Key("rate_limit"), "notices", &c->email_limit,
          &c->email_limit_per_us);
  if (node["api_rate_limit"])
    Limit(node["api_rate_limit"], Key("api_rate_limit"), "requests", &c->api_limit,
          &c->api_limit_per_us);
  if (node["templates"]) Templates(node["templates"], &c->templates);
  if (node["database_connections"]) {
    c->database_connections = Count(node["database_connections"], Key("database_connections"));
    if (c->database_connections > 64)
      throw Bad{Key("database_connections"), "must be between 1 and 64"};
  }
}

}  // namespace

bool ParseNoticesConfig(const YAML::Node& node, const notifier::NotifierConfig& channels,
                        NoticesConfig* out, std::string* error) {
  if (!node || node.IsNull()) return true;
  try {
    Parse(node, channels, out);
  } catch (const Bad& b) {
    *error = b.key + ": " + b.message;
    return false;
  } catch (const YAML::Exception& e) {
    *error = std::string("notices: ") + e.what();
    return false;
  }
  return true;
}

}  // namespace bpmc::notices
