#include "webhook_receiver/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "common/logging.h"
#include "common/process.h"
#include "common/yaml_keys.h"
#include "http/route.h"     // ParseCidr
#include "oncall/config.h"  // ParseDurationMicros
#include "webhook_receiver/severity.h"

namespace bpmc::webhook_receiver {
namespace {

// Thrown while walking the YAML, caught once in LoadConfigYaml.
struct Bad {
  std::string key;
  std::string message;
};

template <typename T>
T Scalar(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) throw Bad{key, "must be a scalar"};
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw Bad{key, "has the wrong type"};
  }
}

void RequireMap(const YAML::Node& node, const std::string& key) {
  if (!node.IsMap()) throw Bad{key, "must be a mapping"};
}

// Checks that `node` (a mapping) has only `allowed` keys.
void OnlyKeys(const YAML::Node& node, const std::string& key,
              const std::set<std::string>& allowed) {
  if (auto e = CheckOnlyKeys(node, key, allowed, "(root)")) throw Bad{e->key, e->message};
}

// A secret from `<prefix>_file` or `<prefix>_env` in `node` (exactly one).
std::string Secret(const YAML::Node& node, const std::string& key, const std::string& prefix) {
  const YAML::Node file = node[prefix + "_file"];
  const YAML::Node env = node[prefix + "_env"];
  if (file && env) throw Bad{key, "give " + prefix + "_file or " + prefix + "_env, not both"};
  if (file) {
    const std::string path = Scalar<std::string>(file, key + "." + prefix + "_file");
    auto s = ReadTrimmedFile(path);
    if (!s) throw Bad{key + "." + prefix + "_file", "cannot read " + path};
    if (s->empty()) throw Bad{key + "." + prefix + "_file", path + " is empty"};
    return *s;
  }
  if (env) {
    const std::string name = Scalar<std::string>(env, key + "." + prefix + "_env");
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0')
      throw Bad{key + "." + prefix + "_env", "environment variable " + name + " is not set"};
    return v;
  }
  throw Bad{key, prefix + "_file or " + prefix + "_env is required"};
}

AuthConfig ParseAuth(const YAML::Node& node) {
  AuthConfig auth;
  OnlyKeys(node, "auth", {"bearer_tokens", "basic_auth", "allow_query_token", "insecure_no_auth"});
  if (const YAML::Node tokens = node["bearer_tokens"]) {
    if (!tokens.IsSequence()) throw Bad{"auth.bearer_tokens", "must be a list"};
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string key = "auth.bearer_tokens[" + std::to_string(i) + "]";
      OnlyKeys(tokens[i], key, {"token_file", "token_env"});
      auth.bearer_tokens.push_back(Secret(tokens[i], key, "token"));
    }
  }
  if (const YAML::Node users = node["basic_auth"]) {
    if (!users.IsSequence()) throw Bad{"auth.basic_auth", "must be a list"};
    for (size_t i = 0; i < users.size(); ++i) {
      const std::string key = "auth.basic_auth[" + std::to_string(i) + "]";
      OnlyKeys(users[i], key, {"username", "password_file", "password_env"});
      if (!users[i]["username"]) throw Bad{key + ".username", "is required"};
      AuthConfig::BasicUser u;
      u.username = Scalar<std::string>(users[i]["username"], key + ".username");
      if (u.username.empty() || u.username.find(':') != std::string::npos)
        throw Bad{key + ".username", "must be non-empty and without ':'"};
      u.password = Secret(users[i], key, "password");
      auth.basic_users.push_back(std::move(u));
    }
  }
  if (node["allow_query_token"])
    auth.allow_query_token = Scalar<bool>(node["allow_query_token"], "auth.allow_query_token");
  if (node["insecure_no_auth"])
    auth.insecure_no_auth = Scalar<bool>(node["insecure_no_auth"], "auth.insecure_no_auth");
  return auth;
}

