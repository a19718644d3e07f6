// Table tests of classification, routing, authentication and the config loader.
#include "webhook_receiver/routing.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "webhook_receiver/auth.h"
#include "webhook_receiver/config.h"
#include "webhook_receiver/severity.h"
#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver {
namespace {

TEST(SeverityTest, Table) {
  const struct {
    const char* raw;
    const char* want;  // "" = unknown
  } cases[] = {
      {"critical", "critical"},
      {"CRITICAL", "critical"},
      {"crit", "critical"},
      {"fatal", "critical"},
      {"error", "critical"},
      {"P1", "critical"},
      {"page", "critical"},
      {"High", "critical"},
      {"warning", "warning"},
      {"warn", "warning"},
      {"Warning", "warning"},
      {"P2", "warning"},
      {"p3", "warning"},
      {"MEDIUM", "warning"},
      {"minor", "warning"},
      {"info", "info"},
      {"informational", "info"},
      {"debug", "info"},
      {"LOW", "info"},
      {"P5", "info"},
      {"none", "info"},
      {"success", "info"},
      {"", ""},
      {"bogus", ""},
      {"critical!", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.raw);
    auto got = NormalizeSeverity(c.raw);
    if (*c.want == '\0') {
      EXPECT_FALSE(got.has_value());
      EXPECT_EQ(ClassifySeverity(c.raw, "warning"), "warning");
      EXPECT_EQ(ClassifySeverity(c.raw, "info"), "info");
    } else {
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(*got, c.want);
      EXPECT_EQ(ClassifySeverity(c.raw, "info"), c.want);
    }
  }
}

TEST(MatcherTest, ParseTable) {
  const struct {
    const char* text;
    bool ok;
    Matcher::Op op;
    const char* name;
    const char* value;
  } cases[] = {
      {"severity=\"critical\"", true, Matcher::Op::kEqual, "severity", "critical"},
      {"severity = critical", true, Matcher::Op::kEqual, "severity", "critical"},
      {"env!=\"dev\"", true, Matcher::Op::kNotEqual, "env", "dev"},
      {"team=~\"a|b\"", true, Matcher::Op::kRegex, "team", "a|b"},
      {"team!~\"x.*\"", true, Matcher::Op::kNotRegex, "team", "x.*"},
      {"q=\"say \\\"hi\\\"\"", true, Matcher::Op::kEqual, "q", "say \"hi\""},
      {"empty=\"\"", true, Matcher::Op::kEqual, "empty", ""},
      {"=x", false, Matcher::Op::kEqual, "", ""},
      {"1abc=x", false, Matcher::Op::kEqual, "", ""},
      {"a<x", false, Matcher::Op::kEqual, "", ""},
      {"a=\"unterminated", false, Matcher::Op::kEqual, "", ""},
      {"a=\"x\"y", false, Matcher::Op::kEqual, "", ""},
      {"a=~\"(\"", false, Matcher::Op::kRegex, "", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    std::string error;
    auto m = Matcher::Parse(c.text, &error);
    ASSERT_EQ(m.has_value(), c.ok) << error;
    if (!c.ok) {
      EXPECT_FALSE(error.empty());
      continue;
    }
    EXPECT_EQ(m->op(), c.op);
    EXPECT_EQ(m->name(), c.name);
    EXPECT_EQ(m->value(), c.value);
  }
}

TEST(MatcherTest, MatchTable) {
  const Labels labels = {{"alertname", "ConnectorDown"}, {"team", "payments"}};
  const struct {
    const char* matcher;
    bool want;
  } cases[] = {
      {"alertname=ConnectorDown", true},
      {"alertname=Connector", false},
      {"alertname=~Connector.*", true},
      {"alertname=~Connector", false},  // anchored, like Alertmanager
      {"alertname=~\"connectordown\"", false},
      {"alertname!~\"High.*\"", true},
      {"team!=payments", false},
      {"missing=\"\"", true},  // a missing label is ""
      {"missing!=\"\"", false},
      {"missing=~\".*\"", true},
      {"team=~\"pay.*|ops\"", true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.matcher);
    std::string error;
    auto m = Matcher::Parse(c.matcher, &error);
    ASSERT_TRUE(m) << error;
    EXPECT_EQ(m->Matches(labels), c.want);
  }
}

// Runs `fn` on a thread with a `stack_bytes` stack, as CivetWeb runs handlers.
void RunOnStack(size_t stack_bytes, const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack_bytes);
  pthread_t thread;
  auto body = [](void* arg) -> void* {
    (*static_cast<const std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, body, const_cast<std::function<void()>*>(&fn)), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

// std::regex recursed once per character: `Payment` + 250 x against the example
// config's route overflowed CivetWeb's ~100 KB handler stack (SIGSEGV, and
// Alertmanager's retries made the receiver crash-loop). RE2 needs no stack per
// character: 1 MB values match on a 64 KB stack (ASan's frames included).
TEST(MatcherTest, LongValuesMatchInLinearTimeOnASmallStack) {
  std::string error;
  auto m = Matcher::Parse("alertname=~\"Payment.*|Billing.*\"", &error);
  ASSERT_TRUE(m) << error;
  auto nested = Matcher::Parse("alertname=~\"(a|b|ab)*(x+x+)+y\"", &error);  // backtracking bait
  ASSERT_TRUE(nested) << error;
  for (size_t n : {250u, 100'000u, 1'000'000u}) {
    SCOPED_TRACE(n);
    bool pay = false, bill = false, other = true, bait = true;
    RunOnStack(64 * 1024, [&] {
      pay = m->Matches({{"alertname", "Payment" + std::string(n, 'x')}});
      bill = m->Matches({{"alertname", "Billing" + std::string(n, 'y')}});
      other = m->Matches({{"alertname", "Other" + std::string(n, 'x')}});
      bait = nested->Matches({{"alertname", std::string(n, 'x')}});
    });
    EXPECT_TRUE(pay);
    EXPECT_TRUE(bill);
    EXPECT_FALSE(other);
    EXPECT_FALSE(bait);
  }
}

TEST(MatcherTest, Re2SyntaxLikeAlertmanager) {
  const struct {
    const char* matcher;
    bool valid;
  } cases[] = {
      {"a=~\"(?i)payment\"", true},  // Go/RE2 flags
      {"a=~\"\\\\d+\"", true},      {"a=~\"(\"", false},
      {"a=~\"x(?=y)\"", false},    // lookahead: not in RE2 (nor in Alertmanager)
      {"a=~\"(a)\\\\1\"", false},  // backreference: likewise
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_EQ(Matcher::Parse(c.matcher, &error).has_value(), c.valid) << c.matcher << " " << error;
  }
  std::string error;
  EXPECT_TRUE(Matcher::Parse("a=~\"(?i)payment\"", &error)->Matches({{"a", "PAYMENT"}}));
}

RouteNode Node(std::string name, std::vector<std::string> matchers,
               std::vector<std::string> channels, bool cont = false,
               std::vector<RouteNode> children = {}, std::string policy = "") {
  RouteNode n;
  n.name = std::move(name);
  for (const auto& text : matchers) {
    std::string error;
    n.matchers.push_back(*Matcher::Parse(text, &error));
  }
  n.channels = std::move(channels);
  n.continue_matching = cont;
  n.routes = std::move(children);
  n.escalation_policy = std::move(policy);
  return n;
}

TEST(RoutingTest, Table) {
  // critical -> (payments -> pd+sms | else pd), continue to the audit webhook;
  // warning -> slack; catch-all -> email.
  const std::vector<RouteNode> tree = {
      Node("critical", {"severity=critical"}, {"pagerduty"}, true,
           {Node("critical-payments", {"team=payments"}, {"pagerduty", "sms"}, false, {},
                 "payments-oncall")},
           "primary"),
      Node("audit", {"severity=~critical|warning"}, {"audit-webhook"}, true),
      Node("warning", {"severity=warning"}, {"slack"}),
      Node("everything-else", {}, {"email"}),
  };
  const struct {
    const char* name;
    Labels labels;
    std::vector<std::string> channels;
    std::vector<std::string> routes;
    std::vector<std::string> policies;
  } cases[] = {
      {"critical payments: child wins, continue to audit, then the catch-all stops",
       {{"severity", "critical"}, {"team", "payments"}},
       {"pagerduty", "sms", "audit-webhook", "email"},
       {"critical-payments", "audit", "everything-else"},
       {"payments-oncall"}},
      {"critical other team: the parent itself",
       {{"severity", "critical"}, {"team", "crm"}},
       {"pagerduty", "audit-webhook", "email"},
       {"critical", "audit", "everything-else"},
       {"primary"}},
      {"warning: audit continues into warning, which stops",
       {{"severity", "warning"}},
       {"audit-webhook", "slack"},
       {"audit", "warning"},
       {}},
      {"info: catch-all", {{"severity", "info"}}, {"email"}, {"everything-else"}, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const RoutingDecision d = RouteAlert(tree, c.labels);
    std::vector<std::string> channels;
    for (const auto& t : d.targets) channels.push_back(t.channel);
    EXPECT_EQ(channels, c.channels);
    EXPECT_EQ(d.routes, c.routes);
    EXPECT_EQ(d.escalation_policies, c.policies);
  }
}

TEST(RoutingTest, NoMatchIsAnEmptyDecision) {
  const std::vector<RouteNode> tree = {Node("only-critical", {"severity=critical"}, {"pd"})};
  const RoutingDecision d = RouteAlert(tree, {{"severity", "info"}});
  EXPECT_FALSE(d.matched());
  EXPECT_TRUE(d.targets.empty());
  EXPECT_FALSE(RouteAlert({}, {}).matched());
}

TEST(RoutingTest, ChannelNamedTwiceIsNotifiedOnce) {
  const std::vector<RouteNode> tree = {Node("a", {}, {"slack", "email"}, true),
                                       Node("b", {}, {"email", "sms"})};
  const RoutingDecision d = RouteAlert(tree, {});
  ASSERT_EQ(d.targets.size(), 3u);
  EXPECT_EQ(d.targets[1].channel, "email");
  EXPECT_EQ(d.targets[1].route, "a");
}

TEST(RoutingTest, RoutingLabelsUseClassifiedSeverityAndSource) {
  IncomingAlert a;
  a.view.source = "sentry";
  a.view.severity = "critical";
  a.view.labels = {{"severity", "fatal"}, {"project", "x"}};
  Labels l = RoutingLabels(a);
  EXPECT_EQ(l.at("severity"), "critical");
  EXPECT_EQ(l.at("source"), "sentry");
  a.view.labels["source"] = "billing-job";
  EXPECT_EQ(RoutingLabels(a).at("source"), "billing-job") << "the alert's own source label wins";
}

TEST(AuthTest, Table) {
  AuthConfig auth;
  auth.bearer_tokens = {"s3cret-token", "other"};
  auth.basic_users = {{"alertmanager", "pa:ss"}};
  // "alertmanager:pa:ss" and "alertmanager:wrong" in base64.
  const std::string good_basic = "Basic YWxlcnRtYW5hZ2VyOnBhOnNz";
  const std::string bad_basic = "Basic YWxlcnRtYW5hZ2VyOndyb25n";
  const struct {
    const char* name;
    std::string header;
    std::string query;
    bool allow_query;
    AuthResult want;
  } cases[] = {
      {"bearer", "Bearer s3cret-token", "", false, AuthResult::kOk},
      {"second bearer", "Bearer other", "", false, AuthResult::kOk},
      {"scheme any case", "bearer s3cret-token", "", false, AuthResult::kOk},
      {"extra spaces", "  Bearer   s3cret-token  ", "", false, AuthResult::kOk},
      {"wrong bearer", "Bearer s3cret", "", false, AuthResult::kInvalid},
      {"empty bearer", "Bearer ", "", false, AuthResult::kInvalid},
      {"basic", good_basic, "", false, AuthResult::kOk},
      {"wrong password", bad_basic, "", false, AuthResult::kInvalid},
      {"bad base64", "Basic !!!", "", false, AuthResult::kInvalid},
      {"unknown scheme", "Digest x", "", false, AuthResult::kInvalid},
      {"nothing", "", "", false, AuthResult::kMissing},
      {"query token not allowed", "", "s3cret-token", false, AuthResult::kMissing},
      {"query token allowed", "", "s3cret-token", true, AuthResult::kOk},
      {"wrong query token", "", "nope", true, AuthResult::kInvalid},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auth.allow_query_token = c.allow_query;
    EXPECT_EQ(Authenticate(auth, c.header, c.query), c.want);
  }
  AuthConfig open;
  open.insecure_no_auth = true;
  EXPECT_EQ(Authenticate(open, "", ""), AuthResult::kOk);
}

TEST(AuthTest, Base64) {
  std::string out;
  ASSERT_TRUE(Base64Decode("aGVsbG8=", &out));
  EXPECT_EQ(out, "hello");
  ASSERT_TRUE(Base64Decode("aGVsbG8", &out));
  EXPECT_EQ(out, "hello");
  EXPECT_FALSE(Base64Decode("a", &out));
  EXPECT_FALSE(Base64Decode("a*bc", &out));
}

// A complete config in the documented format; `extra` is appended.
std::string Yaml(const std::string& extra = "", const std::string& routes = "") {
  return R"(
auth:
  bearer_tokens:
    - token_env: BPMC_TEST_RECEIVER_TOKEN
channels:
  ops-slack:
    type: slack
    url: http://127.0.0.1:1/hook
  oncall-sms:
    type: sms
    url: http://127.0.0.1:1/sms
    to: ["+70000000001", "+70000000002"]
routes:
)" +
         (routes.empty() ? std::string(R"(
  - name: critical
    match: {severity: critical}
    notify: [ops-slack, oncall-sms]
    escalation_policy: primary
    routes:
      - match_re: {team: "pay.*"}
        continue: true
      - matchers: ['env!="dev"']
        notify: [ops-slack]
  - notify: [ops-slack]
escalation_policies:   # routes' policies must exist (docs/INCIDENTS.md)
  primary:
    levels: [{delay: 30m, targets: [{channel: ops-slack}]}]
)")
                         : routes) +
         extra;
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv("BPMC_TEST_RECEIVER_TOKEN", "tok", 1); }
  void TearDown() override { unsetenv("BPMC_TEST_RECEIVER_TOKEN"); }
};

TEST_F(ConfigTest, LoadsTheDocumentedFormat) {
  ReceiverConfig c;
  auto e = LoadConfigYaml(Yaml(), &c);
  ASSERT_FALSE(e) << e->ToString();
  EXPECT_EQ(c.auth.bearer_tokens, std::vector<std::string>{"tok"});
  ASSERT_EQ(c.routes.size(), 2u);
  const RouteNode& critical = c.routes[0];
  EXPECT_EQ(critical.name, "critical");
  ASSERT_EQ(critical.routes.size(), 2u);
  // Children inherit what they omit.
  EXPECT_EQ(critical.routes[0].channels, (std::vector<std::string>{"ops-slack", "oncall-sms"}));
  EXPECT_EQ(critical.routes[0].escalation_policy, "primary");
  EXPECT_TRUE(critical.routes[0].continue_matching);
  EXPECT_EQ(critical.routes[0].name, "routes[0].routes[0]");
  EXPECT_EQ(critical.routes[1].channels, std::vector<std::string>{"ops-slack"});
  EXPECT_EQ(c.routes[1].name, "routes[1]");

  // Planning: a critical alert fans out to both SMS numbers.
  IncomingAlert a;
  a.view.source = "alertmanager";
  a.view.status = "firing";
  a.raw_severity = "page";
  a.view.labels = {{"team", "payments"}, {"env", "dev"}};
  PlannedAlert p = PlanAlert(a, c.routes, c.notifier, c.default_severity);
  EXPECT_EQ(p.alert.view.severity, "critical");
  const std::vector<std::pair<std::string, std::string>> want = {
      {"ops-slack", ""}, {"oncall-sms", "+70000000001"}, {"oncall-sms", "+70000000002"}};
  EXPECT_EQ(p.recipients, want);
  EXPECT_EQ(p.routing.escalation_policies, std::vector<std::string>{"primary"});
}

TEST_F(ConfigTest, ErrorsNameTheKey) {
  const struct {
    const char* name;
    std::string yaml;
    const char* key;
  } cases[] = {
      {"unknown top-level key", Yaml("bogus: 1\n"), "bogus"},
      {"bad listen", Yaml("listen: nowhere\n"), "listen"},
      {"bad default severity", Yaml("default_severity: urgent\n"), "default_severity"},
      {"http_threads range", Yaml("http_threads: 1\n"), "http_threads"},
      {"unknown log format", Yaml("log_format: logfmt\n"), "log_format"},
      {"unknown log level", Yaml("log_level: verbose\n"), "log_level"},
      {"spdlog's level name", Yaml("log_level: warning\n"), "log_level"},
      {"log level not a scalar", Yaml("log_level: [info]\n"), "log_level"},
      {"deadline range", Yaml("request_deadline_ms: 100\n"), "request_deadline_ms"},
      {"client cap range", Yaml("max_requests_per_client: -3\n"), "max_requests_per_client"},
      {"proxies not a list", Yaml("trusted_proxies: 10.0.0.1\n"), "trusted_proxies"},
      {"bad proxy", Yaml("trusted_proxies: [10.0.0.0/8, 10.0.0/8]\n"), "trusted_proxies[1]"},
      {"unknown channel in a route", Yaml("", "  - notify: [nope]\n"), "routes[0].notify[0]"},
      {"unknown channel in a child",
       Yaml("", "  - notify: [ops-slack]\n    routes:\n      - notify: [ops-slack, x]\n"),
       "routes[0].routes[0].notify[1]"},
      {"bad regex", Yaml("", "  - match_re: {a: \"(\"}\n"), "routes[0].match_re.a"},
      {"bad matcher", Yaml("", "  - matchers: ['a<b']\n"), "routes[0].matchers[0]"},
      {"unknown route key", Yaml("", "  - notfiy: [ops-slack]\n"), "routes[0].notfiy"},
      {"routes not a list", Yaml("", " {}\n"), "routes"},
      {"continue not bool", Yaml("", "  - continue: maybe\n"), "routes[0].continue"},
      {"yaml syntax", Yaml("a: [\n"), "(yaml)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ReceiverConfig config;
    auto e = LoadConfigYaml(c.yaml, &config);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->key, c.key) << e->message;
    EXPECT_FALSE(e->message.empty());
  }
}

TEST_F(ConfigTest, ChannelErrorsKeepTheNotifierKeyPath) {
  // Channels come before routes in this document; the notifier names the key.
  ReceiverConfig c;
  auto e = LoadConfigYaml(R"(
auth: {insecure_no_auth: true}
channels:
  ops-slack:
    type: slack
)",
                          &c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->key.rfind("channels.ops-slack", 0), 0u) << e->ToString();
}

TEST_F(ConfigTest, AuthIsRequiredAndSecretsComeFromEnvOrFiles) {
  ReceiverConfig c;
  auto e = LoadConfigYaml("channels: {}\n", &c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->key, "auth");

  ReceiverConfig c2;
  e = LoadConfigYaml("auth:\n  bearer_tokens:\n    - token: plain\n", &c2);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->key, "auth.bearer_tokens[0].token");

  ReceiverConfig c3;
  e = LoadConfigYaml("auth:\n  bearer_tokens:\n    - token_env: BPMC_TEST_UNSET_VARIABLE\n", &c3);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->key, "auth.bearer_tokens[0].token_env");

