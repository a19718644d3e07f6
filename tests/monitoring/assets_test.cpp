// The monitoring assets checked without servers: promtool (config, rules, rule unit tests),
// amtool (config, every route), the blackbox exporter's config check, the Grafana dashboards
// and provisioning files, the runbook; and table tests of the helpers the real-server test
// relies on (template expansion, duration rewriting, Markdown anchors).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "monitoring_assets.h"
#include "testing/process.h"

namespace bpmc::monitoring {
namespace {

using bpmc::testing::RunCommand;

// Runs `command` through /bin/sh in the repository root; stdout and stderr go to *output.
int RunInSource(const std::string& command, std::string* output) {
  return RunCommand("cd " + ShellQuote(SourcePath(".")) + " && " + command + " 2>&1", output);
}

YAML::Node LoadYaml(const std::string& relative) { return YAML::LoadFile(SourcePath(relative)); }

nlohmann::json LoadJson(const std::string& relative) {
  return nlohmann::json::parse(ReadTextFile(SourcePath(relative)));
}

struct AlertRule {
  std::string name;
  std::string severity;
  bool has_for = false;
  YAML::Node node;
};

std::vector<AlertRule> AlertRules() {
  std::vector<AlertRule> out;
  for (const auto& group : LoadYaml("prometheus/rules/alerts.yml")["groups"]) {
    for (const auto& rule : group["rules"]) {
      AlertRule r;
      r.name = rule["alert"] ? rule["alert"].as<std::string>() : "";
      r.severity = rule["labels"]["severity"] ? rule["labels"]["severity"].as<std::string>() : "";
      r.has_for = static_cast<bool>(rule["for"]);
      r.node = static_cast<const YAML::Node&>(rule);
      out.push_back(r);
    }
  }
  return out;
}

const std::vector<std::string>& DashboardFiles() {
  static const std::vector<std::string> kFiles = {
      "grafana/dashboards/overview.json", "grafana/dashboards/connector.json",
      "grafana/dashboards/errors.json", "grafana/dashboards/users.json",
      "grafana/dashboards/business.json"};
  return kFiles;
}

// --- Prometheus ----------------------------------------------------------------------------

TEST(PrometheusAssets, PromtoolCheckConfigAndRules) {
  std::string out;
  EXPECT_EQ(RunInSource("promtool check config prometheus/prometheus.yml", &out), 0) << out;
  EXPECT_EQ(RunInSource("promtool check rules prometheus/rules/recording.yml "
                        "prometheus/rules/alerts.yml",
                        &out),
            0)
      << out;
}

TEST(PrometheusAssets, PromtoolTestRules) {
  std::string out;
  EXPECT_EQ(RunInSource("promtool test rules prometheus/tests/recording_test.yml "
                        "prometheus/tests/alerts_test.yml",
                        &out),
            0)
      << out;
}

TEST(PrometheusAssets, RecordingRulesAndAlertsLiveInSeparateFiles) {
  for (const auto& group : LoadYaml("prometheus/rules/recording.yml")["groups"]) {
    for (const auto& rule : group["rules"]) {
      EXPECT_TRUE(rule["record"] && !rule["alert"]) << "recording.yml holds an alert";
    }
  }
  for (const auto& rule : AlertRules()) {
    EXPECT_FALSE(rule.name.empty()) << "alerts.yml holds a recording rule";
  }
}

TEST(PrometheusAssets, EveryAlertHasSeveritySummaryDescriptionAndRunbook) {
  const std::set<std::string> severities = {"critical", "warning", "info"};
  for (const auto& rule : AlertRules()) {
    SCOPED_TRACE(rule.name);
    EXPECT_TRUE(severities.count(rule.severity)) << "severity '" << rule.severity << "'";
    for (const char* key : {"summary", "description", "runbook_url"}) {
      const YAML::Node value = rule.node["annotations"][key];
      EXPECT_TRUE(value && !value.as<std::string>().empty()) << "annotation " << key;
    }
  }
}

// prometheus/tests/alerts_test.yml must test every alert both while it must not fire (an
// empty exp_alerts: before its `for:` has passed, or a quiet case) and when it fires, with
// every severity the alert has.
TEST(PrometheusAssets, EveryAlertIsTestedOnBothSidesOfFor) {
  std::map<std::string, std::set<std::string>> fired_severities;
  std::set<std::string> quiet;
  const YAML::Node tests = LoadYaml("prometheus/tests/alerts_test.yml")["tests"];
  for (const auto& test : tests) {
    for (const auto& case_node : test["alert_rule_test"]) {
      const std::string name = case_node["alertname"].as<std::string>();
      const YAML::Node expected = case_node["exp_alerts"];
      if (!expected || expected.size() == 0) quiet.insert(name);
      for (const auto& alert : expected) {
        fired_severities[name].insert(alert["exp_labels"]["severity"].as<std::string>());
      }
    }
  }
  for (const auto& rule : AlertRules()) {
    SCOPED_TRACE(rule.name);
    EXPECT_TRUE(fired_severities[rule.name].count(rule.severity))
        << "no test where it fires with severity " << rule.severity;
    if (rule.has_for) {
      EXPECT_TRUE(quiet.count(rule.name)) << "no test before its for: passes";
    }
  }
}

TEST(PrometheusAssets, ScrapesEveryServiceAndAlertsToAlertmanager) {
  const YAML::Node config = LoadYaml("prometheus/prometheus.yml");
  std::map<std::string, YAML::Node> jobs;
  for (const auto& job : config["scrape_configs"]) {
    jobs[job["job_name"].as<std::string>()] = static_cast<const YAML::Node&>(job);
  }
  for (const char* job : {"bpmc-exporter", "bpmc-receiver", "alertmanager", "prometheus"}) {
    EXPECT_TRUE(jobs.count(job)) << "no scrape job " << job;
  }
  EXPECT_EQ(
      config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0].as<std::string>(),
      "127.0.0.1:9474");
  EXPECT_EQ(jobs["bpmc-exporter"]["static_configs"][0]["targets"][0].as<std::string>(),
            "127.0.0.1:9470");
  EXPECT_EQ(jobs["bpmc-receiver"]["static_configs"][0]["targets"][0].as<std::string>(),
            "127.0.0.1:9471");
}

// Every blackbox job asks for a module that prometheus/blackbox.yml defines, labels its
// targets with dependency and kind (the alert and dashboards use them), and the file passes
// the exporter's own check.
TEST(PrometheusAssets, BlackboxConfigServesEveryProbeJob) {
  std::string out;
  EXPECT_EQ(RunInSource("prometheus-blackbox-exporter --config.check "
                        "--config.file=prometheus/blackbox.yml",
                        &out),
            0)
      << out;
  const YAML::Node modules = LoadYaml("prometheus/blackbox.yml")["modules"];
  int probe_jobs = 0;
  std::set<std::string> kinds;
  for (const auto& job : LoadYaml("prometheus/prometheus.yml")["scrape_configs"]) {
    if (!job["metrics_path"] || job["metrics_path"].as<std::string>() != "/probe") continue;
    ++probe_jobs;
    const std::string module = job["params"]["module"][0].as<std::string>();
    EXPECT_TRUE(modules[module]) << "module " << module << " is not in blackbox.yml";
    for (const auto& sc : job["static_configs"]) {
      EXPECT_TRUE(sc["labels"]["dependency"]) << job["job_name"].as<std::string>();
      if (sc["labels"]["kind"]) kinds.insert(sc["labels"]["kind"].as<std::string>());
    }
  }
  EXPECT_GE(probe_jobs, 1);
  EXPECT_EQ(kinds, (std::set<std::string>{"payments", "notifications", "external-api"}));
}

// --- Runbook -------------------------------------------------------------------------------

TEST(Runbook, OneSectionPerAlertAndEveryRunbookUrlPointsToIt) {
  const std::string base = "https://github.com/bpm-centr/bpmc/blob/main/docs/RUNBOOK.md#";
  std::set<std::string> anchors;
  for (const auto& heading : Level2Headings(ReadTextFile(SourcePath("docs/RUNBOOK.md")))) {
    anchors.insert(MarkdownAnchor(heading));
  }
  for (const auto& rule : AlertRules()) {
    SCOPED_TRACE(rule.name);
    EXPECT_TRUE(anchors.count(MarkdownAnchor(rule.name))) << "no '## " << rule.name << "'";
    const std::string url = rule.node["annotations"]["runbook_url"].as<std::string>();
    ASSERT_EQ(url.rfind(base, 0), 0u) << url << " does not start with " << base;
    EXPECT_EQ(url.substr(base.size()), MarkdownAnchor(rule.name)) << url;
  }
}

// --- Alertmanager --------------------------------------------------------------------------

TEST(AlertmanagerAssets, AmtoolCheckConfig) {
  std::string out;
  EXPECT_EQ(RunInSource("amtool check-config alertmanager/alertmanager.yml", &out), 0) << out;
}

// Runs `amtool config routes test` and returns whether the alert with `labels` goes to
// exactly `receiver`.
bool RoutesTo(const std::string& receiver, const std::vector<std::string>& labels,
              std::string* out) {
  std::string command =
      "amtool config routes test --config.file=alertmanager/alertmanager.yml "
      "--verify.receivers=" +
      ShellQuote(receiver);
  for (const auto& label : labels) command += " " + ShellQuote(label);
  return RunInSource(command, out) == 0;
}

TEST(AlertmanagerAssets, EveryCaseOfRoutesTxt) {
  std::istringstream in(ReadTextFile(SourcePath("alertmanager/tests/routes.txt")));
  std::string line;
  int cases = 0;
  std::set<std::string> receivers;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string receiver;
    if (!(words >> receiver) || receiver[0] == '#') continue;
    std::vector<std::string> labels;
    for (std::string label; words >> label;) labels.push_back(label);
    std::string out;
    EXPECT_TRUE(RoutesTo(receiver, labels, &out)) << line << "\n" << out;
    receivers.insert(receiver);
    ++cases;
  }
  EXPECT_GE(cases, 10);
  EXPECT_EQ(receivers, (std::set<std::string>{"bpmc-critical", "bpmc-warning", "bpmc-info",
                                              "bpmc-heartbeat"}));
}