void AddMatchers(const YAML::Node& node, const std::string& key, Matcher::Op op,
                 std::vector<Matcher>* out) {
  RequireMap(node, key);
  for (const auto& kv : node) {
    const std::string name = kv.first.as<std::string>();
    const std::string value = Scalar<std::string>(kv.second, key + "." + name);
    try {
      out->emplace_back(name, op, value);
    } catch (const std::invalid_argument& e) {
      throw Bad{key + "." + name, "bad regex '" + value + "': " + e.what()};
    }
  }
}

RouteNode ParseRoute(const YAML::Node& node, const std::string& key, const RouteNode* parent,
                     const notifier::NotifierConfig& channels) {
  OnlyKeys(node, key,
           {"name", "match", "match_re", "matchers", "notify", "escalation_policy", "continue",
            "routes"});
  RouteNode r;
  r.name = node["name"] ? Scalar<std::string>(node["name"], key + ".name") : key;
  if (node["match"]) AddMatchers(node["match"], key + ".match", Matcher::Op::kEqual, &r.matchers);
  if (node["match_re"])
    AddMatchers(node["match_re"], key + ".match_re", Matcher::Op::kRegex, &r.matchers);
  if (const YAML::Node ms = node["matchers"]) {
    if (!ms.IsSequence()) throw Bad{key + ".matchers", "must be a list"};
    for (size_t i = 0; i < ms.size(); ++i) {
      const std::string k = key + ".matchers[" + std::to_string(i) + "]";
      std::string error;
      auto m = Matcher::Parse(Scalar<std::string>(ms[i], k), &error);
      if (!m) throw Bad{k, error};
      r.matchers.push_back(std::move(*m));
    }
  }
  if (const YAML::Node notify = node["notify"]) {
    if (!notify.IsSequence()) throw Bad{key + ".notify", "must be a list of channel names"};
    for (size_t i = 0; i < notify.size(); ++i) {
      const std::string k = key + ".notify[" + std::to_string(i) + "]";
      const std::string ch = Scalar<std::string>(notify[i], k);
      if (!notifier::HasChannel(channels, ch))
        throw Bad{k, "unknown channel '" + ch + "' (not under channels:)"};
      r.channels.push_back(ch);
    }
  } else if (parent) {
    r.channels = parent->channels;
  }
  if (node["escalation_policy"]) {
    r.escalation_policy =
        Scalar<std::string>(node["escalation_policy"], key + ".escalation_policy");
  } else if (parent) {
    r.escalation_policy = parent->escalation_policy;
  }
  if (node["continue"]) r.continue_matching = Scalar<bool>(node["continue"], key + ".continue");
  if (const YAML::Node children = node["routes"]) {
    if (!children.IsSequence()) throw Bad{key + ".routes", "must be a list"};
    for (size_t i = 0; i < children.size(); ++i)
      r.routes.push_back(
          ParseRoute(children[i], key + ".routes[" + std::to_string(i) + "]", &r, channels));
  }
  return r;
}

// Splits notifier's "channels.x.url: message" into a ConfigError.
Bad NotifierError(const std::string& error) {
  const size_t sep = error.find(": ");
  if (sep == std::string::npos) return Bad{"channels", error};
  return Bad{error.substr(0, sep), error.substr(sep + 2)};
}

// Every route's escalation_policy (parents first) must name a configured policy.
void CheckEscalationPolicies(const RouteNode& r, const std::string& key,
                             const oncall::OnCallConfig& oncall) {
  if (!r.escalation_policy.empty() && !oncall.escalation_policies.count(r.escalation_policy))
    throw Bad{key + ".escalation_policy", "unknown escalation policy '" + r.escalation_policy +
                                              "' (not under escalation_policies:)"};
  for (size_t i = 0; i < r.routes.size(); ++i)
    CheckEscalationPolicies(r.routes[i], key + ".routes[" + std::to_string(i) + "]", oncall);
}

// A duration of `heartbeats.<name>` between `min_us` and 30 days.
int64_t HeartbeatDuration(const YAML::Node& node, const std::string& key, int64_t min_us) {
  const auto us = oncall::ParseDurationMicros(Scalar<std::string>(node, key));
  constexpr int64_t kMax = int64_t{30} * 24 * 3600 * 1000000;
  if (!us || *us < min_us || *us > kMax)
    throw Bad{key, min_us > 0 ? "must be a duration from 1s to 30d (e.g. 1m)"
                              : "must be a duration from 0 to 30d (e.g. 2m)"};
  return *us;
}

