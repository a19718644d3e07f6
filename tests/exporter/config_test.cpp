#include "exporter/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>

namespace bpmc::exporter {
namespace {

struct CliCase {
  const char* name;
  std::vector<std::string> argv;
  std::string error_key;  // empty: must parse
  std::vector<std::string> command;
};

TEST(CommandLineTest, Table) {
  unsetenv("BPMC_DATABASE_URL");
  const CliCase cases[] = {
      {"default is serve", {}, "", {"serve"}},
      {"serve with flags", {"serve", "--listen", "0.0.0.0:1", "--data-dir=/tmp/x"}, "", {"serve"}},
      {"flags without command", {"--listen", "127.0.0.1:0"}, "", {"serve"}},
      {"migrate", {"migrate", "--database-url", "postgresql:///x"}, "", {"migrate"}},
      {"connector add", {"connector", "add", "crm", "CRM"}, "", {"connector", "add"}},
      {"connector add flag after",
       {"connector", "add", "crm", "CRM", "--database-url=x"},
       "",
       {"connector", "add"}},
      {"api-key create", {"api-key", "create", "acme"}, "", {"api-key", "create"}},
      {"api-key revoke", {"api-key", "revoke", "bpmc_x"}, "", {"api-key", "revoke"}},
      {"unknown flag", {"--listne", "x"}, "--listne", {}},
      {"flag without value", {"serve", "--listen"}, "--listen", {}},
      {"bad listen names the flag", {"--listen", "nonsense"}, "--listen", {}},
      {"bad port", {"--listen", "127.0.0.1:70000"}, "--listen", {}},
      {"unknown command", {"frobnicate"}, "frobnicate", {}},
      {"connector alone", {"connector"}, "connector", {}},
      {"connector add missing name", {"connector", "add", "crm"}, "connector add", {}},
      {"api-key create extra", {"api-key", "create", "a", "b"}, "api-key create", {}},
      {"missing config file", {"--config", "/nonexistent.yaml"}, "--config", {}},
      {"demo-data", {"demo-data", "--days", "7", "--seed=9"}, "", {"demo-data"}},
      {"demo-data days 0", {"demo-data", "--days", "0"}, "--days", {}},
      {"demo-data days 91", {"demo-data", "--days", "91"}, "--days", {}},
      {"demo-data bad seed", {"demo-data", "--seed", "-1"}, "--seed", {}},
      {"days only for demo-data", {"migrate", "--days", "3"}, "--days", {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ParseCommandLine(c.argv);
    if (c.error_key.empty()) {
      ASSERT_TRUE(std::holds_alternative<CommandLine>(r)) << std::get<ConfigError>(r).ToString();
      EXPECT_EQ(std::get<CommandLine>(r).command, c.command);
    } else {
      ASSERT_TRUE(std::holds_alternative<ConfigError>(r));
      EXPECT_EQ(std::get<ConfigError>(r).key, c.error_key) << std::get<ConfigError>(r).message;
    }
  }
}

TEST(CommandLineTest, DemoDataDefaultsAndFlags) {
  auto r = ParseCommandLine({"demo-data"});
  ASSERT_TRUE(std::holds_alternative<CommandLine>(r));
  EXPECT_EQ(std::get<CommandLine>(r).days, 30);
  EXPECT_EQ(std::get<CommandLine>(r).seed, 1u);
  r = ParseCommandLine({"demo-data", "--days=90", "--seed", "18446744073709551"});
  ASSERT_TRUE(std::holds_alternative<CommandLine>(r));
  EXPECT_EQ(std::get<CommandLine>(r).days, 90);
  EXPECT_EQ(std::get<CommandLine>(r).seed, 18446744073709551u);
}

TEST(CommandLineTest, FlagsOverrideEnvironment) {
  setenv("BPMC_DATABASE_URL", "postgresql:///from_env", 1);
  auto r = ParseCommandLine({"serve"});
  EXPECT_EQ(std::get<CommandLine>(r).config.database_url, "postgresql:///from_env");
  r = ParseCommandLine({"serve", "--database-url", "postgresql:///from_flag"});
  EXPECT_EQ(std::get<CommandLine>(r).config.database_url, "postgresql:///from_flag");
  unsetenv("BPMC_DATABASE_URL");
}

struct YamlCase {
  const char* name;
  const char* yaml;
  std::string error_key;
};

TEST(ConfigYamlTest, Table) {
  const YamlCase cases[] = {
      {"empty", "", ""},
      {"all keys",
       "listen: 127.0.0.1:9999\nretention_days: 30\nhttp_threads: 64\n"
       "max_label_sets: 10\nwriter_connections: 3\nspool_max_bytes: 2000000\n"
       "key_refresh_ms: 1000\nsink: discard\n",
       ""},
      {"unknown key", "listen: 127.0.0.1:1\nretension_days: 3\n", "retension_days"},
      {"wrong type", "retention_days: many\n", "retention_days"},
      {"out of range", "retention_days: 0\n", "retention_days"},
      {"bad sink", "sink: kafka\n", "sink"},
      {"rollup off", "rollup_enabled: false\n", ""},
      {"rollup not a bool", "rollup_enabled: sometimes\n", "rollup_enabled"},
      {"refresh too slow for revocation", "key_refresh_ms: 10000\n", "key_refresh_ms"},
      {"audit retention", "audit_retention_days: 400\n", ""},
      {"negative audit retention", "audit_retention_days: -1\n", "audit_retention_days"},
      {"not a map", "- a\n- b\n", "(root)"},
      {"bad yaml", "a: [\n", "(yaml)"},
      {"secret file missing", "database_url_file: /nonexistent\n", "database_url_file"},
      {"replica secret file missing", "analytics_database_url_file: /nonexistent\n",
       "analytics_database_url_file"},
      {"replica url", "analytics_database_url: postgresql://replica/bpmc\n", ""},
      {"transaction pooling", "database_pooling: transaction\n", ""},
      {"bad pooling", "database_pooling: statement\n", "database_pooling"},
      {"http layer keys",
       "request_deadline_ms: 5000\nmax_requests_per_client: 0\n"
       "trusted_proxies: [10.0.0.0/8, 127.0.0.1]\n",
       ""},
      {"deadline too short", "request_deadline_ms: 10\n", "request_deadline_ms"},
      {"negative client cap", "max_requests_per_client: -1\n", "max_requests_per_client"},
      {"proxies not a list", "trusted_proxies: 10.0.0.0/8\n", "trusted_proxies"},
      {"bad proxy", "trusted_proxies: [10.0.0.0/8, 'fe80::/10']\n", "trusted_proxies[1]"},
      {"json logs", "log_format: json\nlog_level: debug\n", ""},
      {"logs off", "log_level: off\n", ""},
      {"unknown log format", "log_format: logfmt\n", "log_format"},
      {"upper-case log format", "log_format: JSON\n", "log_format"},
      {"unknown log level", "log_level: verbose\n", "log_level"},
      {"spdlog's level name", "log_level: warning\n", "log_level"},
      {"log level not a string", "log_level: [info]\n", "log_level"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Config config;
    auto e = LoadConfigYaml(c.yaml, &config);
    if (!e) e = ValidateConfig(config);
    if (c.error_key.empty()) {
      EXPECT_FALSE(e) << e->ToString();
    } else {
      ASSERT_TRUE(e);
      EXPECT_EQ(e->key, c.error_key) << e->message;
    }
  }
}

TEST(ConfigYamlTest, LogKeyErrorsNameTheValue) {
  Config config;
  ASSERT_FALSE(LoadConfigYaml("log_level: loud\n", &config));
  const auto e = ValidateConfig(config);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ToString(), "log_level: must be trace, debug, info, warn, error or off, got 'loud'");
}

// Which changes a reload applies and which need a restart (docs/OPERATIONS.md).
TEST(KeysNeedingRestartTest, Table) {
  struct Case {
    const char* name;
    std::function<void(Config*)> change;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {"nothing", [](Config*) {}, {}},
      {"log format", [](Config* c) { c->log_format = "json"; }, {}},
      {"log level", [](Config* c) { c->log_level = "debug"; }, {}},
      {"audit retention", [](Config* c) { c->audit_retention_days = 30; }, {}},
      {"all live keys",
       [](Config* c) {
         c->log_format = "json";
         c->log_level = "off";
         c->audit_retention_days = 7;
       },
       {}},
      {"listen", [](Config* c) { c->listen = "127.0.0.1:1"; }, {"listen"}},
      {"database url",
       [](Config* c) { c->database_url = "postgresql:///other"; },
       {"database_url"}},
      {"data dir (the spool)", [](Config* c) { c->data_dir = "/elsewhere"; }, {"data_dir"}},
      {"threads", [](Config* c) { c->http_threads = 64; }, {"http_threads"}},
      {"retention", [](Config* c) { c->retention_days = 30; }, {"retention_days"}},
      {"a rate limit",
       [](Config* c) { c->analytics_requests_per_minute = 1; },
       {"analytics_requests_per_minute"}},
      {"a body limit", [](Config* c) { c->max_event_body_bytes = 1024; }, {"max_event_body_bytes"}},
      {"trusted proxies",
       [](Config* c) { c->trusted_proxies = {"10.0.0.0/8"}; },
       {"trusted_proxies"}},
      {"pseudonym key", [](Config* c) { c->pseudonym_key = "other"; }, {"pseudonym_key_file"}},
      {"live and restart keys together",
       [](Config* c) {
         c->log_level = "debug";
         c->writer_connections = 8;
         c->sink = "discard";
       },
       {"sink", "writer_connections"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Config running;
    Config next;
    c.change(&next);
    EXPECT_EQ(KeysNeedingRestart(running, next), c.want);
    EXPECT_EQ(KeysNeedingRestart(next, running), c.want);
  }
}

TEST(ConfigYamlTest, ExampleFileDocumentsTheDefaults) {
  const char* src = std::getenv("BPMC_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  Config loaded;
  loaded.listen = "changed:1";
  loaded.retention_days = 1;
  auto e = LoadConfigFile(std::string(src) + "/exporter/exporter.example.yaml", &loaded);
  ASSERT_FALSE(e) << e->ToString();
  const Config defaults;
  EXPECT_EQ(loaded.listen, defaults.listen);
  EXPECT_EQ(loaded.database_url, defaults.database_url);
  EXPECT_EQ(loaded.analytics_database_url, defaults.analytics_database_url);
  EXPECT_EQ(loaded.database_pooling, defaults.database_pooling);
  EXPECT_EQ(loaded.data_dir, defaults.data_dir);
  EXPECT_EQ(loaded.retention_days, defaults.retention_days);
  EXPECT_EQ(loaded.http_threads, defaults.http_threads);
  EXPECT_EQ(loaded.max_event_body_bytes, defaults.max_event_body_bytes);
  EXPECT_EQ(loaded.max_batch_body_bytes, defaults.max_batch_body_bytes);
  EXPECT_EQ(loaded.max_label_sets, defaults.max_label_sets);
  EXPECT_EQ(loaded.writer_connections, defaults.writer_connections);
  EXPECT_EQ(loaded.max_commit_events, defaults.max_commit_events);
  EXPECT_EQ(loaded.spool_max_bytes, defaults.spool_max_bytes);
  EXPECT_EQ(loaded.key_refresh_ms, defaults.key_refresh_ms);
  EXPECT_EQ(loaded.sink, defaults.sink);
  EXPECT_EQ(loaded.log_format, defaults.log_format);
  EXPECT_EQ(loaded.log_level, defaults.log_level);
  EXPECT_EQ(loaded.reporting_time_zone, defaults.reporting_time_zone);
  EXPECT_EQ(loaded.rollup_interval_ms, defaults.rollup_interval_ms);
  EXPECT_EQ(loaded.rollup_enabled, defaults.rollup_enabled);
  EXPECT_EQ(loaded.reporting_currency, defaults.reporting_currency);
  EXPECT_EQ(loaded.analytics_requests_per_minute, defaults.analytics_requests_per_minute);
  EXPECT_EQ(loaded.analytics_burst, defaults.analytics_burst);
  EXPECT_EQ(loaded.analytics_concurrent_per_user, defaults.analytics_concurrent_per_user);
  EXPECT_EQ(loaded.analytics_max_days_admin, defaults.analytics_max_days_admin);
  EXPECT_EQ(loaded.analytics_max_days_manager, defaults.analytics_max_days_manager);
  EXPECT_EQ(loaded.analytics_max_days_support, defaults.analytics_max_days_support);
  EXPECT_EQ(loaded.analytics_max_days_user, defaults.analytics_max_days_user);
  EXPECT_EQ(loaded.analytics_pool_wait_ms, defaults.analytics_pool_wait_ms);
  EXPECT_EQ(loaded.analytics_cache_ms, defaults.analytics_cache_ms);
  EXPECT_EQ(loaded.analytics_cache_bytes, defaults.analytics_cache_bytes);
  EXPECT_EQ(loaded.request_deadline_ms, defaults.request_deadline_ms);
  EXPECT_EQ(loaded.max_requests_per_client, defaults.max_requests_per_client);
  EXPECT_EQ(loaded.trusted_proxies, defaults.trusted_proxies);
}

TEST(ConfigYamlTest, AnalyticsLimitsAreValidated) {
  for (const char* yaml :
       {"analytics_requests_per_minute: -1", "analytics_burst: 0",
        "analytics_concurrent_per_user: -1", "analytics_max_days_support: 0",
        "analytics_max_days_admin: 3661", "analytics_pool_wait_ms: 0", "analytics_cache_ms: -1",
        "analytics_cache_ms: 60001", "analytics_cache_bytes: 1000",
        "analytics_cache_bytes: 99999999999999"}) {
    Config c;
    ASSERT_FALSE(LoadConfigYaml(yaml, &c)) << yaml;
    const auto e = ValidateConfig(c);
    ASSERT_TRUE(e) << yaml;
    EXPECT_EQ(std::string(yaml).substr(0, e->key.size()), e->key) << yaml;
  }
}

TEST(ConfigYamlTest, ConsoleKeysAreValidated) {
  for (const char* yaml : {"console_session_idle_s: 59", "console_session_idle_s: 86401",
                           "console_session_lifetime_s: 100", "console_session_lifetime_s: 2592001",
                           "receiver_url: ftp://x", "receiver_url: 127.0.0.1:9471"}) {
    Config c;
    ASSERT_FALSE(LoadConfigYaml(yaml, &c)) << yaml;
    const auto e = ValidateConfig(c);
    ASSERT_TRUE(e) << yaml;
    EXPECT_EQ(std::string(yaml).substr(0, e->key.size()), e->key) << yaml;
  }
  Config ok;
  ASSERT_FALSE(
      LoadConfigYaml("receiver_url: http://127.0.0.1:9471\nconsole_session_idle_s: 60\n"
                     "console_session_lifetime_s: 60\nconsole_secure_cookie: true",
                     &ok));
  EXPECT_FALSE(ValidateConfig(ok));
  EXPECT_TRUE(ok.console_secure_cookie);
}

}  // namespace
}  // namespace bpmc::exporter
