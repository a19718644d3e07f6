// Reloading bpmc-receiver's config without a restart (docs/RECEIVER.md,
// "Reloading the config"), against a real PostgreSQL: POST /-/reload (an
// admin) and SIGHUP (the binary) put a changed route and schedule into effect;
// a broken file, or a change that needs a restart, keeps the running config
// and sets bpmc_receiver_config_last_reload_successful to 0; an incident whose
// escalation is under way when the config is reloaded reaches its next level.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "common/testing/temp_dir.h"
#include "identity/users.h"
#include "receiver_test_util.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"
#include "webhook_receiver/service.h"

namespace bpmc::webhook_receiver {
namespace {

using namespace std::chrono_literals;

struct Knobs {
  std::string route_channel = "ops-slack";  // where the critical route notifies
  std::string person = "ann";               // who the schedule puts on call
  std::string level0_delay = "30m";         // until the escalation's second level
  std::string extra;                        // appended YAML
};

std::string Yaml(const Knobs& k) {
  return R"(
auth:
  bearer_tokens:
    - token_env: BPMC_TEST_RECEIVER_TOKEN
channels:
  ops-slack: {type: slack, url: "http://127.0.0.1:9/ops", rate_limit: none}
  team-slack: {type: slack, url: "http://127.0.0.1:9/team", rate_limit: none}
routes:
  - name: critical
    match: {severity: critical}
    notify: [)" +
         k.route_channel + R"(]
    escalation_policy: primary
incidents:
  poll_interval: 100ms
escalation_policies:
  primary:
    levels:
      - {delay: )" +
         k.level0_delay + R"(, targets: [{schedule: main}]}
      - {delay: 30m, targets: [{channel: team-slack}]}
schedules:
  main:
    time_zone: UTC
    layers: [{rotation: daily, handoff: "00:00", start: 2026-01-01, participants: [)" +
         k.person + R"(]}]
people:
  ann: {name: Ann, contact_methods: [{type: slack, channel: ops-slack}]}
  bob: {name: Bob, contact_methods: [{type: slack, channel: ops-slack}]}
)" + k.extra;
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("BPMC_TEST_RECEIVER_TOKEN", "test-token", 1);
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
    pqxx::connection conn(url_);
    ApplySchema(conn, webhook_receiver::DatabaseSchema());
    admin_ = *identity::CreateUser(conn, "olga", identity::Role::kAdmin, "");
    manager_ = *identity::CreateUser(conn, "max", identity::Role::kManager, "");
  }
  void TearDown() override {
    if (service_) service_->Shutdown();
  }

  // The config as main() reads it: the file, then the flags.
  std::optional<ReceiverConfig> Load(std::string* error) {
    ReceiverConfig c;
    if (auto e = LoadConfigFile(path_, &c)) {
      *error = e->ToString();
      return std::nullopt;
    }
    c.listen = "127.0.0.1:0";
    c.database_url = url_;
    return c;
  }
  void Write(const std::string& yaml) { std::ofstream(path_) << yaml; }

  void Start(const Knobs& k) {
    Write(Yaml(k));
    std::string error;
    std::optional<ReceiverConfig> config = Load(&error);
    ASSERT_TRUE(config) << error;
    ServiceDeps deps;
    deps.start_delivery = false;  // outbox rows stay queued: the test reads them
    deps.load_config = [this](std::string* e) { return Load(e); };
    service_ = Service::Start(*config, deps, &error);
    ASSERT_TRUE(service_) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", service_->port());
    client_->set_read_timeout(30, 0);
  }

  httplib::Result Reload(const std::string& token) {
    return client_->Post("/-/reload", {{"Authorization", "Bearer " + token}}, "", "text/plain");
  }
  std::string OnCall() {
    auto r = client_->Get("/api/v1/oncall?schedule=main", {{"Authorization", "Bearer " + admin_}});
    EXPECT_EQ(r->status, 200) << r->body;
    const auto on = nlohmann::json::parse(r->body)["schedules"][0]["on_call"];
    return on.is_null() ? "" : on["person"]["id"].get<std::string>();
  }
  void Alert(const std::string& name) {
    auto r = client_->Post("/v1/alertmanager", {{"Authorization", "Bearer test-token"}},
                           test::AmPayload({test::Firing(name)}), "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
  }
  int64_t Outbox(const std::string& channel) {
    return test::Count(
        url_, "SELECT count(*) FROM notification_outbox WHERE channel = '" + channel + "'");
  }
  int64_t Pages(const std::string& channel) {
    return test::Count(url_,
                       "SELECT count(*) FROM incident_pages WHERE channel = '" + channel + "'");
  }
  std::string Metric(const std::string& name) {
    const std::string m = client_->Get("/metrics")->body;
    const size_t at = m.find("\n" + name + " ");
    if (at == std::string::npos) return "(absent)";
    const size_t v = at + name.size() + 2;
    return m.substr(v, m.find('\n', v) - v);
  }

  // The bpmc-receiver binary on path_ and a free port, ready (client_ talks to
  // it); nullptr (test failed) when it does not become ready.
  std::unique_ptr<bpmc::testing::Process> StartBinary() {
    const int port = bpmc::testing::FreePort();
    auto receiver = std::make_unique<bpmc::testing::Process>(
        std::vector<std::string>{bpmc::testing::BinPath("bpmc-receiver"), "serve", "--config",
                                 path_, "--listen", "127.0.0.1:" + std::to_string(port),
                                 "--database-url", url_},
        std::vector<std::string>{"BPMC_TEST_RECEIVER_TOKEN=test-token"});
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port);
    const bool ready = bpmc::testing::WaitFor(
        [&] {
          auto r = client_->Get("/readyz");
          return r && r->status == 200;
        },
        30s);
    EXPECT_TRUE(ready) << receiver->Stderr();
    return ready ? std::move(receiver) : nullptr;
  }

  bpmc::testing::TempDir dir_{"bpmc-reload"};
  std::string path_ = dir_.File("receiver.yaml");
  std::string url_, admin_, manager_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ReloadTest, ANewRouteAndScheduleTakeEffect) {
  Start({});
  EXPECT_EQ(OnCall(), "ann");
  Alert("Before");
  EXPECT_EQ(Outbox("team-slack"), 0);
  const int64_t ops = Outbox("ops-slack");
  EXPECT_GE(ops, 1);

  Knobs changed;
  changed.route_channel = "team-slack";
  changed.person = "bob";
  Write(Yaml(changed));
  // Only an admin reloads; nothing changes on a refusal.
  EXPECT_EQ(client_->Post("/-/reload", "", "text/plain")->status, 401);
  auto refused = Reload(manager_);
  EXPECT_EQ(refused->status, 403) << refused->body;
  EXPECT_EQ(OnCall(), "ann");
  auto r = Reload(admin_);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(OnCall(), "bob");
  Alert("After");
  EXPECT_GE(Outbox("team-slack"), 1);
  EXPECT_EQ(Metric("bpmc_receiver_config_last_reload_successful"), "1");
  EXPECT_EQ(Metric("bpmc_receiver_config_reloads_total{result=\"ok\"}"), "1");
  // Audited like the data APIs, refusals included.
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM audit_log WHERE endpoint = '/-/reload'"), 3);
}

TEST_F(ReloadTest, ABrokenFileKeepsTheRunningConfig) {
  Start({});
  const std::string started = Metric("bpmc_receiver_config_last_reload_success_timestamp_seconds");
  EXPECT_NE(started, "(absent)");
  EXPECT_EQ(Metric("bpmc_receiver_config_last_reload_successful"), "1");
  Knobs broken;
  broken.route_channel = "no-such-channel";
  broken.person = "bob";
  Write(Yaml(broken));
  auto r = Reload(admin_);
  ASSERT_EQ(r->status, 400) << r->body;
  const auto body = nlohmann::json::parse(r->body);
  EXPECT_EQ(body["field"], "config");
  EXPECT_NE(body["message"].get<std::string>().find("routes[0].notify"), std::string::npos)
      << r->body;
  EXPECT_EQ(Metric("bpmc_receiver_config_last_reload_successful"), "0");
  EXPECT_EQ(Metric("bpmc_receiver_config_reloads_total{result=\"invalid\"}"), "1");
  EXPECT_EQ(OnCall(), "ann");
  Alert("StillOps");
  EXPECT_EQ(Outbox("team-slack"), 0);

  // Not YAML at all.
  Write("routes: [");
  EXPECT_EQ(Reload(admin_)->status, 400);
  // A setting that needs a restart: refused, named.
  Knobs bigger;
  bigger.person = "bob";
  bigger.extra = "max_body_bytes: 100000\n";
  Write(Yaml(bigger));
  r = Reload(admin_);
  ASSERT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("max_body_bytes: changing it needs a restart"), std::string::npos)
      << r->body;
  EXPECT_EQ(Metric("bpmc_receiver_config_reloads_total{result=\"needs_restart\"}"), "1");
  EXPECT_EQ(OnCall(), "ann");
  EXPECT_EQ(Metric("bpmc_receiver_config_last_reload_success_timestamp_seconds"), started);