bool ValidHeartbeatName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char ch : name)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
      return false;
  return true;
}

bool ValidLabelName(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char ch : name)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '_'))
      return false;
  return true;
}

HeartbeatConfig ParseHeartbeat(const std::string& name, const YAML::Node& node) {
  const std::string key = "heartbeats." + name;
  if (!ValidHeartbeatName(name)) throw Bad{key, "a heartbeat name is 1-64 of [a-z0-9_-]"};
  RequireMap(node, key);
  OnlyKeys(node, key, {"interval", "grace", "token_env", "token_file", "labels", "summary"});
  HeartbeatConfig h;
  h.name = name;
  if (!node["interval"]) throw Bad{key + ".interval", "is required"};
  h.interval_us = HeartbeatDuration(node["interval"], key + ".interval", 1000000);
  h.grace_us = node["grace"] ? HeartbeatDuration(node["grace"], key + ".grace", 0) : h.interval_us;
  h.token = Secret(node, key, "token");
  if (const YAML::Node labels = node["labels"]) {
    RequireMap(labels, key + ".labels");
    for (const auto& kv : labels) {
      const std::string label = kv.first.as<std::string>();
      const std::string k = key + ".labels." + label;
      if (!ValidLabelName(label)) throw Bad{k, "a label name is [A-Za-z_][A-Za-z0-9_]*"};
      if (label == "alertname" || label == "heartbeat")
        throw Bad{k, "is set by the receiver (HeartbeatMissed, the heartbeat's name)"};
      h.labels[label] = Scalar<std::string>(kv.second, k);
    }
  }
  if (node["summary"]) h.summary = Scalar<std::string>(node["summary"], key + ".summary");
  return h;
}