TEST(AlertmanagerAssets, EveryAlertRoutesBySeverity) {
  for (const auto& rule : AlertRules()) {
    std::vector<std::string> labels = {"alertname=" + rule.name};
    for (const auto& label : rule.node["labels"]) {
      labels.push_back(label.first.as<std::string>() + "=" + label.second.as<std::string>());
    }
    const std::string expected =
        rule.name == "Watchdog" ? "bpmc-heartbeat" : "bpmc-" + rule.severity;
    std::string out;
    EXPECT_TRUE(RoutesTo(expected, labels, &out)) << rule.name << " -> " << out;
  }
}

// Alerts go to the receiver's Alertmanager intake with their resolutions; the Watchdog
// checks in with the receiver's heartbeat (a check-in has no resolution).
TEST(AlertmanagerAssets, WebhooksSendResolvedWithBearerTokenFromFile) {
  const YAML::Node config = LoadYaml("alertmanager/alertmanager.yml");
  int webhooks = 0;
  for (const auto& receiver : config["receivers"]) {
    const std::string name = receiver["name"].as<std::string>();
    for (const auto& hook : receiver["webhook_configs"]) {
      SCOPED_TRACE(name);
      ++webhooks;
      const bool heartbeat = name == "bpmc-heartbeat";
      EXPECT_EQ(hook["url"].as<std::string>(),
                heartbeat ? "http://127.0.0.1:9471/v1/heartbeat/alertmanager-watchdog"
                          : "http://127.0.0.1:9471/v1/alertmanager");
      EXPECT_EQ(hook["send_resolved"].as<bool>(), !heartbeat);
      const YAML::Node auth = hook["http_config"]["authorization"];
      EXPECT_EQ(auth["type"].as<std::string>(), "Bearer");
      EXPECT_TRUE(auth["credentials_file"]) << "token not read from a file";
      EXPECT_FALSE(auth["credentials"]) << "token written into the config";
    }
  }
  EXPECT_EQ(webhooks, 4);
  const auto group_by = config["route"]["group_by"].as<std::vector<std::string>>();
  EXPECT_EQ(group_by, (std::vector<std::string>{"alertname", "connector"}));
}