  // Fixed: the next reload succeeds.
  Knobs fixed;
  fixed.person = "bob";
  Write(Yaml(fixed));
  ASSERT_EQ(Reload(admin_)->status, 200);
  EXPECT_EQ(OnCall(), "bob");
  EXPECT_EQ(Metric("bpmc_receiver_config_last_reload_successful"), "1");
}

TEST_F(ReloadTest, AnEscalationUnderWayContinuesAcrossTheReload) {
  Knobs k;
  k.level0_delay = "4s";  // the channel level follows 4 s after the first page
  Start(k);
  Alert("Escalating");
  ASSERT_TRUE(bpmc::testing::WaitFor([&] { return Pages("ops-slack") >= 1; }, 20s));
  EXPECT_EQ(Pages("team-slack"), 0);
  // A reload while the incident waits for its second level (another on-call person).
  k.person = "bob";
  Write(Yaml(k));
  ASSERT_EQ(Reload(admin_)->status, 200);
  // The new engine reaches the second level from the state in PostgreSQL, once.
  ASSERT_TRUE(bpmc::testing::WaitFor([&] { return Pages("team-slack") >= 1; }, 30s));
  std::this_thread::sleep_for(1s);  // a second engine would page again within its poll
  EXPECT_EQ(Pages("team-slack"), 1);
  EXPECT_EQ(Pages("ops-slack"), 1);
}

// The binary: SIGHUP reloads the file given with --config (and the flags stay).
TEST_F(ReloadTest, SighupReloadsTheBinary) {
  Write(Yaml({}));
  const std::unique_ptr<bpmc::testing::Process> process = StartBinary();
  ASSERT_TRUE(process);
  bpmc::testing::Process& receiver = *process;
  EXPECT_EQ(OnCall(), "ann");
  Knobs changed;
  changed.person = "bob";
  Write(Yaml(changed));
  receiver.Signal(SIGHUP);
  EXPECT_TRUE(bpmc::testing::WaitFor([&] { return OnCall() == "bob"; }, 20s)) << receiver.Stderr();
  Write("routes: [");
  receiver.Signal(SIGHUP);
  EXPECT_TRUE(bpmc::testing::WaitFor(
      [&] { return Metric("bpmc_receiver_config_last_reload_successful") == "0"; }, 20s));
  EXPECT_EQ(OnCall(), "bob");
  EXPECT_TRUE(receiver.Running());
  receiver.Signal(SIGTERM);
  EXPECT_EQ(receiver.Wait(30s), 0) << receiver.Stderr();
  EXPECT_NE(receiver.Stderr().find("config reload failed, keeping the running config"),
            std::string::npos)
      << receiver.Stderr();
}

// The binary's logs (docs/OPERATIONS.md, "Logs"): with `log_format: json` every line on stderr
// is a JSON object; a reload to `text` switches the next lines, a broken file keeps the format.
TEST_F(ReloadTest, JsonLogsAndTheirReload) {
  Knobs json_logs;
  json_logs.extra = "log_format: json\nlog_level: info\n";
  Write(Yaml(json_logs));
  const std::unique_ptr<bpmc::testing::Process> process = StartBinary();
  ASSERT_TRUE(process);
  bpmc::testing::Process& receiver = *process;
  auto lines = [&](size_t from) {
    std::vector<std::string> out;
    std::istringstream in(receiver.Stderr().substr(from));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(line);
    return out;
  };
  auto is_json_line = [](const std::string& line) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    return j.is_object() && j.size() == 5 && j.contains("fields") &&
           j.value("logger", "") == "bpmc-receiver" && j.contains("time") && j.contains("level") &&
           j.contains("message");
  };
  ASSERT_FALSE(lines(0).empty());
  for (const std::string& line : lines(0)) EXPECT_TRUE(is_json_line(line)) << line;
  EXPECT_NE(receiver.Stderr().find("bpmc-receiver listening on"), std::string::npos);