std::vector<HeartbeatConfig> ParseHeartbeats(const YAML::Node& node) {
  RequireMap(node, "heartbeats");
  std::vector<HeartbeatConfig> out;
  for (const auto& kv : node) out.push_back(ParseHeartbeat(kv.first.as<std::string>(), kv.second));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

void ApplyYaml(const YAML::Node& root, ReceiverConfig* c) {
  if (!root.IsMap()) throw Bad{"(root)", "the config must be a YAML mapping"};
  OnlyKeys(root, "(root)",
           {"listen",
            "database_url",
            "database_url_file",
            "database_pooling",
            "auth",
            "default_severity",
            "routes",
            "channels",
            "delivery",
            "http_threads",
            "max_body_bytes",
            "request_deadline_ms",
            "max_requests_per_client",
            "trusted_proxies",
            "database_connections",
            "delivery_threads",
            "webhook_retention_days",
            "notices",
            "people",
            "schedules",
            "overrides",
            "escalation_policies",
            "incidents",
            "heartbeats",
            "log_format",
            "log_level"});
  if (root["listen"]) c->listen = Scalar<std::string>(root["listen"], "listen");
  if (root["database_url"])
    c->database_url = Scalar<std::string>(root["database_url"], "database_url");
  if (root["database_url_file"]) {
    const std::string path = Scalar<std::string>(root["database_url_file"], "database_url_file");
    auto s = ReadTrimmedFile(path);
    if (!s) throw Bad{"database_url_file", "cannot read " + path};
    c->database_url = *s;
  }
  if (root["database_pooling"])
    c->database_pooling = Scalar<std::string>(root["database_pooling"], "database_pooling");
  if (root["default_severity"])
    c->default_severity = Scalar<std::string>(root["default_severity"], "default_severity");
  if (root["http_threads"]) c->http_threads = Scalar<int>(root["http_threads"], "http_threads");
  if (root["log_format"]) c->log_format = Scalar<std::string>(root["log_format"], "log_format");
  if (root["log_level"]) c->log_level = Scalar<std::string>(root["log_level"], "log_level");
  if (root["max_body_bytes"])
    c->max_body_bytes = Scalar<uint64_t>(root["max_body_bytes"], "max_body_bytes");
  if (root["request_deadline_ms"])
    c->request_deadline_ms = Scalar<int>(root["request_deadline_ms"], "request_deadline_ms");
  if (root["max_requests_per_client"])
    c->max_requests_per_client =
        Scalar<int>(root["max_requests_per_client"], "max_requests_per_client");
  if (const YAML::Node tp = root["trusted_proxies"]) {
    if (!tp.IsSequence()) throw Bad{"trusted_proxies", "must be a list of IPv4 CIDRs"};
    c->trusted_proxies.clear();
    for (size_t i = 0; i < tp.size(); ++i)
      c->trusted_proxies.push_back(
          Scalar<std::string>(tp[i], "trusted_proxies[" + std::to_string(i) + "]"));
  }
  if (root["database_connections"])
    c->database_connections = Scalar<int>(root["database_connections"], "database_connections");
  if (root["delivery_threads"])
    c->delivery_threads = Scalar<int>(root["delivery_threads"], "delivery_threads");
  if (root["webhook_retention_days"])
    c->webhook_retention_days =
        Scalar<int>(root["webhook_retention_days"], "webhook_retention_days");
  if (root["auth"]) c->auth = ParseAuth(root["auth"]);

  std::string error;
  if (!notifier::ParseNotifierConfig(root["channels"], root["delivery"], &c->notifier, &error))
    throw NotifierError(error);
  if (const YAML::Node routes = root["routes"]) {
    if (!routes.IsSequence()) throw Bad{"routes", "must be a list"};
    for (size_t i = 0; i < routes.size(); ++i)
      c->routes.push_back(
          ParseRoute(routes[i], "routes[" + std::to_string(i) + "]", nullptr, c->notifier));
  }
  if (!notices::ParseNoticesConfig(root["notices"], c->notifier, &c->notices, &error))
    throw NotifierError(error);  // "notices.<key>: ..."
  if (!incidents::ParseOnCallSections(root, c->notifier, &c->oncall, &error))
    throw NotifierError(error);  // "<key path>: ..."
  for (size_t i = 0; i < c->routes.size(); ++i)
    CheckEscalationPolicies(c->routes[i], "routes[" + std::to_string(i) + "]", c->oncall);
  if (!incidents::ParseIncidentsConfig(root["incidents"], &c->incidents, &error))
    throw NotifierError(error);  // "incidents.<key>: ..."
  if (root["heartbeats"]) c->heartbeats = ParseHeartbeats(root["heartbeats"]);
}

}  // namespace

std::optional<ConfigError> LoadConfigYaml(const std::string& yaml_text, ReceiverConfig* config) {
  try {
    ApplyYaml(YAML::Load(yaml_text), config);
  } catch (const Bad& b) {
    return ConfigError{b.key, b.message};
  } catch (const YAML::Exception& e) {
    return ConfigError{"(yaml)", e.what()};
  }
  return ValidateConfig(*config);
}

std::optional<ConfigError> LoadConfigFile(const std::string& path, ReceiverConfig* config) {
  std::ifstream in(path);
  if (!in) return ConfigError{"--config", "cannot read " + path};
  std::stringstream ss;
  ss << in.rdbuf();
  return LoadConfigYaml(ss.str(), config);
}