// --- Grafana -------------------------------------------------------------------------------

// Units the dashboards may use (Grafana unit ids); a typo shows as a bare number.
const std::set<std::string>& KnownUnits() {
  static const std::set<std::string> kUnits = {"ops", "reqps", "cps",         "percentunit",
                                               "s",   "short", "bool_on_off", "dateTimeAsIso"};
  return kUnits;
}

TEST(GrafanaAssets, DashboardsHaveStableUidsUnitsAndDataSourceVariables) {
  std::set<std::string> uids;
  for (const auto& file : DashboardFiles()) {
    SCOPED_TRACE(file);
    const nlohmann::json board = LoadJson(file);
    uids.insert(board.at("uid").get<std::string>());
    EXPECT_TRUE(board.at("id").is_null()) << "an id breaks importing into another Grafana";
    std::map<std::string, std::string> ds_vars;  // variable name -> plugin id
    for (const auto& var : board["templating"]["list"]) {
      if (var["type"] == "datasource") ds_vars[var["name"]] = var["query"];
    }
    std::set<int> ids;
    for (const auto& panel : DashboardPanels(board)) {
      const std::string title = panel.value("title", "");
      SCOPED_TRACE(title);
      EXPECT_FALSE(title.empty());
      EXPECT_TRUE(ids.insert(panel.at("id").get<int>()).second) << "duplicate panel id";
      EXPECT_TRUE(panel.contains("gridPos"));
      const std::string unit = panel["fieldConfig"]["defaults"].value("unit", "");
      EXPECT_TRUE(KnownUnits().count(unit)) << "unit '" << unit << "'";
      for (const auto& override_ :
           panel["fieldConfig"].value("overrides", nlohmann::json::array())) {
        for (const auto& property : override_["properties"]) {
          if (property["id"] == "unit") {
            EXPECT_TRUE(KnownUnits().count(property["value"])) << property["value"];
          }
        }
      }
      EXPECT_FALSE(panel.value("targets", nlohmann::json::array()).empty()) << "no query";
      const std::string ds_uid = panel["datasource"].value("uid", "");
      const std::string ds_type = panel["datasource"].value("type", "");
      ASSERT_TRUE(ds_uid.size() > 3 && ds_uid.rfind("${", 0) == 0)
          << "data source " << ds_uid << " is not a variable";
      const std::string var = ds_uid.substr(2, ds_uid.size() - 3);
      EXPECT_EQ(ds_vars[var], ds_type) << "data source variable $" << var;
    }
  }
  // Links and bookmarks use these: renaming one is a breaking change.
  EXPECT_EQ(uids, (std::set<std::string>{"bpmc-overview", "bpmc-connector", "bpmc-errors",
                                         "bpmc-users", "bpmc-business"}));
}

