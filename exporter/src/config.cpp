#include "exporter/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <variant>

#include "aggregation/rollup.h"  // ParseTimeBound
#include "common/logging.h"
#include "common/process.h"
#include "http/route.h"  // ParseCidr

namespace bpmc::exporter {
namespace {

template <typename T>
std::optional<ConfigError> ReadScalar(const YAML::Node& node, const std::string& key, T* out) {
  try {
    *out = node.as<T>();
    return std::nullopt;
  } catch (const YAML::Exception&) {
    return ConfigError{key, "has the wrong type"};
  }
}

// The plain keys of the YAML file and the Config member each one sets.
using Field =
    std::variant<std::string Config::*, int Config::*, uint64_t Config::*, bool Config::*>;

const std::map<std::string, Field>& Fields() {
  static const std::map<std::string, Field> kFields = {
      {"listen", &Config::listen},
      {"database_url", &Config::database_url},
      {"analytics_database_url", &Config::analytics_database_url},
      {"database_pooling", &Config::database_pooling},
      {"data_dir", &Config::data_dir},
      {"retention_days", &Config::retention_days},
      {"http_threads", &Config::http_threads},
      {"request_deadline_ms", &Config::request_deadline_ms},
      {"max_requests_per_client", &Config::max_requests_per_client},
      {"max_event_body_bytes", &Config::max_event_body_bytes},
      {"max_batch_body_bytes", &Config::max_batch_body_bytes},
      {"max_label_sets", &Config::max_label_sets},
      {"writer_connections", &Config::writer_connections},
      {"max_commit_events", &Config::max_commit_events},
      {"spool_max_bytes", &Config::spool_max_bytes},
      {"key_refresh_ms", &Config::key_refresh_ms},
      {"sink", &Config::sink},
      {"reporting_time_zone", &Config::reporting_time_zone},
      {"rollup_interval_ms", &Config::rollup_interval_ms},
      {"rollup_enabled", &Config::rollup_enabled},
      {"reporting_currency", &Config::reporting_currency},
      {"audit_retention_days", &Config::audit_retention_days},
      {"analytics_requests_per_minute", &Config::analytics_requests_per_minute},
      {"analytics_burst", &Config::analytics_burst},
      {"analytics_concurrent_per_user", &Config::analytics_concurrent_per_user},
      {"analytics_max_days_admin", &Config::analytics_max_days_admin},
      {"analytics_max_days_manager", &Config::analytics_max_days_manager},
      {"analytics_max_days_support", &Config::analytics_max_days_support},
      {"analytics_max_days_user", &Config::analytics_max_days_user},
      {"analytics_pool_wait_ms", &Config::analytics_pool_wait_ms},
      {"analytics_cache_ms", &Config::analytics_cache_ms},
      {"analytics_cache_bytes", &Config::analytics_cache_bytes},
      {"console_session_idle_s", &Config::console_session_idle_s},
      {"console_session_lifetime_s", &Config::console_session_lifetime_s},
      {"console_secure_cookie", &Config::console_secure_cookie},
      {"receiver_url", &Config::receiver_url},
      {"log_format", &Config::log_format},
      {"log_level", &Config::log_level},
  };
  return kFields;
}

std::optional<ConfigError> ApplyYaml(const YAML::Node& root, Config* config) {
  if (root.IsNull()) return std::nullopt;
  if (!root.IsMap()) return ConfigError{"(root)", "the config must be a YAML mapping"};
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (key == "trusted_proxies") {
      if (!kv.second.IsSequence()) return ConfigError{key, "must be a list of IPv4 CIDRs"};
      config->trusted_proxies.clear();
      for (size_t i = 0; i < kv.second.size(); ++i) {
        std::string cidr;
        if (auto e = ReadScalar(kv.second[i], key + "[" + std::to_string(i) + "]", &cidr)) return e;
        config->trusted_proxies.push_back(cidr);
      }
      continue;
    }
    if (key == "database_url_file" || key == "pseudonym_key_file" ||
        key == "analytics_database_url_file") {
      std::string path;
      if (auto e = ReadScalar(kv.second, key, &path)) return e;
      auto secret = ReadTrimmedFile(path);
      if (!secret) return ConfigError{key, "cannot read " + path};
      (key == "database_url_file"    ? config->database_url
       : key == "pseudonym_key_file" ? config->pseudonym_key
                                     : config->analytics_database_url) = *secret;
      continue;
    }
    auto it = Fields().find(key);
    if (it == Fields().end()) return ConfigError{key, "unknown key"};
    auto e = std::visit([&](auto member) { return ReadScalar(kv.second, key, &(config->*member)); },
                        it->second);
    if (e) return e;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ConfigError> LoadConfigYaml(const std::string& yaml_text, Config* config) {
  try {
    return ApplyYaml(YAML::Load(yaml_text), config);
  } catch (const YAML::Exception& e) {
    return ConfigError{"(yaml)", e.what()};
  }
}

std::optional<ConfigError> LoadConfigFile(const std::string& path, Config* config) {
  std::ifstream in(path);
  if (!in) return ConfigError{"--config", "cannot read " + path};
  std::stringstream ss;
  ss << in.rdbuf();
  return LoadConfigYaml(ss.str(), config);
}

std::optional<ConfigError> ValidateConfig(const Config& c) {
  if (!ValidListenAddress(c.listen))
    return ConfigError{"listen", "must be HOST:PORT, got '" + c.listen + "'"};
  if (c.database_url.empty()) return ConfigError{"database_url", "must not be empty"};
  if (c.database_pooling != "session" && c.database_pooling != "transaction")
    return ConfigError{"database_pooling", "must be session or transaction"};
  if (c.data_dir.empty()) return ConfigError{"data_dir", "must not be empty"};
  if (c.retention_days < 1 || c.retention_days > 3650)
    return ConfigError{"retention_days", "must be between 1 and 3650"};
  if (c.audit_retention_days < 0 || c.audit_retention_days > 36500)
    return ConfigError{"audit_retention_days", "must be 0 (keep forever) or between 1 and 36500"};
  if (c.http_threads < 2 || c.http_threads > 4096)
    return ConfigError{"http_threads", "must be between 2 and 4096"};
  if (auto bad = http::CheckServerKeys(c.request_deadline_ms, c.max_requests_per_client,
                                       c.trusted_proxies))
    return ConfigError{bad->first, bad->second};
  if (c.max_event_body_bytes < 256) return ConfigError{"max_event_body_bytes", "must be >= 256"};
  if (c.max_batch_body_bytes < c.max_event_body_bytes)
    return ConfigError{"max_batch_body_bytes", "must be >= max_event_body_bytes"};
  if (c.max_label_sets < 1) return ConfigError{"max_label_sets", "must be >= 1"};
  if (c.writer_connections < 1 || c.writer_connections > 64)
    return ConfigError{"writer_connections", "must be between 1 and 64"};
  if (c.max_commit_events < 1) return ConfigError{"max_commit_events", "must be >= 1"};
  if (c.spool_max_bytes < (1 << 20)) return ConfigError{"spool_max_bytes", "must be >= 1048576"};
  if (c.key_refresh_ms < 100 || c.key_refresh_ms > 5000)
    return ConfigError{"key_refresh_ms",
                       "must be between 100 and 5000 (revocation takes effect within it)"};
  if (c.reporting_time_zone.empty() || c.reporting_time_zone.size() > 64 ||
      c.reporting_time_zone.find_first_of(" '\"\\;") != std::string::npos)
    return ConfigError{"reporting_time_zone", "must be an IANA time zone name like Europe/Moscow"};
  if (c.rollup_interval_ms < 100 || c.rollup_interval_ms > 60000)
    return ConfigError{"rollup_interval_ms", "must be between 100 and 60000"};
  if (c.analytics_requests_per_minute < 0 || c.analytics_requests_per_minute > 1000000)
    return ConfigError{"analytics_requests_per_minute", "must be between 0 (no limit) and 1000000"};
  if (c.analytics_burst < 1 || c.analytics_burst > 100000)
    return ConfigError{"analytics_burst", "must be between 1 and 100000"};
  if (c.analytics_concurrent_per_user < 0 || c.analytics_concurrent_per_user > 1000)
    return ConfigError{"analytics_concurrent_per_user", "must be between 0 (no limit) and 1000"};
  for (const auto& [key, days] :
       {std::pair<const char*, int>{"analytics_max_days_admin", c.analytics_max_days_admin},
        {"analytics_max_days_manager", c.analytics_max_days_manager},
        {"analytics_max_days_support", c.analytics_max_days_support},
        {"analytics_max_days_user", c.analytics_max_days_user}}) {
    if (days < 1 || days > 3660) return ConfigError{key, "must be between 1 and 3660 days"};
  }
  if (c.analytics_pool_wait_ms < 1 || c.analytics_pool_wait_ms > 60000)
    return ConfigError{"analytics_pool_wait_ms", "must be between 1 and 60000"};
  if (c.analytics_cache_ms < 0 || c.analytics_cache_ms > 60000)
    return ConfigError{"analytics_cache_ms", "must be between 0 (off) and 60000"};
  if (c.analytics_cache_bytes < (1u << 20) || c.analytics_cache_bytes > (16ull << 30))
    return ConfigError{"analytics_cache_bytes", "must be between 1 MiB and 16 GiB"};
  if (c.reporting_currency.size() != 3)
    return ConfigError{"reporting_currency", "must be an ISO 4217 code like RUB"};
  if (c.console_session_idle_s < 60 || c.console_session_idle_s > 86400)
    return ConfigError{"console_session_idle_s", "must be between 60 and 86400 seconds"};
  if (c.console_session_lifetime_s < c.console_session_idle_s ||
      c.console_session_lifetime_s > 30 * 86400)
    return ConfigError{"console_session_lifetime_s",
                       "must be between console_session_idle_s and 2592000 seconds (30 days)"};
  if (!c.receiver_url.empty() && c.receiver_url.rfind("http://", 0) != 0 &&
      c.receiver_url.rfind("https://", 0) != 0)
    return ConfigError{"receiver_url", "must start with http:// or https://, or be empty"};
  if (c.sink != "postgres" && c.sink != "discard")
    return ConfigError{"sink", "must be 'postgres' or 'discard'"};
  if (!IsLogFormat(c.log_format)) return ConfigError{"log_format", LogFormatError(c.log_format)};
  if (!IsLogLevel(c.log_level)) return ConfigError{"log_level", LogLevelError(c.log_level)};
  return std::nullopt;
}

std::vector<std::string> KeysNeedingRestart(const Config& running, const Config& next) {
  static const std::set<std::string> kLive = {"log_format", "log_level", "audit_retention_days"};
  std::vector<std::string> keys;
  for (const auto& [key, field] : Fields()) {
    if (kLive.count(key)) continue;
    const bool same =
        std::visit([&](auto member) { return running.*member == next.*member; }, field);
    if (!same) keys.push_back(key);
  }
  // The keys outside the table: secrets (named by their YAML keys) and lists.
  if (running.trusted_proxies != next.trusted_proxies) keys.push_back("trusted_proxies");
  if (running.pseudonym_key != next.pseudonym_key) keys.push_back("pseudonym_key_file");
  return keys;
}

namespace {

// Every command: its words and how many positional arguments it takes.
struct CommandSpec {
  std::vector<std::string> words;
  size_t args;
};

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> kCommands = {
      {{"serve"}, 0},
      {{"migrate"}, 0},
      {{"help"}, 0},
      {{"reaggregate"}, 0},
      {{"demo-data"}, 0},
      {{"connector", "add"}, 2},
      {{"api-key", "create"}, 1},
      {{"api-key", "revoke"}, 1},
      {{"user", "add"}, 1},
      {{"user", "disable"}, 1},
      {{"user", "set-password"}, 1},
      {{"platform-token", "create"}, 1},
      {{"platform-token", "revoke"}, 1},
  };
  return kCommands;
}

// True when `command` followed by `word` starts some command's words.
bool ExtendsCommand(const std::vector<std::string>& command, const std::string& word) {
  for (const CommandSpec& spec : Commands()) {
    if (spec.words.size() <= command.size() || spec.words[command.size()] != word) continue;
    if (std::equal(command.begin(), command.end(), spec.words.begin())) return true;
  }
  return false;
}

const CommandSpec* FindCommand(const std::vector<std::string>& command) {
  for (const CommandSpec& spec : Commands())
    if (spec.words == command) return &spec;
  return nullptr;
}

std::string Words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

using Flags = std::map<std::string, std::string>;

// Splits argv into command words, positional arguments and --flags (`--flag value` or
// `--flag=value`; everything after `--` is positional). Sets `*help` for --help/-h.
std::optional<ConfigError> SplitArguments(const std::vector<std::string>& argv, CommandLine* cl,
                                          Flags* flags, bool* help) {
  static const char* kFlags[] = {"--config", "--listen",   "--database-url", "--data-dir",
                                 "--role",   "--customer", "--from",         "--to",
                                 "--days",   "--seed"};
  bool flags_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (!flags_done && a == "--") {
      flags_done = true;
      continue;
    }
    if (!flags_done && a.size() > 1 && a[0] == '-') {
      std::string name = a, value;
      bool has_value = false;
      if (auto eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        has_value = true;
      }
      if (name == "--help" || name == "-h") {
        *help = true;
        return std::nullopt;
      }
      if (std::find(std::begin(kFlags), std::end(kFlags), name) == std::end(kFlags))
        return ConfigError{name, "unknown flag"};
      if (!has_value) {
        if (i + 1 >= argv.size()) return ConfigError{name, "needs a value"};
        value = argv[++i];
      }
      (*flags)[name] = value;
      continue;
    }
    // Words before any positional argument form the command.
    if (cl->args.empty() && ExtendsCommand(cl->command, a)) {
      cl->command.push_back(a);
    } else {
      if (cl->command.empty()) return ConfigError{a, "unknown command"};
      cl->args.push_back(a);
    }
  }
  return std::nullopt;
}

// The config file, then the environment, then the flags; validated, naming the flag when
// the bad value came from one.
std::optional<ConfigError> LoadServiceConfig(const Flags& flags, Config* config) {
  if (auto it = flags.find("--config"); it != flags.end()) {
    if (auto e = LoadConfigFile(it->second, config)) return e;
  }
  if (const char* env = std::getenv("BPMC_DATABASE_URL"); env && *env) config->database_url = env;
  if (const char* env = std::getenv("BPMC_PSEUDONYM_KEY"); env && *env) config->pseudonym_key = env;
  if (const char* env = std::getenv("BPMC_ANALYTICS_DATABASE_URL"); env && *env)
    config->analytics_database_url = env;
  if (auto it = flags.find("--listen"); it != flags.end()) config->listen = it->second;
  if (auto it = flags.find("--database-url"); it != flags.end()) config->database_url = it->second;
  if (auto it = flags.find("--data-dir"); it != flags.end()) config->data_dir = it->second;

  auto e = ValidateConfig(*config);
  if (e) {
    static const std::map<std::string, std::string> kFlagOf = {
        {"listen", "--listen"}, {"database_url", "--database-url"}, {"data_dir", "--data-dir"}};
    if (auto f = kFlagOf.find(e->key); f != kFlagOf.end() && flags.count(f->second))
      e->key = f->second;
  }
  return e;
}

// `reaggregate --from T --to T`: both required, only there.
std::optional<ConfigError> ReaggregateFlags(const Flags& flags, CommandLine* cl) {
  const bool reaggregate = cl->command == std::vector<std::string>{"reaggregate"};
  for (const char* f : {"--from", "--to"}) {
    auto it = flags.find(f);
    if (!reaggregate && it != flags.end()) return ConfigError{f, "is only for `reaggregate`"};
    if (!reaggregate) continue;
    if (it == flags.end())
      return ConfigError{f, "is required: an RFC 3339 timestamp or YYYY-MM-DD"};
    if (!aggregation::ParseTimeBound(it->second))
      return ConfigError{
          f, "must be an RFC 3339 timestamp or a YYYY-MM-DD date, got '" + it->second + "'"};
    (std::string(f) == "--from" ? cl->from : cl->to) = it->second;
  }
  return std::nullopt;
}

// `demo-data [--days N] [--seed N]`: the flags exist only there.
std::optional<ConfigError> DemoDataFlags(const Flags& flags, CommandLine* cl) {
  const bool demo = cl->command == std::vector<std::string>{"demo-data"};
  for (const char* f : {"--days", "--seed"}) {
    auto it = flags.find(f);
    if (it == flags.end()) continue;
    if (!demo) return ConfigError{f, "is only for `demo-data`"};
    const std::string& v = it->second;
    const bool digits = !v.empty() && v.size() <= 19 && std::all_of(v.begin(), v.end(), [](char c) {
      return c >= '0' && c <= '9';
    });
    if (std::string(f) == "--seed") {
      if (!digits) return ConfigError{f, "must be a non-negative integer, got '" + v + "'"};
      cl->seed = std::stoull(v);
      continue;
    }
    if (!digits || v.size() > 2 || std::stoi(v) < 1 || std::stoi(v) > 90)
      return ConfigError{f, "must be a number of days from 1 to 90, got '" + v + "'"};
    cl->days = std::stoi(v);
  }
  return std::nullopt;
}

// `user add NAME --role ROLE [--customer ID]`: the flags exist only there.
std::optional<ConfigError> UserAddFlags(const Flags& flags, CommandLine* cl) {
  const bool user_add = cl->command == std::vector<std::string>{"user", "add"};
  for (const char* f : {"--role", "--customer"})
    if (!user_add && flags.count(f)) return ConfigError{f, "is only for `user add`"};
  if (!user_add) return std::nullopt;
  auto role = flags.find("--role");
  if (role == flags.end())
    return ConfigError{"--role", "is required: admin, manager, support or user"};
  if (role->second != "admin" && role->second != "manager" && role->second != "support" &&
      role->second != "user")
    return ConfigError{"--role",
                       "must be admin, manager, support or user, got '" + role->second + "'"};
  cl->role = role->second;
  auto customer = flags.find("--customer");
  if (cl->role == "user" && (customer == flags.end() || customer->second.empty()))
    return ConfigError{"--customer",
                       "is required with --role user (the customer: OWNER of its API keys)"};
  if (cl->role != "user" && customer != flags.end())
    return ConfigError{"--customer", "applies only to --role user"};
  if (customer != flags.end()) cl->customer = customer->second;
  if (cl->customer.size() > 100) return ConfigError{"--customer", "must be at most 100 characters"};
  if (cl->args[0].empty() || cl->args[0].size() > 100)
    return ConfigError{"user add", "NAME must be 1..100 characters"};
  return std::nullopt;
}

}  // namespace

std::variant<CommandLine, ConfigError> ParseCommandLine(const std::vector<std::string>& argv) {
  CommandLine cl;
  Flags flags;
  bool help = false;
  if (auto e = SplitArguments(argv, &cl, &flags, &help)) return *e;
  if (help) {
    CommandLine h;
    h.command = {"help"};
    return h;
  }
  if (cl.command.empty()) cl.command = {"serve"};
  const CommandSpec* spec = FindCommand(cl.command);
  if (spec == nullptr) return ConfigError{cl.command[0], "needs a subcommand (see --help)"};
  if (auto e = LoadServiceConfig(flags, &cl.config)) return *e;
  if (cl.args.size() != spec->args) {
    return ConfigError{Words(cl.command), "expects " + std::to_string(spec->args) +
                                              " argument(s), got " +
                                              std::to_string(cl.args.size())};
  }
  if (auto e = ReaggregateFlags(flags, &cl)) return *e;
  if (auto e = UserAddFlags(flags, &cl)) return *e;
  if (auto e = DemoDataFlags(flags, &cl)) return *e;
  return cl;
}

const char* UsageText() {
  return R"(Usage:
  bpmc-exporter [serve] [--config FILE] [--listen HOST:PORT] [--database-url URL] [--data-dir DIR]
  bpmc-exporter migrate [--database-url URL]
  bpmc-exporter connector add [--database-url URL] ID NAME
  bpmc-exporter api-key create [--database-url URL] OWNER
  bpmc-exporter api-key revoke [--database-url URL] [--data-dir DIR] ID|PREFIX
      ID as printed by `api-key create`, or the key's first 12 characters;
      never the key itself. Also removes it from DIR/directory.json
  bpmc-exporter user add [--database-url URL] NAME --role admin|manager|support|user [--customer ID]
  bpmc-exporter user disable [--database-url URL] NAME
  bpmc-exporter user set-password [--database-url URL] NAME
      reads the console password (8 to 1024 bytes) from the first line of stdin;
      ends the user's console sessions
  bpmc-exporter platform-token create [--database-url URL] NAME
  bpmc-exporter platform-token revoke [--database-url URL] ID|NAME
  bpmc-exporter reaggregate [--database-url URL] [--config FILE] --from T --to T
      rebuilds the aggregates of [from, to) from raw events (T: RFC 3339 or
      YYYY-MM-DD in reporting_time_zone; rounded out to whole local days)
  bpmc-exporter demo-data [--database-url URL] [--config FILE] [--days 30] [--seed N]
      loads a realistic month (connectors, customers, subscriptions, payments,
      usage events of the last N days up to now, aggregates, two incidents
      when the receiver's tables exist) into a database without usage events;
      the same seed gives the same data (docs/DEMO.md)

Every flag may also be given as --flag=value. The database URL may come from
$BPMC_DATABASE_URL (flags win). Exit codes: 0 ok, 1 runtime failure, 2 bad
config or usage.
)";
}

}  // namespace bpmc::exporter
