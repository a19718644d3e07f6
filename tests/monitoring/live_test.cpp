// The monitoring assets proven against real servers: a throwaway PostgreSQL 15, the real
// bpmc-exporter fed with synthetic usage and billing events, a real Prometheus (Debian 2.42)
// running the shipped prometheus.yml and rules, a real Alertmanager (0.25) running the
// shipped alertmanager.yml, and a loopback Recorder standing in for bpmc-receiver and the
// blackbox exporter. The copies the servers run differ from the shipped files only in ports,
// file paths and shortened intervals (ShortenDurations, group_wait/group_interval).
//
// Checked: every rule evaluates without error, every recording rule and every PromQL query
// of every dashboard returns series, every SQL query of every dashboard returns rows from
// the migrated schema; 10 % errors fire HighErrorRate through Alertmanager to the critical
// route and stopping them sends the resolution; the heartbeat has its own route; the
// inhibition rules mute what they say.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <iostream>
#include <pqxx/pqxx>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include "common/testing/temp_dir.h"
#include "common/time_format.h"
#include "monitoring_assets.h"
#include "recorder.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"

namespace bpmc::monitoring {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::BinPath;
using bpmc::testing::FreePort;
using bpmc::testing::Process;
using bpmc::testing::WaitFor;
using nlohmann::json;

// The test copy's durations for every window, offset and `for:` of the shipped rules
// (ShortenDurations fails on one missing here). Scrapes and evaluations run every second.
DurationRewrite TestDurations() {
  DurationRewrite rw;
  rw.ranges = {{"5m", "20s"}, {"10m", "20s"}, {"15m", "30s"}, {"1h", "30s"}};
  rw.offsets = {{"10m", "10s"}, {"1d", "20s"}, {"1w", "40s"}};
  rw.fors = {{"1m", "5s"}, {"2m", "5s"}, {"5m", "5s"}, {"10m", "5s"}, {"30m", "5s"}};
  return rw;
}

constexpr char kConnectors[2][20] = {"crm-connector", "payment-connector"};
constexpr char kOperations[3][16] = {"getContact", "createDeal", "listInvoices"};

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  return FormatRfc3339Micros(
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}

std::string EventId(long long n) {
  char buf[40];
  snprintf(buf, sizeof buf, "0190f1d2-7c3a-7b5e-9a1b-%012lld", n);
  return buf;
}

// Replaces every match of `pattern` with `replacement`; returns the number of matches.
int RegexReplace(std::string* text, const std::string& pattern, const std::string& replacement) {
  const std::regex re(pattern);
  const auto n =
      std::distance(std::sregex_iterator(text->begin(), text->end(), re), std::sregex_iterator());
  *text = std::regex_replace(*text, re, replacement);
  return static_cast<int>(n);
}

// Everything the tests share: started once for the suite, stopped at its end.
class Stack {
 public:
  // Starts everything; returns "" or what failed.
  std::string Start();
  void Stop();

  // POSTs JSON with a bearer token to the exporter; returns the status (or -1).
  int PostToExporter(const std::string& path, const std::string& token, const std::string& body);
  // Prometheus instant query; returns data.result (an array) or null on error.
  json PromQuery(const std::string& expr, std::string* error = nullptr);
  json GetJson(int port, const std::string& path);
  std::string ServerLogs();

  std::unique_ptr<bpmc::testing::TempDir> temp_dir;  // made by Start(), removed by Stop()
  std::string dir;                                   // temp_dir's path
  std::string db_conn;
  std::string acme_key, globex_key, platform_token;
  std::unique_ptr<Recorder> recorder;
  std::unique_ptr<Process> exporter, alertmanager, prometheus;
  int exporter_port = 0, prometheus_port = 0, alertmanager_port = 0;
  std::atomic<int> error_percent{10};

 private:
  std::string Cli(const std::vector<std::string>& args, std::string* error);
  std::string PrepareDatabase();
  std::string WriteConfigs();
  std::string SendBillingSetup();
  void Traffic();

  std::string db_url;
  std::atomic<bool> stop_{false};
  std::thread traffic_;
};

std::string Stack::Cli(const std::vector<std::string>& args, std::string* error) {
  std::vector<std::string> argv = {BinPath("bpmc-exporter")};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv, {"BPMC_DATABASE_URL=" + db_url});
  const int code = p.Wait(120s);
  if (code != 0 && error->empty()) {
    *error = "bpmc-exporter " + args[0] + " exited " + std::to_string(code) + ": " + p.Stderr();
  }
  std::string out = p.Stdout();  // the key or token is the last line
  while (!out.empty() && out.back() == '\n') out.pop_back();
  const size_t nl = out.rfind('\n');
  return nl == std::string::npos ? out : out.substr(nl + 1);
}