  const std::string path = ::testing::TempDir() + "/receiver-password";
  std::ofstream(path) << "hunter2\n";
  ReceiverConfig c4;
  e = LoadConfigYaml(
      "auth:\n  basic_auth:\n    - username: am\n      password_file: " + path + "\n", &c4);
  ASSERT_FALSE(e) << e->ToString();
  ASSERT_EQ(c4.auth.basic_users.size(), 1u);
  EXPECT_EQ(c4.auth.basic_users[0].password, "hunter2");
}

TEST_F(ConfigTest, TheExampleFileIsValid) {
  const char* src = std::getenv("BPMC_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "run through ctest (BPMC_SOURCE_DIR)";
  std::ifstream in(std::string(src) + "/webhook_receiver/receiver.example.yaml");
  ASSERT_TRUE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string yaml = ss.str();
  // Its secrets: the token file and the environment variables it names.
  const std::string token = ::testing::TempDir() + "/receiver-example-token";
  std::ofstream(token) << "example-token\n";
  const std::string path = "/run/secrets/bpmc-receiver-token";
  yaml.replace(yaml.find(path), path.size(), token);
  for (const char* v : {"BPMC_RECEIVER_AM_PASSWORD", "BPMC_SMTP_PASSWORD", "BPMC_SLACK_WEBHOOK_URL",
                        "BPMC_SMS_TOKEN", "BPMC_WEBHOOK_SECRET", "BPMC_PAGERDUTY_ROUTING_KEY"})
    setenv(v,
           std::string(v) == "BPMC_SLACK_WEBHOOK_URL" ? "https://hooks.slack.com/services/x" : "s",
           1);
  setenv("BPMC_ACK_LINK_SECRET", "example-ack-link-secret", 1);
  setenv("BPMC_WATCHDOG_TOKEN", "example-watchdog-token", 1);
  ReceiverConfig c;
  auto e = LoadConfigYaml(yaml, &c);
  ASSERT_FALSE(e) << e->ToString();
  EXPECT_EQ(c.listen, "127.0.0.1:9471");
  EXPECT_EQ(c.routes.size(), 4u);
  EXPECT_EQ(c.notifier.channels.size(), 5u);
  // A critical payment alert: the payments child, then audit (continue), which stops.
  IncomingAlert a;
  a.view.source = "alertmanager";
  a.raw_severity = "critical";
  a.view.labels = {{"alertname", "PaymentFailures"}};
  const PlannedAlert p = PlanAlert(a, c.routes, c.notifier, c.default_severity);
  EXPECT_EQ(p.routing.routes, (std::vector<std::string>{"payments", "audit"}));
  EXPECT_EQ(p.routing.escalation_policies, std::vector<std::string>{"payments"});
  EXPECT_EQ(p.recipients.size(), 5u);  // slack, pagerduty, 2 SMS numbers, audit webhook
  // The Watchdog's heartbeat, whose HeartbeatMissed pages like any critical alert.
  ASSERT_EQ(c.heartbeats.size(), 1u);
  EXPECT_EQ(c.heartbeats[0].name, "alertmanager-watchdog");
  EXPECT_EQ(c.heartbeats[0].interval_us, 60'000'000);
  EXPECT_EQ(c.heartbeats[0].grace_us, 120'000'000);
  EXPECT_EQ(c.heartbeats[0].token, "example-watchdog-token");
}

TEST_F(ConfigTest, CommandLine) {
  const std::string path = ::testing::TempDir() + "/receiver-cli.yaml";
  std::ofstream(path) << Yaml();
  unsetenv("BPMC_DATABASE_URL");
  const struct {
    const char* name;
    std::vector<std::string> argv;
    const char* error_key;  // "" = parses
    const char* command;
  } cases[] = {
      {"serve", {"serve", "--config", path}, "", "serve"},
      {"default command", {"--config=" + path}, "", "serve"},
      {"check-config", {"check-config", "--config", path}, "", "check-config"},
      {"migrate needs no config", {"migrate", "--database-url", "postgresql:///x"}, "", "migrate"},
      {"help", {"--help"}, "", "help"},
      {"serve needs a config", {"serve"}, "--config", ""},
      {"missing file", {"check-config", "--config", "/nonexistent.yaml"}, "--config", ""},
      {"unknown flag", {"--conf", path}, "--conf", ""},
      {"flag without value", {"serve", "--config"}, "--config", ""},
      {"bad listen flag", {"--config", path, "--listen", "x"}, "--listen", ""},
      {"unknown command", {"frobnicate"}, "frobnicate", ""},
      {"two commands", {"serve", "migrate"}, "migrate", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ParseCommandLine(c.argv);
    if (*c.error_key == '\0') {
      ASSERT_TRUE(std::holds_alternative<CommandLine>(r)) << std::get<ConfigError>(r).ToString();
      EXPECT_EQ(std::get<CommandLine>(r).command, c.command);
    } else {
      ASSERT_TRUE(std::holds_alternative<ConfigError>(r));
      EXPECT_EQ(std::get<ConfigError>(r).key, c.error_key) << std::get<ConfigError>(r).message;
    }
  }
  auto r = ParseCommandLine(
      {"--config", path, "--listen", "127.0.0.1:9999", "--database-url", "postgresql:///y"});
  ASSERT_TRUE(std::holds_alternative<CommandLine>(r));
  EXPECT_EQ(std::get<CommandLine>(r).config.listen, "127.0.0.1:9999");
  EXPECT_EQ(std::get<CommandLine>(r).config.database_url, "postgresql:///y");
}

}  // namespace
}  // namespace bpmc::webhook_receiver
