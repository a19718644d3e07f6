// Faults with the real binary: kill -9 under load, PostgreSQL stopped and
// restarted under load (spool + replay), spool full, SIGTERM, bad config, and
// the administrative commands.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <thread>
#include <tuple>

#include "common/testing/temp_dir.h"
#include "testing/exporter_harness.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

// A bpmc-exporter child process on a free port.
class ExporterProcess {
 public:
  ExporterProcess(const std::string& db_url, const std::string& data_dir,
                  std::vector<std::string> extra = {}) {
    port_ = FreePort();
    std::vector<std::string> argv = {
        BinPath("bpmc-exporter"), "serve", "--listen",   "127.0.0.1:" + std::to_string(port_),
        "--database-url",         db_url,  "--data-dir", data_dir};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(argv);
    const bool up = WaitFor(
        [&] {
          httplib::Client c("127.0.0.1", port_);
          auto r = c.Get("/healthz");
          return r && r->status == 200;
        },
        std::chrono::seconds(30));
    EXPECT_TRUE(up) << proc_->Stderr();
  }
  int port() const { return port_; }
  Process& process() { return *proc_; }

 private:
  int port_ = 0;
  std::unique_ptr<Process> proc_;
};

std::string EventWithId(const std::string& id) {
  return R"({"event_id":")" + id +
         R"(","connector":"crm-connector","operation":"getContact","make_account_id":"42","timestamp":")" +
         NowIso() + "\"}";
}

std::string MakeId(uint64_t n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012llx",
                static_cast<unsigned long long>(n));
  return buf;
}