std::string Stack::PrepareDatabase() {
  auto& cluster = bpmc::testing::SharedCluster();
  const std::string db = cluster.CreateDatabase();
  db_url = cluster.Url(db);
  db_conn = cluster.ConnectionString(db);
  std::string error;
  Cli({"migrate"}, &error);
  Cli({"connector", "add", kConnectors[0], "CRM Connector"}, &error);
  Cli({"connector", "add", kConnectors[1], "Payment Connector"}, &error);
  acme_key = Cli({"api-key", "create", "acme"}, &error);
  globex_key = Cli({"api-key", "create", "globex"}, &error);
  platform_token = Cli({"platform-token", "create", "platform"}, &error);
  return error;
}

// The shipped files with the test's ports, token path and intervals, under dir.
std::string Stack::WriteConfigs() {
  std::filesystem::create_directories(dir + "/prometheus/rules");
  const std::string port = std::to_string(recorder->port());
  std::string prom = ReadTextFile(SourcePath("prometheus/prometheus.yml"));
  const std::vector<std::pair<std::string, std::string>> prom_edits = {
      {"scrape_interval: 15s", "scrape_interval: 1s"},
      {"scrape_timeout: 10s", "scrape_timeout: 1s"},
      {"evaluation_interval: 15s", "evaluation_interval: 1s"},
      {"127.0.0.1:9470", "127.0.0.1:" + std::to_string(exporter_port)},
      {"127.0.0.1:9471", "127.0.0.1:" + port},
      {"127.0.0.1:9473", "127.0.0.1:" + std::to_string(prometheus_port)},
      {"127.0.0.1:9474", "127.0.0.1:" + std::to_string(alertmanager_port)},
      {"127.0.0.1:9115", "127.0.0.1:" + port}};  // the Recorder answers /probe
  for (const auto& [from, to] : prom_edits) {
    if (ReplaceAll(&prom, from, to) == 0) return "prometheus.yml has no '" + from + "'";
  }
  WriteTextFile(dir + "/prometheus/prometheus.yml", prom);
  for (const char* name : {"recording.yml", "alerts.yml"}) {
    std::string shortened, error;
    if (!ShortenDurations(ReadTextFile(SourcePath(std::string("prometheus/rules/") + name)),
                          TestDurations(), &shortened, &error)) {
      return std::string(name) + ": " + error;
    }
    WriteTextFile(dir + "/prometheus/rules/" + std::string(name), shortened);
  }

  std::string am = ReadTextFile(SourcePath("alertmanager/alertmanager.yml"));
  if (ReplaceAll(&am, "127.0.0.1:9471", "127.0.0.1:" + port) == 0 ||
      RegexReplace(&am, R"(credentials_file: \S+)", "credentials_file: " + dir + "/token") == 0 ||
      RegexReplace(&am, R"(group_wait: \S+)", "group_wait: 1s") == 0 ||
      RegexReplace(&am, R"(group_interval: \S+)", "group_interval: 2s") == 0) {
    return "alertmanager.yml lacks a key the test rewrites";
  }
  WriteTextFile(dir + "/alertmanager.yml", am);
  return "";
}

