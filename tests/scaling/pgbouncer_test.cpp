// Both binaries through a real PgBouncer in transaction pooling mode (Debian's
// pgbouncer, docs/SCALING.md "PgBouncer"): a private PostgreSQL, PgBouncer with
// pool_mode=transaction and two server connections per database, and
// bpmc-exporter and bpmc-receiver with database_url pointing at PgBouncer and
// database_pooling: transaction. Each migrates its fresh database through
// PgBouncer; the exporter ingests single and batch events from several clients
// at once, aggregates them and answers analytics; the receiver takes an
// Alertmanager webhook (twice), delivers to a loopback webhook and has its incident
// acknowledged. Nothing may fail (bpmc_*_failures_total stays 0, no
// "prepared statement" error in the logs) and the numbers must be right.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>
#include <vector>

#include "analytics/access.h"
#include "common/testing/temp_dir.h"
#include "identity/api_keys.h"
#include "identity/users.h"
#include "recorders/http_recorder.h"
#include "testing/exporter_harness.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kPgBouncer = "/usr/sbin/pgbouncer";

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Sum of every sample of `metric` (any labels).
double MetricSum(const std::string& text, const std::string& metric) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(metric, 0) != 0) continue;
    const char next = line.size() > metric.size() ? line[metric.size()] : ' ';
    if (next != '{' && next != ' ') continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

long long Scalar(const std::string& url, const std::string& sql) {
  pqxx::connection conn(url);
  pqxx::nontransaction txn(conn);
  return txn.exec(sql)[0][0].as<long long>();
}

class PgBouncerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kPgBouncer, X_OK) != 0) GTEST_SKIP() << kPgBouncer << " is not installed";
    cluster_ = PgCluster::Start();
    // PgBouncer refuses to run as root; as root it switches to `user` itself.
    const std::string ini = cluster_->dir() + "/pgbouncer.ini";
    const std::string users = cluster_->dir() + "/userlist.txt";
    WriteFile(users, "\"postgres\" \"\"\n");
    bouncer_port_ = FreePort();
    WriteFile(ini, "[databases]\n* = host=" + cluster_->dir() +
                       " port=" + std::to_string(cluster_->port()) +
                       "\n[pgbouncer]\n"
                       "listen_addr = 127.0.0.1\nlisten_port = " +
                       std::to_string(bouncer_port_) +
                       "\nunix_socket_dir =\n"
                       "auth_type = trust\nauth_file = " +
                       users +
                       "\npool_mode = transaction\n"
                       "default_pool_size = 2\nmin_pool_size = 0\nreserve_pool_size = 0\n"
                       "max_client_conn = 500\nmax_db_connections = 2\n"
                       "ignore_startup_parameters = extra_float_digits\n" +
                       (geteuid() == 0 ? "user = postgres\n" : ""));
    bouncer_ = std::make_unique<Process>(std::vector<std::string>{kPgBouncer, ini});
    ASSERT_TRUE(WaitFor(
        [&] {
          try {
            pqxx::connection c(BouncerUrl("postgres"));
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        20s))
        << bouncer_->Stderr();
  }

  void TearDown() override {
    if (bouncer_) {
      bouncer_->Signal(SIGTERM);
      bouncer_->Wait(10s);
    }
  }

  std::string BouncerUrl(const std::string& db) const {
    return "host=127.0.0.1 port=" + std::to_string(bouncer_port_) + " user=postgres dbname=" + db;
  }

  // Server connections PostgreSQL has for `db` (what PgBouncer opened).
  long long Backends(const std::string& db) const {
    return Scalar(cluster_->ConnectionString("postgres"),
                  "SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db + "'");
  }

  std::unique_ptr<PgCluster> cluster_;
  std::unique_ptr<Process> bouncer_;
  int bouncer_port_ = 0;
  TempDir dir_{"bpmc-pgbouncer"};
};

TEST_F(PgBouncerTest, ExporterIngestsAggregatesAndAnswersThroughTransactionPooling) {
  const std::string db = cluster_->CreateDatabase();
  const std::string url = BouncerUrl(db);
  const int port = FreePort();
  WriteFile(dir_.File("exporter.yaml"),
            "database_pooling: transaction\nrollup_interval_ms: 200\nkey_refresh_ms: 200\n"
            "analytics_cache_ms: 0\nwriter_connections: 4\n");
  Process exporter({BinPath("bpmc-exporter"), "serve", "--config", dir_.File("exporter.yaml"),
                    "--listen", "127.0.0.1:" + std::to_string(port), "--database-url", url,
                    "--data-dir", dir_.File("exporter")});
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  // Migrated through PgBouncer (transaction-level advisory lock, one migration per transaction).
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = c.Get("/readyz");
        return r && r->status == 200;
      },
      60s))
      << exporter.Stderr();
  std::string api_key, admin;
  {
    pqxx::connection conn(url);
    identity::AddConnector(conn, "crm-connector", "CRM Connector");
    api_key = identity::CreateApiKey(conn, "acme");
    admin = *identity::CreateUser(conn, "ada", analytics::Role::kAdmin, "");
  }
  // Single events from four clients at once, then batches: transactions of many client
  // connections share PostgreSQL's two.
  std::vector<std::thread> clients;
  std::atomic<int> created{0};
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      httplib::Client cc("127.0.0.1", port);
      for (int i = 0; i < 25; ++i) {
        auto r = WaitFor(
            [&] {
              auto p =
                  cc.Post("/v1/connector/usage", Bearer(api_key), SeedBody(), "application/json");
              return p && p->status == 201;
            },
            10s);
        if (r) ++created;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(created, 100);
  for (int b = 0; b < 3; ++b) {
    std::string batch = "[";
    for (int i = 0; i < 50; ++i) batch += (i ? "," : "") + SeedBody("createDeal");
    batch += "]";
    auto r = c.Post("/v1/connector/usage/batch", Bearer(api_key), batch, "application/json");
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
  }
  // A retried event (same event_id and content): the checked insert path (a lookup
  // and an insert in one transaction) answers 201 again and stores it once.
  const std::string retried =
      SeedBody("getContact", R"(,"event_id":"0190a0b0-0000-7000-8000-00000000abcd")");
  for (int i = 0; i < 2; ++i) {
    auto r = c.Post("/v1/connector/usage", Bearer(api_key), retried, "application/json");
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
  }
  EXPECT_EQ(Scalar(url, "SELECT count(*) FROM connector_usage"), 251);
  // Aggregated (rollup statements unnamed), answered (no snapshot fan-out).
  json overview;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = c.Get("/api/v1/analytics/overview", {{"Authorization", "Bearer " + admin}});
        if (!r || r->status != 200) return false;
        overview = json::parse(r->body);
        return overview["operations_total"] == 251;
      },
      30s))
      << overview.dump() << exporter.Stderr();
  EXPECT_EQ(overview["freshness"]["source"], "primary");
  for (const char* path :
       {"connectors", "users", "financial", "errors", "connectors/crm-connector"}) {
    auto r = c.Get((std::string("/api/v1/analytics/") + path).c_str(),
                   {{"Authorization", "Bearer " + admin}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << path << " " << r->body;
  }
  EXPECT_LE(Backends(db), 2) << "PgBouncer did not pool";
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(MetricSum(metrics->body, "bpmc_exporter_failures_total"), 0) << metrics->body;
  EXPECT_EQ(MetricSum(metrics->body, "bpmc_exporter_aggregation_steps_total{result=\"error\"}"), 0);
  exporter.Signal(SIGTERM);
  EXPECT_EQ(exporter.Wait(60s), 0);
  const std::string log = exporter.Stderr() + exporter.Stdout();
  EXPECT_EQ(log.find("prepared statement"), std::string::npos) << log;
  EXPECT_EQ(log.find("[error]"), std::string::npos) << log;
  EXPECT_EQ(log.find("[warning]"), std::string::npos) << log;
}

TEST_F(PgBouncerTest, ReceiverDeliversAndAcknowledgesThroughTransactionPooling) {
  const std::string db = cluster_->CreateDatabase();
  const std::string url = BouncerUrl(db);
  auto hook = recorders::HttpRecorder::Webhook();
  const int port = FreePort();
  WriteFile(dir_.File("receiver.yaml"), R"(
database_pooling: transaction
auth:
  bearer_tokens:
    - token_env: BPMC_PGB_TOKEN
delivery:
  initial_backoff_seconds: 0.1
channels:
  hook:
    type: webhook
    url: )" + hook->Url("/hook") + R"(
    secret_env: BPMC_PGB_SECRET
routes:
  - name: critical
    match: {severity: critical}
    notify: [hook]
    escalation_policy: primary
incidents:
  poll_interval: 100ms
escalation_policies:
  primary:
    levels:
      - {delay: 30m, targets: [{channel: hook}]}
)");
  Process receiver({BinPath("bpmc-receiver"), "serve", "--config", dir_.File("receiver.yaml"),
                    "--listen", "127.0.0.1:" + std::to_string(port), "--database-url", url},
                   {"BPMC_PGB_TOKEN=pgb-token", "BPMC_PGB_SECRET=pgb-secret"});
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = c.Get("/readyz");
        return r && r->status == 200;
      },
      60s))
      << receiver.Stderr();
  std::string admin;
  {
    pqxx::connection conn(url);
    admin = *identity::CreateUser(conn, "olga", identity::Role::kAdmin, "");
  }
  const std::string payload = R"({"version":"4","groupKey":"{}:{alertname=\"DbDown\"}",
    "truncatedAlerts":0,"status":"firing","receiver":"bpmc","groupLabels":{},
    "commonLabels":{},"commonAnnotations":{},"externalURL":"http://127.0.0.1:9093",
    "alerts":[{"status":"firing","labels":{"alertname":"DbDown","severity":"critical"},
    "annotations":{"summary":"db down"},"startsAt":"2026-11-25T10:00:00Z",
    "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://x","fingerprint":"fp-dbdown"}]})";
  // Twice (Alertmanager HA pairs do that): stored once, paged once.
  for (int i = 0; i < 2; ++i) {
    auto r = c.Post("/v1/alertmanager", {{"Authorization", "Bearer pgb-token"}}, payload,
                    "application/json");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer") << receiver.Stderr();
  }
  ASSERT_TRUE(hook->WaitAccepted(2, 30s)) << receiver.Stderr();
  json incidents;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r =
            c.Get("/api/v1/incidents?status=triggered", {{"Authorization", "Bearer " + admin}});
        if (!r || r->status != 200) return false;
        incidents = json::parse(r->body)["incidents"];
        return incidents.size() == 1;
      },
      30s))
      << incidents.dump() << receiver.Stderr();
  const std::string id = incidents[0]["id"].is_string() ? incidents[0]["id"].get<std::string>()
                                                        : incidents[0]["id"].dump();
  auto ack = c.Post(("/api/v1/incidents/" + id + "/ack").c_str(),
                    {{"Authorization", "Bearer " + admin}}, "{}", "application/json");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status, 200) << ack->body;
  auto again = c.Post(("/api/v1/incidents/" + id + "/ack").c_str(),
                      {{"Authorization", "Bearer " + admin}}, "{}", "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409) << again->body;
  auto got = c.Get(("/api/v1/incidents/" + id).c_str(), {{"Authorization", "Bearer " + admin}});
  ASSERT_TRUE(got && got->status == 200);
  EXPECT_EQ(json::parse(got->body)["status"], "acknowledged") << got->body;
  std::this_thread::sleep_for(1s);  // a duplicate delivery would show by now
  // The route's notification and the incident's first page, each once.
  EXPECT_EQ(hook->AcceptedCount(), 2u);
  EXPECT_EQ(Scalar(url, "SELECT count(*) FROM notification_outbox WHERE state = 'delivered'"), 2);
  EXPECT_EQ(Scalar(url, "SELECT count(*) FROM notification_outbox"), 2);
  EXPECT_LE(Backends(db), 2) << "PgBouncer did not pool";
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(MetricSum(metrics->body, "bpmc_receiver_failures_total"), 0) << metrics->body;
  receiver.Signal(SIGTERM);
  EXPECT_EQ(receiver.Wait(60s), 0);
  const std::string log = receiver.Stderr() + receiver.Stdout();
  EXPECT_EQ(log.find("prepared statement"), std::string::npos) << log;
  EXPECT_EQ(log.find("[error]"), std::string::npos) << log;
  EXPECT_EQ(log.find("[warning]"), std::string::npos) << log;
}

}  // namespace
}  // namespace bpmc::testing