// Clients that send events with known ids and remember which were
// acknowledged (201). Every 4th request is a batch of 20.
class Load {
 public:
  Load(int clients, std::string api_key, std::function<int()> port)
      : key_(std::move(api_key)), port_(std::move(port)) {
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, c] { Run(c); });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::set<std::string> acked() {
    std::lock_guard<std::mutex> l(mu_);
    return acked_;
  }
  uint64_t acked_count() {
    std::lock_guard<std::mutex> l(mu_);
    return acked_.size();
  }
  uint64_t status_count(int status) { return status == 503 ? unavailable_.load() : 0; }

 private:
  void Run(int client) {
    uint64_t seq = 0;
    while (!stop_) {
      httplib::Client c("127.0.0.1", port_());
      c.set_keep_alive(true);
      c.set_connection_timeout(1);
      c.set_read_timeout(10);
      while (!stop_) {
        std::vector<std::string> ids;
        std::string body, path;
        const bool batch = seq % 4 == 3;
        const int n = batch ? 20 : 1;
        for (int i = 0; i < n; ++i) ids.push_back(MakeId((uint64_t(client) << 32) | seq++));
        if (batch) {
          body = "[";
          for (size_t i = 0; i < ids.size(); ++i) body += (i ? "," : "") + EventWithId(ids[i]);
          body += "]";
          path = "/v1/connector/usage/batch";
        } else {
          body = EventWithId(ids[0]);
          path = "/v1/connector/usage";
        }
        auto r = c.Post(path.c_str(), Bearer(key_), body, "application/json");
        if (!r) break;  // connection lost (killed): reconnect
        if (r->status == 201) {
          std::lock_guard<std::mutex> l(mu_);
          acked_.insert(ids.begin(), ids.end());
        } else if (r->status == 503) {
          ++unavailable_;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  const std::string key_;
  std::function<int()> port_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::set<std::string> acked_;
  std::atomic<uint64_t> unavailable_{0};
};

// Every acknowledged id is stored exactly once.
void ExpectAllAckedStoredOnce(const TestDatabase& db, const std::set<std::string>& acked) {
  pqxx::connection conn(db.url);
  pqxx::work txn(conn);
  EXPECT_EQ(txn.exec("SELECT count(*) FROM (SELECT id FROM connector_usage GROUP BY id "
                     "HAVING count(*) > 1) d")[0][0]
                .as<long long>(),
            0);
  std::set<std::string> stored;
  for (const auto& row : txn.exec("SELECT id::text FROM connector_usage"))
    stored.insert(row[0].as<std::string>());
  size_t missing = 0;
  for (const auto& id : acked)
    if (!stored.count(id)) ++missing;
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged";
}

TEST(FaultTest, KillNineUnderConcurrentLoadLosesNoAcknowledgedEvent) {
  TestDatabase db(SharedCluster());
  // Declared before the exporters: this process removes it after they are killed and reaped.
  const TempDir tmp("bpmc-kill9");
  const std::string& dir = tmp.path();
  std::atomic<int> port{0};
  auto exporter = std::make_unique<ExporterProcess>(db.url, dir);
  port = exporter->port();
  Load load(16, db.api_key, [&] { return port.load(); });
  std::mt19937 rng(12345);
  for (int round = 0; round < 3; ++round) {
    const uint64_t before = load.acked_count();
    ASSERT_TRUE(
        WaitFor([&] { return load.acked_count() > before + 500; }, std::chrono::seconds(60)));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
    exporter->process().Signal(SIGKILL);
    exporter->process().Wait(std::chrono::seconds(10));
    exporter = std::make_unique<ExporterProcess>(db.url, dir);
    port = exporter->port();
  }
  const uint64_t before = load.acked_count();
  ASSERT_TRUE(WaitFor([&] { return load.acked_count() > before + 200; }, std::chrono::seconds(60)));
  // SIGTERM under load: in-flight requests finish (their events are stored),
  // and the process exits 0.
  exporter->process().Signal(SIGTERM);
  EXPECT_EQ(exporter->process().Wait(std::chrono::seconds(30)), 0) << exporter->process().Stderr();
  load.Stop();
  const auto acked = load.acked();
  EXPECT_GT(acked.size(), 1500u);
  ExpectAllAckedStoredOnce(db, acked);
}

TEST(FaultTest, DatabaseDownUnderLoadSpoolsAndReplays) {
  auto cluster = PgCluster::Start();
  TestDatabase db(*cluster);
  const TempDir tmp("bpmc-spool");
  const std::string& dir = tmp.path();
  ExporterProcess exporter(db.url, dir);
  Load load(8, db.api_key, [&] { return exporter.port(); });
  ASSERT_TRUE(WaitFor([&] { return load.acked_count() > 300; }, std::chrono::seconds(60)));

  cluster->Stop();
  const uint64_t at_stop = load.acked_count();
  // Acknowledgements continue through the spool while PostgreSQL is down.
  ASSERT_TRUE(
      WaitFor([&] { return load.acked_count() > at_stop + 1000; }, std::chrono::seconds(60)))
      << exporter.process().Stderr();
  httplib::Client c("127.0.0.1", exporter.port());
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_GT(MetricValue(m->body, "bpmc_exporter_spooled_events_total"), 0);
  EXPECT_EQ(MetricValue(m->body, "bpmc_exporter_database_up"), 0);
  EXPECT_EQ(c.Get("/readyz")->status, 200);  // durable through the spool

  cluster->Restart();
  const uint64_t at_restart = load.acked_count();
  ASSERT_TRUE(
      WaitFor([&] { return load.acked_count() > at_restart + 300; }, std::chrono::seconds(60)));
  load.Stop();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto mm = c.Get("/metrics");
        return mm && MetricValue(mm->body, "bpmc_exporter_spool_backlog_events") == 0;
      },
      std::chrono::seconds(60)));
  m = c.Get("/metrics");
  EXPECT_GT(MetricValue(m->body, "bpmc_exporter_replayed_events_total"), 0);
  EXPECT_EQ(MetricValue(m->body, "bpmc_exporter_database_up"), 1);
  ExpectAllAckedStoredOnce(db, load.acked());
  // The counters count each stored event once, replays included. A batch
  // whose COMMIT outcome was unknown when the server went away is replayed
  // and then found stored: it counts as a duplicate, not again.
  const double counted = MetricValue(
      m->body,
      R"(connector_operations_total{connector="crm-connector",operation="getContact",status="success"})");
  const double duplicates = MetricValue(m->body, "bpmc_exporter_duplicate_events_total");
  const double rows = static_cast<double>(db.Rows());
  EXPECT_LE(counted, rows);
  EXPECT_GE(counted + std::max(duplicates, 0.0), rows);
  exporter.process().Signal(SIGTERM);
  EXPECT_EQ(exporter.process().Wait(std::chrono::seconds(30)), 0);
}

