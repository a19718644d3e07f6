#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace bpmc::exporter {

// Every setting of bpmc-exporter with its default. Parsed once at start-up
// (YAML file, then environment, then flags) and validated; see
// exporter/exporter.example.yaml for the documented keys.
struct Config {
  std::string listen = "127.0.0.1:9470";
  // libpq URL or key/value string. Secret: never logged. Sources, later wins:
  // YAML `database_url`, YAML `database_url_file`, $BPMC_DATABASE_URL, flag.
  std::string database_url = "postgresql:///bpmc";
  // Optional read-only copy for the analytics API and its exports (a
  // PostgreSQL streaming replica, docs/SCALING.md "Reads on a replica"); ""
  // reads on database_url. Every write stays on database_url. Secret like
  // database_url: YAML `analytics_database_url`, `analytics_database_url_file`,
  // $BPMC_ANALYTICS_DATABASE_URL.
  std::string analytics_database_url;
  // "session" (direct to PostgreSQL, or PgBouncer in session mode) or
  // "transaction" (PgBouncer pool_mode=transaction): no named prepared
  // statements nor session settings (docs/SCALING.md "PgBouncer").
  std::string database_pooling = "session";
  std::string data_dir = "var/exporter";  // the spool lives in <data_dir>/spool

  int retention_days = 180;  // raw partitions older than this are dropped
  // HTTP layer (docs/SECURITY.md, "HTTP layer: limits and slow clients").
  int http_threads = 512;            // CivetWeb workers: one per open connection being served
  int request_deadline_ms = 10000;   // headers + body must arrive within this (408 after)
  int max_requests_per_client = 32;  // concurrent requests per client address (429 above); 0 off
  std::vector<std::string> trusted_proxies;  // IPv4 CIDRs whose X-Forwarded-For is believed
  uint64_t max_event_body_bytes = 64 * 1024;
  uint64_t max_batch_body_bytes = 32 * 1024 * 1024;
  uint64_t max_label_sets = 5000;  // per metric family; excess -> operation="other"

  int writer_connections = 2;          // transactions in flight at once
  uint64_t max_commit_events = 20000;  // events per transaction at most
  uint64_t spool_max_bytes = 1ULL << 30;
  int key_refresh_ms = 2000;  // API key / connector cache refresh (revocation delay)
  // Analytics. Day/week/month boundaries of aggregates and reports are in this
  // IANA time zone. Changing it later needs `reaggregate` for past data.
  std::string reporting_time_zone = "UTC";
  int rollup_interval_ms = 1000;  // how often aggregates catch up
  // Whether this process keeps the aggregates up to date. Several exporters
  // on one database may all do it (they take turns safely); turn it off on
  // ingest-only replicas, or to measure ingestion alone (bench/).
  bool rollup_enabled = true;
  std::string reporting_currency = "RUB";  // "revenue" in overview is in this currency
  // HMAC key for pseudonyms of customer and Make account ids shown to
  // managers. Secret: YAML `pseudonym_key_file` or $BPMC_PSEUDONYM_KEY.
  std::string pseudonym_key;
  // audit_log rows older than this many days are deleted (hourly); 0 keeps
  // them forever. The log is otherwise append-only (migration 0010).
  int audit_retention_days = 0;
  // Analytics API limits (docs/ANALYTICS.md "Limits"; AnalyticsLimits).
  int analytics_requests_per_minute = 120;  // per user; 0 = no rate limit
  int analytics_burst = 30;                 // per user
  int analytics_concurrent_per_user = 4;    // requests in flight per user; 0 = no limit
  int analytics_max_days_admin = 3660;      // longest period (to - from) per role
  int analytics_max_days_manager = 1830;
  int analytics_max_days_support = 93;
  int analytics_max_days_user = 400;
  int analytics_pool_wait_ms = 2000;  // wait for a database connection, then 503
  // The answer cache (analytics/answer_cache.h): the same question within this
  // many ms gets the stored answer (it states its own as_of); 0 = off.
  int analytics_cache_ms = 1000;
  uint64_t analytics_cache_bytes = 64ull << 20;  // answer bodies the cache keeps at most

  // The console (docs/CONSOLE.md): session timeouts, whether its cookie is
  // `Secure` (set it behind TLS), and the receiver whose APIs it reaches under
  // /receiver/ ("" = not reachable: those pages answer 503).
  int console_session_idle_s = 1800;
  int console_session_lifetime_s = 43200;
  bool console_secure_cookie = false;
  std::string receiver_url;

  // "postgres" (normal) or "discard": answer 201 without storing. The latter
  // exists only to measure the HTTP ceiling in bench/ and is logged loudly.
  std::string sink = "postgres";

  // Logs on stderr (common/logging.h): text or json; trace, debug, info, warn,
  // error or off. Both change on a reload.
  std::string log_format = "text";
  std::string log_level = "info";
};

// A configuration or command-line error, named by its key ("retention_days",
// "--listen").
struct ConfigError {
  std::string key;
  std::string message;
  std::string ToString() const { return key + ": " + message; }
};

// Applies the YAML document in `path` onto *config. Unknown keys are errors.
std::optional<ConfigError> LoadConfigFile(const std::string& path, Config* config);
// Same, from text (for tests).
std::optional<ConfigError> LoadConfigYaml(const std::string& yaml_text, Config* config);
// Checks ranges and forms (listen HOST:PORT, positive sizes, sink value).
std::optional<ConfigError> ValidateConfig(const Config& config);

// The keys a reload may change without a restart (docs/OPERATIONS.md,
// "Reloading the config"): log_format, log_level, audit_retention_days.
// Returns the keys whose values differ between `running` and `next` and are
// not among them (the plain keys sorted by name, then trusted_proxies and
// pseudonym_key_file); empty when `next` can be applied live. Every other key
// (including any added to the key table later) needs a restart. Pure.
std::vector<std::string> KeysNeedingRestart(const Config& running, const Config& next);

// The command line: `bpmc-exporter [SUBCOMMAND...] [FLAGS] [ARGS]`.
struct CommandLine {
  std::vector<std::string> command;  // {"serve"}, {"migrate"}, {"connector","add"}, ...
  std::vector<std::string> args;     // positional arguments after the command
  std::string role, customer;        // `user add`: --role, --customer (validated)
  std::string from, to;              // `reaggregate`: --from, --to (RFC 3339 or YYYY-MM-DD)
  int days = 30;                     // `demo-data`: --days (1..90)
  uint64_t seed = 1;                 // `demo-data`: --seed
  Config config;
};

// Parses argv (without argv[0]); reads --config FILE, then applies
// $BPMC_DATABASE_URL, then the other flags. Flags: --config, --listen,
// --database-url, --data-dir (each also as --flag=value). `serve` is the
// default command.
std::variant<CommandLine, ConfigError> ParseCommandLine(const std::vector<std::string>& argv);

// The usage text printed by --help and on errors.
const char* UsageText();

}  // namespace bpmc::exporter