  // A broken log level: refused, still JSON.
  Knobs bad = json_logs;
  bad.extra = "log_format: text\nlog_level: loud\n";
  Write(Yaml(bad));
  size_t mark = receiver.Stderr().size();
  receiver.Signal(SIGHUP);
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] { return Metric("bpmc_receiver_config_last_reload_successful") == "0"; }, 20s));
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] { return receiver.Stderr().find("log_level: must be", mark) != std::string::npos; }, 20s))
      << receiver.Stderr();
  for (const std::string& line : lines(mark)) EXPECT_TRUE(is_json_line(line)) << line;

  // Text from the next line on.
  Knobs text = json_logs;
  text.extra = "log_format: text\nlog_level: info\n";
  Write(Yaml(text));
  mark = receiver.Stderr().size();
  receiver.Signal(SIGHUP);
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] { return receiver.Stderr().find(" info config reloaded", mark) != std::string::npos; },
      20s))
      << receiver.Stderr();
  receiver.Signal(SIGTERM);
  EXPECT_EQ(receiver.Wait(30s), 0) << receiver.Stderr();
  const std::vector<std::string> after = lines(mark);
  ASSERT_FALSE(after.empty());
  EXPECT_NE(after.back().find(" info stopped"), std::string::npos) << after.back();
  EXPECT_FALSE(is_json_line(after.back()));
}

}  // namespace
}  // namespace bpmc::webhook_receiver