TEST(FaultTest, RestartWhileDatabaseIsDownStillAcknowledgesKnownKeys) {
  auto cluster = PgCluster::Start();
  TestDatabase db(*cluster);
  const TempDir tmp("bpmc-restart-down");
  const std::string& dir = tmp.path();
  auto exporter = std::make_unique<ExporterProcess>(db.url, dir);
  httplib::Client c0("127.0.0.1", exporter->port());
  ASSERT_EQ(
      c0.Post("/v1/connector/usage", Bearer(db.api_key), EventWithId(MakeId(1)), "application/json")
          ->status,
      201);
  exporter->process().Signal(SIGKILL);
  exporter->process().Wait(std::chrono::seconds(10));
  cluster->Stop();
  // Keys and connectors come from <data_dir>/directory.json; events go to the spool.
  exporter = std::make_unique<ExporterProcess>(db.url, dir);
  httplib::Client c("127.0.0.1", exporter->port());
  auto r =
      c.Post("/v1/connector/usage", Bearer(db.api_key), EventWithId(MakeId(2)), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  r = c.Post("/v1/connector/usage", Bearer("bpmc_unknown"), EventWithId(MakeId(3)),
             "application/json");
  EXPECT_EQ(r->status, 401);
  cluster->Restart();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto mm = c.Get("/metrics");
        return mm && MetricValue(mm->body, "bpmc_exporter_replayed_events_total") == 1;
      },
      std::chrono::seconds(30)));
  ExpectAllAckedStoredOnce(db, {MakeId(1), MakeId(2)});
  EXPECT_EQ(db.Rows(), 2);
}

// While PostgreSQL is down the exporter cannot check event ids: it
// acknowledges through the spool. On replay a retry of a stored event is a
// duplicate, and an event whose id names a different stored event is not lost
// silently: it is counted and kept in connector_usage_conflicts.
TEST(FaultTest, SpooledEventWhoseIdIsTakenIsQuarantinedOnReplay) {
  auto cluster = PgCluster::Start();
  TestDatabase db(*cluster);
  const TempDir tmp("bpmc-id-conflict");
  const std::string& dir = tmp.path();
  ExporterProcess exporter(db.url, dir);
  httplib::Client c("127.0.0.1", exporter.port());
  auto post = [&](const std::string& id, const std::string& operation, int64_t offset) {
    return c.Post("/v1/connector/usage", Bearer(db.api_key),
                  R"({"event_id":")" + id + R"(","connector":"crm-connector","operation":")" +
                      operation + R"(","make_account_id":"42","timestamp":")" + NowIso(offset) +
                      "\"}",
                  "application/json");
  };
  auto r = post(MakeId(1), "getContact", 0);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  cluster->Stop();
  for (const auto& [id, operation, offset] :
       {std::tuple<std::string, std::string, int64_t>{MakeId(1), "getContact", 60},  // a retry
        {MakeId(1), "listDeals", 0},  // the id reused for another event
        {MakeId(2), "getContact", 0}}) {
    r = post(id, operation, offset);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 201) << r->body;
  }
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(MetricValue(m->body, "bpmc_exporter_spooled_events_total"), 3) << m->body;
  cluster->Restart();
  const std::string conflict_series =
      R"(bpmc_exporter_failures_total{reason="replay_event_id_conflict"})";
  ASSERT_TRUE(WaitFor(
      [&] {
        m = c.Get("/metrics");
        return m && MetricValue(m->body, "bpmc_exporter_spool_backlog_events") == 0 &&
               MetricValue(m->body, conflict_series) == 1;
      },
      std::chrono::seconds(30)))
      << (m ? m->body : "") << exporter.process().Stderr();
  EXPECT_EQ(MetricValue(m->body, "bpmc_exporter_replayed_events_total"), 1);
  EXPECT_EQ(MetricValue(m->body, "bpmc_exporter_duplicate_events_total"), 1);
  EXPECT_EQ(
      MetricValue(
          m->body,
          R"(connector_operations_total{connector="crm-connector",operation="getContact",status="success"})"),
      2);
  EXPECT_EQ(m->body.find("listDeals"), std::string::npos);
  EXPECT_EQ(db.Rows(), 2);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM connector_usage WHERE operation = 'listDeals'"), 0);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM connector_usage_conflicts WHERE id = '" + MakeId(1) +
                      "' AND operation = 'listDeals'"),
            1);
  // The log names the id and the field, not the values.
  const std::string log = exporter.process().Stderr();
  EXPECT_NE(log.find(MakeId(1)), std::string::npos) << log;
  EXPECT_EQ(log.find("listDeals"), std::string::npos) << log;
  exporter.process().Signal(SIGTERM);
  EXPECT_EQ(exporter.process().Wait(std::chrono::seconds(30)), 0);
}