// Every connector filter compares with a variable ($connector, ${connector:...}), never a
// literal connector id.
TEST(GrafanaAssets, NoHardCodedConnectorNames) {
  static const std::regex kFilter(R"re(connector(_id)?\s*(=~|!~|!=|=|~|\bIN\b)\s*["'(^]*)re");
  for (const auto& file : DashboardFiles()) {
    const std::string text = ReadTextFile(SourcePath(file));
    EXPECT_EQ(text.find("crm-connector"), std::string::npos) << file;
    EXPECT_EQ(text.find("payment-connector"), std::string::npos) << file;
    for (const auto& query : DashboardQueries(nlohmann::json::parse(text))) {
      for (auto it = std::sregex_iterator(query.text.begin(), query.text.end(), kFilter);
           it != std::sregex_iterator(); ++it) {
        const size_t after = static_cast<size_t>(it->position(0) + it->length(0));
        EXPECT_EQ(query.text.substr(after, 1), "$")
            << file << " / " << query.panel_title << ": " << query.text;
      }
    }
  }
}

// Every query expands with values for the dashboard's own variables: nothing the real-server
// test (or Grafana) would not understand.
TEST(GrafanaAssets, EveryQueryUsesOnlyKnownVariablesAndMacros) {
  for (const auto& file : DashboardFiles()) {
    const nlohmann::json board = LoadJson(file);
    TemplateContext context;
    context.to = std::chrono::system_clock::now();
    context.from = context.to - RelativeTimeSpan(board["time"]["from"]);
    for (const auto& var : board["templating"]["list"]) {
      if (var["type"] != "datasource") context.variables[var["name"]] = "x";
    }
    for (const auto& query : DashboardQueries(board)) {
      std::string out, error;
      EXPECT_TRUE(ExpandTemplate(query.text, query.kind, context, &out, &error))
          << file << " / " << query.panel_title << ": " << error;
      // ('$' stays legitimate in SQL, as the end anchor of a regular expression.)
      if (query.kind == QueryKind::kPromQL) {
        EXPECT_EQ(out.find('$'), std::string::npos) << "unexpanded $ in " << out;
      }
    }
  }
}

TEST(GrafanaAssets, ProvisioningMatchesTheDashboards) {
  const YAML::Node sources = LoadYaml("grafana/provisioning/datasources/bpmc.yaml")["datasources"];
  std::set<std::string> types;
  for (const auto& ds : sources) {
    types.insert(ds["type"].as<std::string>());
    EXPECT_TRUE(ds["uid"]) << ds["name"].as<std::string>();
    EXPECT_FALSE(ds["password"]) << "a password outside secureJsonData";
    if (ds["secureJsonData"]) {
      EXPECT_EQ(ds["secureJsonData"]["password"].as<std::string>().rfind("$", 0), 0u)
          << "the password must come from the environment";
    }
  }
  EXPECT_EQ(types, (std::set<std::string>{kPrometheusType, kPostgresType}));
  const YAML::Node providers = LoadYaml("grafana/provisioning/dashboards/bpmc.yaml")["providers"];
  ASSERT_EQ(providers.size(), 1u);
  EXPECT_EQ(providers[0]["type"].as<std::string>(), "file");
  EXPECT_TRUE(providers[0]["options"]["path"]);
}

// --- Helpers (pure functions) --------------------------------------------------------------

TemplateContext FixedContext() {
  TemplateContext c;
  c.variables = {{"connector", "crm-connector"}, {"any", ".*"}, {"quote", "o'neil"}};
  c.all = {"any"};
  c.to = std::chrono::system_clock::from_time_t(1764151200);  // 2025-11-26T10:00:00Z
  c.from = c.to - std::chrono::hours(6);
  c.interval = "15s";
  c.rate_interval = "1m";
  return c;
}

TEST(ExpandTemplate, Table) {
  struct Case {
    QueryKind kind;
    std::string in;
    std::string out;  // empty: must fail
  };
  const std::vector<Case> cases = {
      {QueryKind::kPromQL, R"(rate(x{connector="$connector"}[$__rate_interval]))",
       R"(rate(x{connector="crm-connector"}[1m]))"},
      {QueryKind::kPromQL, R"(x{connector=~"${connector}"})", R"(x{connector=~"crm-connector"})"},
      {QueryKind::kPromQL, R"(x{connector=~"$any"})", R"(x{connector=~".*"})"},
      {QueryKind::kPromQL, "increase(x[$__range])", "increase(x[21600s])"},
      {QueryKind::kPromQL, "x[$__interval]", "x[15s]"},
      {QueryKind::kPromQL, "x{a=\"$unknown\"}", ""},
      {QueryKind::kPromQL, "$__timeFilter(t)", ""},
      {QueryKind::kSql, "WHERE c = ${connector:sqlstring}", "WHERE c = 'crm-connector'"},
      {QueryKind::kSql, "WHERE c = ${quote:sqlstring}", "WHERE c = 'o''neil'"},
      {QueryKind::kSql, "WHERE c ~ '^(${connector:regex})$'", "WHERE c ~ '^(crm\\-connector)$'"},
      {QueryKind::kSql, "WHERE c ~ '^(${any:regex})$'", "WHERE c ~ '^(.*)$'"},
      {QueryKind::kSql, "WHERE $__timeFilter(hour)",
       "WHERE hour BETWEEN '2025-11-26T04:00:00Z' AND '2025-11-26T10:00:00Z'"},
      {QueryKind::kSql, "WHERE $__timeFilter(date_trunc('day', t)) AND x",
       "WHERE date_trunc('day', t) BETWEEN '2025-11-26T04:00:00Z' AND '2025-11-26T10:00:00Z' AND "
       "x"},
      {QueryKind::kSql, "SELECT $__timeFrom(), $__timeTo()",
       "SELECT '2025-11-26T04:00:00Z', '2025-11-26T10:00:00Z'"},
      {QueryKind::kSql, "SELECT $__time(t)", "SELECT t AS \"time\""},
      {QueryKind::kSql, "SELECT $__timeGroupAlias(t, '5m')",
       "SELECT floor(extract(epoch from t)/300)*300 AS \"time\""},
      {QueryKind::kSql, "SELECT $__timeGroup(t, $__interval)",
       "SELECT floor(extract(epoch from t)/15)*15"},
      {QueryKind::kSql, "SELECT $__unixEpochFilter(t)", ""},
      {QueryKind::kSql, "WHERE c = ${connector:csv}", ""},
  };
  const TemplateContext context = FixedContext();
  for (const auto& c : cases) {
    std::string out, error;
    const bool ok = ExpandTemplate(c.in, c.kind, context, &out, &error);
    if (c.out.empty()) {
      EXPECT_FALSE(ok) << c.in << " -> " << out;
      EXPECT_FALSE(error.empty()) << c.in;
    } else {
      EXPECT_TRUE(ok) << c.in << ": " << error;
      EXPECT_EQ(out, c.out) << c.in;
    }
  }
}

TEST(RelativeTimeSpan, Table) {
  EXPECT_EQ(RelativeTimeSpan("now-6h"), std::chrono::hours(6));
  EXPECT_EQ(RelativeTimeSpan("now-30d"), std::chrono::hours(720));
  EXPECT_THROW(RelativeTimeSpan("now/d"), std::invalid_argument);
  EXPECT_THROW(RelativeTimeSpan("2025-01-01"), std::invalid_argument);
}

TEST(ShortenDurations, Table) {
  DurationRewrite rw;
  rw.ranges = {{"5m", "20s"}, {"1h", "30s"}};
  rw.offsets = {{"1d", "20s"}};
  rw.fors = {{"5m", "5s"}};
  struct Case {
    std::string in;
    std::string out;  // empty: must fail
  };
  const std::vector<Case> cases = {
      {"expr: rate(x[5m]) > 0\nfor: 5m\n", "expr: rate(x[20s]) > 0\nfor: 5s\n"},
      {"expr: x offset 1d + rate(y[1h] offset 1d)", "expr: x offset 20s + rate(y[30s] offset 20s)"},
      {"# both sides of every `for:` and [5m] in a comment\n",
       "# both sides of every `for:` and [20s] in a comment\n"},
      {"        for: 5m\n        labels:", "        for: 5s\n        labels:"},
      {"rate(x[10m])", ""},
      {"x offset 1w", ""},
      {"for: 30m", ""},
      {"max_over_time(x[1h:5m])", ""},
  };
  for (const auto& c : cases) {
    std::string out, error;
    const bool ok = ShortenDurations(c.in, rw, &out, &error);
    if (c.out.empty()) {
      EXPECT_FALSE(ok) << c.in << " -> " << out;
    } else {
      EXPECT_TRUE(ok) << c.in << ": " << error;
      EXPECT_EQ(out, c.out);
    }
  }
}

TEST(MarkdownAnchor, Table) {
  EXPECT_EQ(MarkdownAnchor("HighErrorRate"), "higherrorrate");
  EXPECT_EQ(MarkdownAnchor("High error rate!"), "high-error-rate");
  EXPECT_EQ(MarkdownAnchor("ExporterSpooling (disk)"), "exporterspooling-disk");
  EXPECT_EQ(MarkdownAnchor("snake_case-and-dash"), "snake_case-and-dash");
  EXPECT_EQ(Level2Headings("# T\n## A\n```\n## not\n```\n### B\n## C \n"),
            (std::vector<std::string>{"A", "C"}));
}

}  // namespace
}  // namespace bpmc::monitoring
