#include "incidents/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/time.h"
#include "oncall/config.h"

namespace bpmc::incidents {
namespace {

struct Bad {
  std::string key, message;
};

std::string Str(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) throw Bad{key, "must be a scalar"};
  return node.as<std::string>();
}

int64_t Duration(const YAML::Node& node, const std::string& key, int64_t min, int64_t max) {
  const std::string text = Str(node, key);
  auto us = oncall::ParseDurationMicros(text);
  if (!us) throw Bad{key, "must be a duration like 30s, 5m or 1h, got '" + text + "'"};
  if (*us < min || *us > max) throw Bad{key, "is out of range, got '" + text + "'"};
  return *us;
}

// The secret of `<name>_file` or `<name>_env` (at most one; none: "").
std::string Secret(const YAML::Node& node, const std::string& name) {
  const std::string file_key = name + "_file", env_key = name + "_env";
  const YAML::Node file = node[file_key];
  const YAML::Node env = node[env_key];
  if (file && env) throw Bad{"incidents." + file_key, "give " + file_key + " or _env, not both"};
  if (file) {
    const std::string path = Str(file, "incidents." + file_key);
    std::ifstream in(path);
    if (!in) throw Bad{"incidents." + file_key, "cannot read " + path};
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    if (s.size() < 16) throw Bad{"incidents." + file_key, "needs at least 16 characters"};
    return s;
  }
  if (env) {
    const std::string var = Str(env, "incidents." + env_key);
    const char* v = std::getenv(var.c_str());
    if (v == nullptr || *v == '\0')
      throw Bad{"incidents." + env_key, "environment variable " + var + " is not set"};
    if (std::string(v).size() < 16)
      throw Bad{"incidents." + env_key, var + " needs at least 16 characters"};
    return v;
  }
  return "";
}

void Apply(const YAML::Node& node, IncidentsConfig* c) {
  if (!node.IsMap()) throw Bad{"incidents", "must be a mapping"};
  const std::set<std::string> allowed = {"ack_link_secret_env",  "ack_link_secret_file",
                                         "ical_feed_secret_env", "ical_feed_secret_file",
                                         "public_url",           "ack_link_ttl",
                                         "poll_interval",        "event_batch"};
  for (const auto& kv : node) {
    const std::string k = kv.first.as<std::string>();
    if (!allowed.count(k)) throw Bad{"incidents." + k, "unknown key"};
  }
  c->ack_link_secret = Secret(node, "ack_link_secret");
  c->ical_feed_secret = Secret(node, "ical_feed_secret");
  if (node["public_url"]) {
    std::string url = Str(node["public_url"], "incidents.public_url");
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      throw Bad{"incidents.public_url", "must start with http:// or https://"};
    c->public_url = url;
  }
  if (node["ack_link_ttl"])
    c->ack_link_ttl_micros = Duration(node["ack_link_ttl"], "incidents.ack_link_ttl",
                                      60 * kMicrosPerSecond, 30 * 86400 * kMicrosPerSecond);
  if (node["poll_interval"])
    c->poll_interval_micros =
        Duration(node["poll_interval"], "incidents.poll_interval", 10000, 60 * kMicrosPerSecond);
  if (node["event_batch"]) {
    try {
      c->event_batch = node["event_batch"].as<int>();
    } catch (const YAML::Exception&) {
      throw Bad{"incidents.event_batch", "must be an integer"};
    }
    if (c->event_batch < 1 || c->event_batch > 10000)
      throw Bad{"incidents.event_batch", "must be between 1 and 10000"};
  }
}

}  // namespace

bool ParseIncidentsConfig(const YAML::Node& node, IncidentsConfig* out, std::string* error) {
  if (!node || node.IsNull()) return true;
  try {
    Apply(node, out);
  } catch (const Bad& b) {
    *error = b.key + ": " + b.message;
    return false;
  }
  return true;
}

notifier::ChannelType ChannelTypeFor(oncall::ContactType type) {
  switch (type) {
    case oncall::ContactType::kEmail:
      return notifier::ChannelType::kEmail;
    case oncall::ContactType::kSlack:
      return notifier::ChannelType::kSlack;
    case oncall::ContactType::kSms:
      return notifier::ChannelType::kSms;
    case oncall::ContactType::kWebhook:
      return notifier::ChannelType::kWebhook;
    case oncall::ContactType::kPagerDuty:
      return notifier::ChannelType::kPagerDuty;
    case oncall::ContactType::kTelegram:
      return notifier::ChannelType::kTelegram;
  }
  return notifier::ChannelType::kWebhook;
}

std::string DefaultChannelFor(const notifier::NotifierConfig& channels, oncall::ContactType type) {
  for (const auto& [name, ch] : channels.channels)
    if (ch.type == ChannelTypeFor(type)) return name;
  return "";
}

bool ParseOnCallSections(const YAML::Node& root, const notifier::NotifierConfig& channels,
                         oncall::OnCallConfig* out, std::string* error) {
  const oncall::ChannelCheck check = [&](const oncall::ChannelUse& use) -> std::string {
    auto it = channels.channels.find(use.name);
    if (it == channels.channels.end())
      return "unknown channel '" + use.name + "' (not under channels:)";
    if (use.as_type && it->second.type != ChannelTypeFor(*use.as_type))
      return "channel '" + use.name + "' is not of type " + oncall::ContactTypeName(*use.as_type);
    return "";
  };
  if (!oncall::ParseOnCallConfig(root, check, out, error)) return false;
  for (const auto& [id, person] : out->people) {
    for (size_t i = 0; i < person.contact_methods.size(); ++i) {
      const oncall::ContactMethod& m = person.contact_methods[i];
      if (!m.channel.empty() || !DefaultChannelFor(channels, m.type).empty()) continue;
      *error = "people." + id + ".contact_methods[" + std::to_string(i) +
               "].type: no channel of type " + oncall::ContactTypeName(m.type) +
               " under channels: (add one or name it in channel:)";
      return false;
    }
  }
  return true;
}

}  // namespace bpmc::incidents