TEST(FaultTest, FullSpoolAnswers503WithRetryAfter) {
  auto cluster = PgCluster::Start();
  TestDatabase db(*cluster);
  const TempDir tmp("bpmc-full");
  const std::string& dir = tmp.path();
  const std::string cfg = dir + "/exporter.yaml";
  RunCommand("printf 'spool_max_bytes: 1048576\\n' > '" + cfg + "'");
  ExporterProcess exporter(db.url, dir + "/data", {"--config", cfg});
  cluster->Stop();
  httplib::Client c("127.0.0.1", exporter.port());
  std::string batch = "[";
  for (int i = 0; i < 1000; ++i) batch += (i ? "," : "") + EventWithId(MakeId(900000 + i));
  batch += "]";
  int last = 0;
  std::string retry_after;
  for (int i = 0; i < 40 && last != 503; ++i) {
    auto r = c.Post("/v1/connector/usage/batch", Bearer(db.api_key), batch, "application/json");
    ASSERT_TRUE(r);
    last = r->status;
    retry_after = r->get_header_value("Retry-After");
  }
  EXPECT_EQ(last, 503);
  EXPECT_FALSE(retry_after.empty());
  EXPECT_EQ(c.Get("/readyz")->status, 503);
  exporter.process().Signal(SIGTERM);
  EXPECT_EQ(exporter.process().Wait(std::chrono::seconds(30)), 0);
}

TEST(FaultTest, BadConfigExitsTwoNamingTheKey) {
  const TempDir tmp("bpmc-cfg");
  const std::string& dir = tmp.path();
  const std::string cfg = dir + "/bad.yaml";
  RunCommand("printf 'retention_days: -3\\n' > '" + cfg + "'");
  Process p({BinPath("bpmc-exporter"), "serve", "--config", cfg});
  EXPECT_EQ(p.Wait(std::chrono::seconds(10)), 2);
  EXPECT_NE(p.Stderr().find("retention_days"), std::string::npos) << p.Stderr();
  Process q({BinPath("bpmc-exporter"), "--bogus-flag"});
  EXPECT_EQ(q.Wait(std::chrono::seconds(10)), 2);
  EXPECT_NE(q.Stderr().find("--bogus-flag"), std::string::npos) << q.Stderr();
}

TEST(FaultTest, AdminCommands) {
  const std::string name = SharedCluster().CreateDatabase();
  const std::string url = SharedCluster().Url(name);
  const std::string bin = BinPath("bpmc-exporter");
  std::string out;
  ASSERT_EQ(RunCommand(bin + " migrate --database-url '" + url + "'", &out), 0) << out;
  ASSERT_EQ(
      RunCommand(bin + " connector add --database-url '" + url + "' crm-connector 'CRM Connector'",
                 &out),
      0)
      << out;
  ASSERT_EQ(
      RunCommand(bin + " connector add --database-url '" + url + "' crm-connector 'CRM Connector'",
                 &out),
      0)
      << out;
  Process create({bin, "api-key", "create", "--database-url", url, "acme"});
  ASSERT_EQ(create.Wait(std::chrono::seconds(20)), 0) << create.Stderr();
  std::string stdout_text = create.Stdout();
  while (!stdout_text.empty() && stdout_text.back() == '\n') stdout_text.pop_back();
  const std::string key = stdout_text.substr(stdout_text.rfind('\n') + 1);
  EXPECT_TRUE(std::regex_match(key, std::regex("bpmc_[A-Za-z0-9_-]{43}"))) << key;
  pqxx::connection conn(url);
  pqxx::work txn(conn);
  // Only a hash is stored.
  EXPECT_EQ(
      txn.exec_params("SELECT count(*) FROM api_keys WHERE key_hash = sha256($1::text::bytea)",
                      key)[0][0]
          .as<int>(),
      1);
  EXPECT_EQ(txn.exec("SELECT count(*) FROM api_keys WHERE position(key_prefix in '" +
                     key.substr(0, 12) + "') = 1")[0][0]
                .as<int>(),
            1);
  txn.commit();
  // The key itself is refused (visible in ps); its prefix or id revokes it.
  const std::string no_cache = " --data-dir /nonexistent-bpmc-dir";
  EXPECT_EQ(
      RunCommand(bin + " api-key revoke --database-url '" + url + "'" + no_cache + " '" + key + "'",
                 &out),
      2)
      << out;
  EXPECT_NE(out.find("not the key itself"), std::string::npos) << out;
  EXPECT_EQ(
      RunCommand(bin + " api-key revoke --database-url '" + url + "'" + no_cache + " bpmc_x", &out),
      2)
      << out;
  ASSERT_EQ(RunCommand(bin + " api-key revoke --database-url '" + url + "'" + no_cache + " '" +
                           key.substr(0, 12) + "'",
                       &out),
            0)
      << out;
  EXPECT_EQ(RunCommand(bin + " api-key revoke --database-url '" + url + "'" + no_cache + " '" +
                           key.substr(0, 12) + "'",
                       &out),
            1)
      << out;
  // Platform tokens: by name (every active token of it) or id, never the token.
  Process token({bin, "platform-token", "create", "--database-url", url, "platform"});
  ASSERT_EQ(token.Wait(std::chrono::seconds(20)), 0) << token.Stderr();
  std::string token_text = token.Stdout();
  while (!token_text.empty() && token_text.back() == '\n') token_text.pop_back();
  const std::string secret = token_text.substr(token_text.rfind('\n') + 1);
  EXPECT_EQ(RunCommand(bin + " platform-token revoke --database-url '" + url + "' '" + secret + "'",
                       &out),
            2)
      << out;
  EXPECT_EQ(RunCommand(bin + " platform-token revoke --database-url '" + url + "' platform", &out),
            0)
      << out;
  EXPECT_EQ(RunCommand(bin + " platform-token revoke --database-url '" + url + "' platform", &out),
            1)
      << out;
  pqxx::work check(conn);
  EXPECT_EQ(
      check.exec("SELECT count(*) FROM platform_tokens WHERE revoked_at IS NULL")[0][0].as<int>(),
      0);
}