std::optional<ConfigError> ValidateConfig(const ReceiverConfig& c) {
  if (!ValidListenAddress(c.listen))
    return ConfigError{"listen", "must be HOST:PORT, got '" + c.listen + "'"};
  if (c.database_url.empty()) return ConfigError{"database_url", "must not be empty"};
  if (c.database_pooling != "session" && c.database_pooling != "transaction")
    return ConfigError{"database_pooling", "must be session or transaction"};
  if (c.default_severity != kCritical && c.default_severity != kWarning &&
      c.default_severity != kInfo)
    return ConfigError{"default_severity", "must be critical, warning or info"};
  if (c.http_threads < 2 || c.http_threads > 4096)
    return ConfigError{"http_threads", "must be between 2 and 4096"};
  if (!IsLogFormat(c.log_format)) return ConfigError{"log_format", LogFormatError(c.log_format)};
  if (!IsLogLevel(c.log_level)) return ConfigError{"log_level", LogLevelError(c.log_level)};
  if (c.max_body_bytes < 1024) return ConfigError{"max_body_bytes", "must be >= 1024"};
  if (auto bad = http::CheckServerKeys(c.request_deadline_ms, c.max_requests_per_client,
                                       c.trusted_proxies))
    return ConfigError{bad->first, bad->second};
  if (c.database_connections < 1 || c.database_connections > 64)
    return ConfigError{"database_connections", "must be between 1 and 64"};
  if (c.delivery_threads < 1 || c.delivery_threads > 64)
    return ConfigError{"delivery_threads", "must be between 1 and 64"};
  if (c.webhook_retention_days < 1 || c.webhook_retention_days > 3650)
    return ConfigError{"webhook_retention_days", "must be between 1 and 3650"};
  const AuthConfig& a = c.auth;
  if (a.bearer_tokens.empty() && a.basic_users.empty() && !a.insecure_no_auth)
    return ConfigError{"auth", "give bearer_tokens or basic_auth (or insecure_no_auth: true)"};
  return std::nullopt;
}

std::variant<CommandLine, ConfigError> ParseCommandLine(const std::vector<std::string>& argv) {
  CommandLine cl;
  std::map<std::string, std::string> flags;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--help" || a == "-h" || a == "help") {
      cl.command = "help";
      return cl;
    }
    if (a.size() > 1 && a[0] == '-') {
      std::string name = a, value;
      const size_t eq = a.find('=');
      if (eq != std::string::npos) name = a.substr(0, eq);
      if (name != "--config" && name != "--listen" && name != "--database-url")
        return ConfigError{name, "unknown flag"};
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
      } else if (i + 1 < argv.size()) {
        value = argv[++i];
      } else {
        return ConfigError{name, "needs a value"};
      }
      flags[name] = value;
      continue;
    }
    if (!cl.command.empty()) return ConfigError{a, "unexpected argument"};
    if (a != "serve" && a != "check-config" && a != "migrate")
      return ConfigError{a, "unknown command (serve, check-config, migrate)"};
    cl.command = a;
  }
  if (cl.command.empty()) cl.command = "serve";

  auto config_flag = flags.find("--config");
  if (config_flag != flags.end()) {
    cl.config_path = config_flag->second;
    if (auto e = LoadConfigFile(cl.config_path, &cl.config)) return *e;
  } else if (cl.command != "migrate") {
    return ConfigError{"--config", "is required by " + cl.command};
  }
  if (const char* env = std::getenv("BPMC_DATABASE_URL"); env && *env) cl.config.database_url = env;
  if (auto it = flags.find("--listen"); it != flags.end()) cl.config.listen = it->second;
  if (auto it = flags.find("--database-url"); it != flags.end())
    cl.config.database_url = it->second;
  if (cl.command == "migrate" && config_flag == flags.end()) cl.config.auth.insecure_no_auth = true;
  if (auto e = ValidateConfig(cl.config)) {
    if (e->key == "listen" && flags.count("--listen")) e->key = "--listen";
    if (e->key == "database_url" && flags.count("--database-url")) e->key = "--database-url";
    return *e;
  }
  return cl;
}

const char* UsageText() {
  return R"(Usage:
  bpmc-receiver [serve] --config FILE [--listen HOST:PORT] [--database-url URL]
  bpmc-receiver check-config --config FILE
      validates the config (routes, channels, templates, secrets) and exits 0,
      or 2 naming the bad key
  bpmc-receiver migrate [--config FILE] [--database-url URL]
      applies the receiver's migrations and exits

Every flag may also be given as --flag=value. The database URL may come from
$BPMC_DATABASE_URL (flags win). Exit codes: 0 ok, 1 runtime failure, 2 bad
config or usage.
)";
}

}  // namespace bpmc::webhook_receiver