// Subscriptions (a converted trial, a paid one, a cancelled one, an open trial) and one
// payment of each outcome, all a few minutes ago.
std::string Stack::SendBillingSetup() {
  const auto now = std::chrono::system_clock::now();
  auto event = [&](int n, const std::string& type, const std::string& customer,
                   const std::string& sub, int minutes_ago, const std::string& extra) {
    return R"({"event_id":")" + EventId(n) + R"(","type":")" + type + R"(","occurred_at":")" +
           Rfc3339(now - std::chrono::minutes(minutes_ago)) + R"(","customer":")" + customer +
           R"(","subscription_id":")" + sub + "\"" + extra + "}";
  };
  auto start = [](const std::string& connector, bool trial) {
    return R"(,"connector":")" + connector + R"(","plan":"monthly","trial":)" +
           (trial ? "true" : "false") + R"(,"price":{"amount_minor":149000,"currency":"RUB"})";
  };
  auto pay = [](const std::string& id, const std::string& connector, const std::string& reason) {
    return R"(,"payment_id":")" + id + R"(","connector":")" + connector +
           R"(","amount":{"amount_minor":149000,"currency":"RUB"})" +
           (reason.empty() ? "" : R"(,"reason":")" + reason + "\"");
  };
  const std::string batch =
      "[" + event(1, "subscription_started", "acme", "sub-acme", 10, start(kConnectors[0], true)) +
      "," + event(2, "trial_converted", "acme", "sub-acme", 9, "") + "," +
      event(3, "subscription_started", "globex", "sub-globex", 10, start(kConnectors[1], false)) +
      "," +
      event(4, "subscription_started", "initech", "sub-initech", 10, start(kConnectors[0], false)) +
      "," + event(5, "subscription_cancelled", "initech", "sub-initech", 5, "") + "," +
      event(6, "subscription_started", "umbrella", "sub-umbrella", 8, start(kConnectors[1], true)) +
      "," + event(7, "payment_succeeded", "acme", "sub-acme", 8, pay("pay-1", kConnectors[0], "")) +
      "," +
      event(8, "payment_failed", "globex", "sub-globex", 7,
            pay("pay-2", kConnectors[1], "card_declined")) +
      "]";
  const int status = PostToExporter("/v1/billing/events", platform_token, batch);
  return status == 201 ? "" : "billing setup answered " + std::to_string(status);
}

// Ten usage events every 100 ms from two customers on both connectors, error_percent of
// them failed (exactly, per 100 events); a payment every second, every tenth one failed.
void Stack::Traffic() {
  long long n = 0;
  long long payments = 0;
  for (int tick = 0; !stop_; ++tick) {
    std::string batch = "[";
    for (int i = 0; i < 10; ++i, ++n) {
      const bool error = n % 100 < error_percent.load();
      batch += std::string(i ? "," : "") + R"({"connector":")" + kConnectors[n % 2] +
               R"(","operation":")" + kOperations[n % 3] + R"(","make_account_id":"acct-)" +
               std::to_string(n % 40) + R"(","timestamp":")" +
               Rfc3339(std::chrono::system_clock::now()) + R"(","duration_ms":)" +
               std::to_string(20 + n * 37 % 300) +
               (error ? std::string(R"(,"status":"error","error_type":")") +
                            (n % 3 ? "timeout" : "auth_error") + "\""
                      : "") +
               "}";
    }
    PostToExporter("/v1/connector/usage/batch", tick % 2 ? acme_key : globex_key, batch + "]");
    if (tick % 10 == 0) {
      const bool acme = payments % 2 == 0;
      const bool failed = payments % 10 == 9;
      const std::string body = R"({"event_id":")" + EventId(1000 + payments) + R"(","type":")" +
                               (failed ? "payment_failed" : "payment_succeeded") +
                               R"(","occurred_at":")" + Rfc3339(std::chrono::system_clock::now()) +
                               R"(","customer":")" + (acme ? "acme" : "globex") +
                               R"(","subscription_id":")" + (acme ? "sub-acme" : "sub-globex") +
                               R"(","payment_id":"pay-live-)" + std::to_string(payments) +
                               R"(","connector":")" + kConnectors[acme ? 0 : 1] +
                               R"(","amount":{"amount_minor":149000,"currency":"RUB"})" +
                               (failed ? R"(,"reason":"card_declined")" : "") + "}";
      PostToExporter("/v1/billing/events", platform_token, body);
      ++payments;
    }
    std::this_thread::sleep_for(100ms);  // a steady rate, not a wait for an event
  }
}

bool Ready(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  const auto res = client.Get(path.c_str());
  return res && res->status == 200;
}