// A key revoked before an outage stays refused by an exporter restarted during it,
// whether the exporter saw the revocation (its refresh rewrote directory.json) or
// was down at the time (`api-key revoke --data-dir` removed it from the cache).
TEST(FaultTest, KeyRevokedBeforeAnOutageStaysRefused) {
  auto cluster = PgCluster::Start();
  TestDatabase db(*cluster);
  std::string seen_key, offline_key, kept_key;
  {
    pqxx::connection conn(db.url);
    seen_key = db.api_key;
    offline_key = identity::CreateApiKey(conn, "globex");
    kept_key = identity::CreateApiKey(conn, "initech");
  }
  const TempDir tmp("bpmc-revoked");
  const std::string& dir = tmp.path();
  const std::string bin = BinPath("bpmc-exporter");
  auto post = [](int port, const std::string& key, uint64_t n) {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Post("/v1/connector/usage", Bearer(key), EventWithId(MakeId(n)), "application/json");
    return r ? r->status : -1;
  };
  auto exporter = std::make_unique<ExporterProcess>(db.url, dir);
  const std::vector<std::string> keys = {seen_key, offline_key, kept_key};
  for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(post(exporter->port(), keys[i], 100 + i), 201);
  std::string out;
  // 1. Revoked while the exporter runs (the CLI uses another data dir): the refresh sees it.
  ASSERT_EQ(RunCommand(bin + " api-key revoke --database-url '" + db.url +
                           "' --data-dir /nonexistent-bpmc-dir " + seen_key.substr(0, 12),
                       &out),
            0)
      << out;
  ASSERT_TRUE(WaitFor([&] { return post(exporter->port(), seen_key, 1) == 401; },
                      std::chrono::seconds(10)));
  // 2. Revoked while the exporter is down, with its data dir.
  exporter->process().Signal(SIGKILL);
  exporter->process().Wait(std::chrono::seconds(10));
  ASSERT_EQ(RunCommand(bin + " api-key revoke --database-url '" + db.url + "' --data-dir '" + dir +
                           "' " + offline_key.substr(0, 12),
                       &out),
            0)
      << out;
  cluster->Stop();
  exporter = std::make_unique<ExporterProcess>(db.url, dir);
  EXPECT_EQ(post(exporter->port(), seen_key, 2), 401);
  EXPECT_EQ(post(exporter->port(), offline_key, 3), 401);
  EXPECT_EQ(post(exporter->port(), kept_key, 4), 201);  // spooled
  exporter->process().Signal(SIGKILL);
  exporter->process().Wait(std::chrono::seconds(10));
}

}  // namespace
}  // namespace bpmc::testing
