#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "incidents/config.h"
#include "notices/config.h"
#include "notifier/config.h"
#include "oncall/model.h"
#include "webhook_receiver/routing.h"

namespace bpmc::webhook_receiver {

// Who may post webhooks. Alertmanager's http_config sends either
// `Authorization: Bearer <token>` (authorization / bearer_token) or basic auth.
// Secrets come from files or the environment, never from the YAML itself.
struct AuthConfig {
  std::vector<std::string> bearer_tokens;
  struct BasicUser {
    std::string username;
    std::string password;
  };
  std::vector<BasicUser> basic_users;
  // Also accept `?token=<bearer token>` in the URL, for senders that cannot set
  // headers (Sentry's legacy webhooks). Off by default: URLs end up in logs.
  bool allow_query_token = false;
  // Accept unauthenticated webhooks (tests, a receiver behind an authenticating proxy).
  bool insecure_no_auth = false;
};

// One check-in monitor (`heartbeats.<name>`, docs/RECEIVER.md "Heartbeats"):
// something must POST /v1/heartbeat/<name> at least every `interval_us`; when
// interval + grace pass without a check-in, the receiver fires HeartbeatMissed.
struct HeartbeatConfig {
  std::string name;         // [a-z0-9_-]{1,64}, the map key
  int64_t interval_us = 0;  // expected time between check-ins, 1s..30d
  int64_t grace_us = 0;     // extra wait before the alert, 0..30d (default: interval)
  std::string token;        // a secret (token_env or token_file): never logged
  std::map<std::string, std::string> labels;  // merged into the alert (severity, team, ...)
  std::string summary;  // the alert's summary ("" = "No check-in from <name> since ...")
};

// Every setting of bpmc-receiver, parsed once from the YAML file (then
// $BPMC_DATABASE_URL, then flags) and validated; see
// webhook_receiver/receiver.example.yaml for each key.
struct ReceiverConfig {
  std::string listen = "127.0.0.1:9471";
  // A secret: YAML database_url or database_url_file, $BPMC_DATABASE_URL, --database-url.
  std::string database_url = "postgresql:///bpmc";
  // "session" (direct, or PgBouncer in session mode) or "transaction" (PgBouncer
  // pool_mode=transaction: no named prepared statements nor session state;
  // docs/SCALING.md "PgBouncer"). Not reloadable.
  std::string database_pooling = "session";
  AuthConfig auth;
  std::string default_severity = "warning";  // for unknown or missing severities
  std::vector<RouteNode> routes;             // `routes:`, inheritance resolved
  notifier::NotifierConfig notifier;         // `channels:` and `delivery:`
  // HTTP layer (docs/SECURITY.md, "HTTP layer: limits and slow clients").
  int http_threads = 512;  // CivetWeb workers: one per open connection being served
  uint64_t max_body_bytes = 4 << 20;
  int request_deadline_ms = 10000;   // headers + body must arrive within this (408 after)
  int max_requests_per_client = 32;  // concurrent requests per client address (429 above); 0 off
  std::vector<std::string> trusted_proxies;  // IPv4 CIDRs whose X-Forwarded-For is believed
  // Intake transactions in flight at once; webhooks arriving meanwhile share
  // the next transaction (group commit, IntakeWriter).
  int database_connections = 4;
  int delivery_threads = 2;  // notifier::Deliverer threads
  int webhook_retention_days = 30;
  notices::NoticesConfig notices;  // `notices:` (docs/NOTICES.md)
  // people, schedules, overrides, escalation_policies (docs/ONCALL.md); every
  // route's escalation_policy names one of these policies.
  oncall::OnCallConfig oncall;
  incidents::IncidentsConfig incidents;     // `incidents:` (docs/INCIDENTS.md)
  std::vector<HeartbeatConfig> heartbeats;  // `heartbeats:`, sorted by name
  // Logs on stderr (common/logging.h): text or json; trace, debug, info, warn,
  // error or off. Both change on a reload.
  std::string log_format = "text";
  std::string log_level = "info";
};

// A configuration or command-line error named by its key path
// ("routes[1].match_re.service", "channels.ops-slack.url", "--listen").
struct ConfigError {
  std::string key;
  std::string message;
  std::string ToString() const { return key + ": " + message; }
};

// Parses a whole YAML document into *config (unknown keys are errors), reads
// the secrets it points to, compiles regexes and templates, resolves route
// inheritance and checks that every route names known channels.
std::optional<ConfigError> LoadConfigYaml(const std::string& yaml_text, ReceiverConfig* config);
std::optional<ConfigError> LoadConfigFile(const std::string& path, ReceiverConfig* config);
// Ranges and forms of the scalar settings (also after flags changed them).
std::optional<ConfigError> ValidateConfig(const ReceiverConfig& config);

// `bpmc-receiver serve|check-config|migrate [flags]`.
struct CommandLine {
  std::string command;  // "serve", "check-config", "migrate" or "help"
  std::string config_path;
  ReceiverConfig config;
};

// Flags: --config FILE (required by serve and check-config), --listen
// HOST:PORT, --database-url URL (each also as --flag=value). No command means serve.
std::variant<CommandLine, ConfigError> ParseCommandLine(const std::vector<std::string>& argv);

const char* UsageText();

}  // namespace bpmc::webhook_receiver