std::string Stack::Start() {
  try {
    temp_dir = std::make_unique<bpmc::testing::TempDir>("bpmc-monitoring");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  dir = temp_dir->path();
  std::string error = PrepareDatabase();
  if (!error.empty()) return error;

  const std::string token = "test-receiver-token-" + std::to_string(getpid());
  WriteTextFile(dir + "/token", token + "\n");
  recorder = std::make_unique<Recorder>(token);
  // Three distinct free ports (FreePort closes its socket, so it may repeat itself).
  while (exporter_port == prometheus_port || prometheus_port == alertmanager_port ||
         exporter_port == alertmanager_port) {
    exporter_port = FreePort();
    prometheus_port = FreePort();
    alertmanager_port = FreePort();
  }
  if (!(error = WriteConfigs()).empty()) return error;

  exporter = std::make_unique<Process>(std::vector<std::string>{
      BinPath("bpmc-exporter"), "serve", "--listen", "127.0.0.1:" + std::to_string(exporter_port),
      "--database-url", db_url, "--data-dir", dir + "/exporter"});
  alertmanager = std::make_unique<Process>(std::vector<std::string>{
      "prometheus-alertmanager", "--config.file=" + dir + "/alertmanager.yml",
      "--storage.path=" + dir + "/alertmanager-data",
      "--web.listen-address=127.0.0.1:" + std::to_string(alertmanager_port),
      "--cluster.listen-address=", "--log.level=warn"});
  prometheus = std::make_unique<Process>(std::vector<std::string>{
      "prometheus", "--config.file=" + dir + "/prometheus/prometheus.yml",
      "--storage.tsdb.path=" + dir + "/prometheus-data",
      "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port), "--log.level=warn",
      // Firing alerts are re-sent every minute by default; an alert sent before the notifier
      // knew Alertmanager would otherwise wait that long.
      "--rules.alert.resend-delay=2s"});
  if (!WaitFor([&] { return Ready(exporter_port, "/readyz"); }, 60s)) return "exporter not ready";
  if (!WaitFor([&] { return Ready(alertmanager_port, "/-/ready"); }, 60s))
    return "alertmanager not ready";
  if (!WaitFor([&] { return Ready(prometheus_port, "/-/ready"); }, 60s))
    return "prometheus not ready";
  if (!(error = SendBillingSetup()).empty()) return error;
  traffic_ = std::thread([this] { Traffic(); });
  return "";
}

void Stack::Stop() {
  stop_ = true;
  if (traffic_.joinable()) traffic_.join();
  for (Process* p : {prometheus.get(), alertmanager.get(), exporter.get()}) {
    if (p != nullptr) p->Signal(SIGTERM);
  }
  for (Process* p : {prometheus.get(), alertmanager.get(), exporter.get()}) {
    if (p != nullptr) p->Wait(30s);
  }
  recorder.reset();
  temp_dir.reset();
}

int Stack::PostToExporter(const std::string& path, const std::string& token,
                          const std::string& body) {
  httplib::Client client("127.0.0.1", exporter_port);
  client.set_read_timeout(10);
  const auto res =
      client.Post(path.c_str(), {{"Authorization", "Bearer " + token}}, body, "application/json");
  return res ? res->status : -1;
}

json Stack::PromQuery(const std::string& expr, std::string* error) {
  httplib::Client client("127.0.0.1", prometheus_port);
  client.set_read_timeout(10);
  const auto res = client.Post("/api/v1/query", httplib::Params{{"query", expr}});
  if (!res) {
    if (error) *error = "no answer";
    return nullptr;
  }
  const json body = json::parse(res->body, nullptr, false);
  if (res->status != 200 || body.is_discarded() || body.value("status", "") != "success") {
    if (error) *error = res->body;
    return nullptr;
  }
  return body["data"]["result"];
}

json Stack::GetJson(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10);
  const auto res = client.Get(path.c_str());
  if (!res || res->status != 200) return nullptr;
  return json::parse(res->body, nullptr, false);
}

std::string Stack::ServerLogs() {
  std::string out;
  for (auto [name, p] :
       {std::pair{"exporter", exporter.get()}, std::pair{"alertmanager", alertmanager.get()},
        std::pair{"prometheus", prometheus.get()}}) {
    if (p == nullptr) continue;
    std::string err = p->Stderr();
    if (err.size() > 3000) err = "..." + err.substr(err.size() - 3000);
    out += std::string("--- ") + name + " stderr:\n" + err + "\n";
  }
  return out;
}

// ------------------------------------------------------------------------------------------

class MonitoringLive : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new Stack();
    setup_error_ = new std::string(stack_->Start());
  }
  static void TearDownTestSuite() {
    stack_->Stop();
    delete stack_;
    delete setup_error_;
    stack_ = nullptr;
    setup_error_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(*setup_error_, "") << stack_->ServerLogs(); }
  void TearDown() override {
    if (HasFailure()) std::cerr << stack_->ServerLogs();
  }

  // Values for the dashboard's variables as Grafana would pick them: "All" where offered,
  // else the first value its query returns.
  static TemplateContext ContextFor(const json& board);
  // Whether the Recorder got an alert with `labels` (a subset) and `status` on `receiver`.
  static bool Received(const json& labels, const std::string& receiver, const std::string& status) {
    for (const auto& alert : stack_->recorder->Matching(labels)) {
      if (alert.receiver == receiver && alert.status == status) return true;
    }
    return false;
  }
  // Expands every `kind` query of every dashboard for that dashboard and polls
  // `has_data(query, &error)` until each has answered true once or `timeout` passes; a
  // failure names each query that never did. Returns the number of queries.
  static size_t ExpectEveryQueryHasData(
      QueryKind kind, const std::function<bool(const std::string&, std::string*)>& has_data,
      std::chrono::seconds timeout);
  static json AlertmanagerAlerts() {
    return stack_->GetJson(stack_->alertmanager_port, "/api/v2/alerts");
  }

  static Stack* stack_;
  static std::string* setup_error_;
};

Stack* MonitoringLive::stack_ = nullptr;
std::string* MonitoringLive::setup_error_ = nullptr;

std::vector<json> LoadDashboards() {
  std::vector<json> out;
  for (const auto& entry : std::filesystem::directory_iterator(SourcePath("grafana/dashboards"))) {
    if (entry.path().extension() == ".json") {
      out.push_back(json::parse(ReadTextFile(entry.path().string())));
    }
  }
  return out;
}

TemplateContext MonitoringLive::ContextFor(const json& board) {
  TemplateContext context;
  context.to = std::chrono::system_clock::now();
  context.from = context.to - RelativeTimeSpan(board["time"]["from"]);
  context.interval = "5s";
  context.rate_interval = "20s";
  static const std::regex kLabelValues(R"(label_values\((\w+),\s*(\w+)\))");
  for (const auto& var : board["templating"]["list"]) {
    const std::string name = var["name"];
    if (var["type"] == "datasource") continue;
    if (var.value("includeAll", false) && var.contains("allValue")) {
      context.variables[name] = var["allValue"];
      context.all.push_back(name);
      continue;
    }
    std::vector<std::string> values;
    const std::string definition = var.value("definition", "");
    std::smatch m;
    if (var["datasource"]["type"] == kPrometheusType &&
        std::regex_search(definition, m, kLabelValues)) {
      const json res = stack_->GetJson(
          stack_->prometheus_port, "/api/v1/label/" + m[2].str() + "/values?match[]=" + m[1].str());
      if (res.is_object()) {
        for (const auto& v : res["data"]) values.push_back(v);
      }
    } else if (var["datasource"]["type"] == kPostgresType) {
      pqxx::connection conn(stack_->db_conn);
      pqxx::read_transaction txn(conn);
      for (const auto& row : txn.exec(var["query"].get<std::string>())) {
        values.push_back(row[0].c_str());
      }
    }
    std::sort(values.begin(), values.end());
    context.variables[name] = values.empty() ? "" : values.front();
  }
  return context;
}

size_t MonitoringLive::ExpectEveryQueryHasData(
    QueryKind kind, const std::function<bool(const std::string&, std::string*)>& has_data,
    std::chrono::seconds timeout) {
  struct Pending {
    std::string where, query, last_error;
  };
  std::vector<Pending> pending;
  for (const auto& board : LoadDashboards()) {
    const TemplateContext context = ContextFor(board);
    for (const auto& q : DashboardQueries(board)) {
      if (q.kind != kind) continue;
      std::string expanded, error;
      EXPECT_TRUE(ExpandTemplate(q.text, q.kind, context, &expanded, &error)) << error;
      pending.push_back({q.dashboard_uid + " / " + q.panel_title + " / " + q.ref_id, expanded, ""});
    }
  }
  const size_t total = pending.size();
  WaitFor(
      [&] {
        for (auto it = pending.begin(); it != pending.end();) {
          it = has_data(it->query, &it->last_error) ? pending.erase(it) : std::next(it);
        }
        return pending.empty();
      },
      timeout);
  for (const auto& p : pending) {
    ADD_FAILURE() << "No data: " << p.where << "\n  " << p.query << "\n  " << p.last_error;
  }
  return total;
}

TEST_F(MonitoringLive, EveryRuleEvaluatesWithoutError) {
  std::string bad;
  const bool ok = WaitFor(
      [&] {
        const json res = stack_->GetJson(stack_->prometheus_port, "/api/v1/rules");
        if (!res.is_object()) return false;
        bad.clear();
        int rules = 0;
        for (const auto& group : res["data"]["groups"]) {
          for (const auto& rule : group["rules"]) {
            ++rules;
            if (rule.value("health", "") != "ok") {
              bad += rule.value("name", "") + ": " + rule.value("health", "") + " " +
                     rule.value("lastError", "") + "\n";
            }
          }
        }
        return rules > 0 && bad.empty();
      },
      60s);
  EXPECT_TRUE(ok) << bad;
}

TEST_F(MonitoringLive, EveryRecordingRuleReturnsSeries) {
  std::vector<std::string> records;
  for (const auto& group : YAML::LoadFile(SourcePath("prometheus/rules/recording.yml"))["groups"]) {
    for (const auto& rule : group["rules"]) records.push_back(rule["record"].as<std::string>());
  }
  ASSERT_FALSE(records.empty());
  std::set<std::string> missing(records.begin(), records.end());
  WaitFor(
      [&] {
        for (auto it = missing.begin(); it != missing.end();) {
          const json result = stack_->PromQuery(*it);
          it = result.is_array() && !result.empty() ? missing.erase(it) : std::next(it);
        }
        return missing.empty();
      },
      150s);
  for (const auto& name : missing) ADD_FAILURE() << "no series for recording rule " << name;
}

TEST_F(MonitoringLive, EveryPrometheusPanelQueryReturnsSeries) {
  const size_t n = ExpectEveryQueryHasData(
      QueryKind::kPromQL,
      [](const std::string& expr, std::string* error) {
        const json result = stack_->PromQuery(expr, error);
        if (result.is_array() && result.empty()) *error = "empty result";
        return result.is_array() && !result.empty();
      },
      120s);
  EXPECT_GE(n, 30u);
  RecordProperty("promql_queries", static_cast<int>(n));
}

// True when `sql`, run read-only, returns a row with at least one non-NULL value.
bool SqlHasData(const std::string& conn_string, const std::string& sql, std::string* error) {
  try {
    pqxx::connection conn(conn_string);
    pqxx::read_transaction txn(conn);
    for (const auto& row : txn.exec(sql)) {
      for (const auto& field : row) {
        if (!field.is_null()) return true;
      }
    }
    *error = "no rows (or only NULLs)";
  } catch (const std::exception& e) {
    *error = e.what();
  }
  return false;
}

TEST_F(MonitoringLive, EverySqlPanelQueryReturnsRows) {
  const size_t n = ExpectEveryQueryHasData(
      QueryKind::kSql,
      [](const std::string& sql, std::string* error) {
        return SqlHasData(stack_->db_conn, sql, error);
      },
      60s);
  EXPECT_GE(n, 20u);
  RecordProperty("sql_queries", static_cast<int>(n));
}

TEST_F(MonitoringLive, HeartbeatArrivesOnItsOwnRoute) {
  EXPECT_TRUE(WaitFor(
      [] {
        return Received({{"alertname", "Watchdog"}}, "bpmc-heartbeat", "firing");
      },
      60s));
  for (const auto& alert : stack_->recorder->Matching({{"alertname", "Watchdog"}})) {
    EXPECT_EQ(alert.receiver, "bpmc-heartbeat");
  }
  EXPECT_EQ(stack_->recorder->unauthorized_calls(), 0)
      << "the token file did not reach the webhook";
}

// Alerts pushed straight into Alertmanager: each inhibition rule's source is delivered, its
// target is suppressed (inhibitedBy in the API) and never delivered.
TEST_F(MonitoringLive, InhibitionRulesMuteWhatTheySay) {
  const auto now = std::chrono::system_clock::now();
  auto alert = [&](json labels) {
    return json{{"labels", labels},
                {"annotations", {{"summary", "pushed by monitoring_live_test"}}},
                {"startsAt", Rfc3339(now)},
                {"endsAt", Rfc3339(now + 10min)},
                {"generatorURL", "http://127.0.0.1/test"}};
  };
  const std::vector<json> sources = {
      {{"alertname", "ConnectorDown"}, {"severity", "critical"}, {"connector", "inhibit-probe"}},
      {{"alertname", "ConnectorHighResponseTime"},
       {"severity", "critical"},
       {"connector", "severity-probe"}},
      {{"alertname", "ExporterDatabaseDown"},
       {"severity", "critical"},
       {"instance", "probe:9470"}}};
  const std::vector<json> targets = {
      {{"alertname", "ConnectorHighErrorRate"},
       {"severity", "critical"},
       {"connector", "inhibit-probe"}},
      {{"alertname", "ConnectorHighResponseTime"},
       {"severity", "warning"},
       {"connector", "inhibit-probe"}},
      {{"alertname", "AnomalousTraffic"}, {"severity", "warning"}, {"connector", "inhibit-probe"}},
      {{"alertname", "ConnectorHighResponseTime"},
       {"severity", "warning"},
       {"connector", "severity-probe"}},
      {{"alertname", "ExporterSpooling"}, {"severity", "warning"}, {"instance", "probe:9470"}}};
  // A warning of another connector is not muted by severity-probe's critical.
  const json bystander = {{"alertname", "ConnectorHighResponseTime"},
                          {"severity", "warning"},
                          {"connector", "bystander-probe"}};
  json batch = json::array();
  for (const auto& labels : sources) batch.push_back(alert(labels));
  for (const auto& labels : targets) batch.push_back(alert(labels));
  batch.push_back(alert(bystander));
  httplib::Client client("127.0.0.1", stack_->alertmanager_port);
  const auto res = client.Post("/api/v2/alerts", batch.dump(), "application/json");
  ASSERT_TRUE(res && res->status == 200) << (res ? res->body : "no answer");

  for (const auto& labels : sources) {
    EXPECT_TRUE(WaitFor([&] { return Received(labels, "bpmc-critical", "firing"); }, 30s))
        << labels;
  }
  EXPECT_TRUE(WaitFor([&] { return Received(bystander, "bpmc-warning", "firing"); }, 30s));
  const json alerts = AlertmanagerAlerts();
  ASSERT_TRUE(alerts.is_array());
  auto state_of = [&](const json& labels) -> json {
    for (const auto& a : alerts) {
      bool match = true;
      for (const auto& [k, v] : labels.items()) match = match && a["labels"].value(k, "") == v;
      if (match) return a["status"];
    }
    return nullptr;
  };
  for (const auto& labels : targets) {
    const json status = state_of(labels);
    EXPECT_EQ(status.value("state", ""), "suppressed") << labels << " " << status;
    EXPECT_FALSE(status.value("inhibitedBy", json::array()).empty()) << labels;
    EXPECT_TRUE(stack_->recorder->Matching(labels).empty()) << labels << " was delivered";
  }
  for (const auto& labels : sources) EXPECT_EQ(state_of(labels).value("state", ""), "active");
  EXPECT_EQ(state_of(bystander).value("state", ""), "active");
}

// The issue's end-to-end case: 10 % errors fire HighErrorRate in Prometheus, Alertmanager
// routes it to bpmc-critical and the Recorder gets it; without errors the resolution follows.
TEST_F(MonitoringLive, HighErrorRateFiresAndResolvesThroughAlertmanager) {
  const json labels = {{"alertname", "HighErrorRate"}, {"severity", "critical"}};
  stack_->error_percent = 10;
  EXPECT_TRUE(WaitFor(
      [&] {
        const json res = stack_->GetJson(stack_->prometheus_port, "/api/v1/alerts");
        if (!res.is_object()) return false;
        for (const auto& a : res["data"]["alerts"]) {
          if (a["labels"].value("alertname", "") == "HighErrorRate" && a["state"] == "firing")
            return true;
        }
        return false;
      },
      120s))
      << "HighErrorRate never fired in Prometheus";
  ASSERT_TRUE(WaitFor([&] { return Received(labels, "bpmc-critical", "firing"); }, 60s))
      << "the firing notification did not reach the critical route";
  for (const char* connector : kConnectors) {
    EXPECT_TRUE(Received({{"alertname", "ConnectorHighErrorRate"}, {"connector", connector}},
                         "bpmc-critical", "firing"))
        << connector;
  }

  stack_->error_percent = 0;
  EXPECT_TRUE(WaitFor([&] { return Received(labels, "bpmc-critical", "resolved"); }, 120s))
      << "no resolved notification after the errors stopped";
  EXPECT_EQ(stack_->recorder->unauthorized_calls(), 0);
}

}  // namespace
}  // namespace bpmc::monitoring
