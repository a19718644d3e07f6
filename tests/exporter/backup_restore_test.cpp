// Backup and restore (docs/OPERATIONS.md, "Backup and restore"): a database
// loaded through the exporter is dumped with `pg_dump -Fc`, restored with
// `pg_restore` into a fresh cluster, and an exporter on the restored copy gives
// the same analytics answers (all but `as_of` and `freshness.as_of`, each read's own time). Then
// the spool: events acknowledged while the restored database is down are replayed into it once it
// is back, and a replayed event the dump already holds (same event_id, same content) is a
// duplicate, not a second row.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "common/clock.h"
#include "common/testing/temp_dir.h"
#include "exporter/config.h"
#include "exporter/service.h"
#include "identity/users.h"
#include "testing/exporter_harness.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";
constexpr int64_t kDay = 86400LL * 1000000;

std::string Uuid(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", n);
  return buf;
}

// A usage event of customer `c`, number `n`, `age_us` old.
std::string EventJson(int n, int c, int64_t age_us) {
  static const char* kConnectors[] = {"crm-connector", "payment-connector"};
  static const char* kOperations[] = {"getContact", "createDeal", "charge", "refund"};
  json j = {{"event_id", Uuid(n)},
            {"connector", kConnectors[n % 2]},
            {"operation", kOperations[(n / 2) % 4]},
            {"make_account_id", "acct-" + std::to_string(c) + "-" + std::to_string(n % 7)},
            {"timestamp", FormatRfc3339Micros(SystemClock::Get().NowMicros() - age_us)},
            {"duration_ms", 10 + (n * 37) % 900}};
  if (n % 5 == 0) {
    j["status"] = "error";
    j["error_type"] = n % 10 == 0 ? "timeout" : "auth";
  }
  return j.dump();
}

std::unique_ptr<exporter::Service> StartExporter(const std::string& url, const std::string& dir) {
  exporter::Config config;
  config.listen = "127.0.0.1:0";
  config.database_url = url;
  config.data_dir = dir;
  config.pseudonym_key = "backup-test-pseudonym-key-0123456789";
  config.analytics_cache_ms = 0;
  config.rollup_interval_ms = 100;
  std::string error;
  auto service = exporter::Service::Start(config, SystemClock::Get(), &error);
  EXPECT_NE(service, nullptr) << error;
  return service;
}

// The analytics questions compared before and after the restore.
std::vector<std::string> Questions(const std::string& from, const std::string& to) {
  const std::string q = "?from=" + from + "&to=" + to;
  std::vector<std::string> out;
  for (const char* ep : {"overview", "connectors", "connectors/crm-connector",
                         "connectors/payment-connector", "users", "financial", "errors"})
    out.push_back(std::string("/api/v1/analytics/") + ep + q);
  out.push_back("/api/v1/analytics/overview" + q + "&granularity=hour");
  out.push_back("/api/v1/analytics/errors" + q + "&connector=crm-connector");
  return out;
}

int Shell(const std::string& command, std::string* output) {
  return RunCommand(command + " 2>&1", output);
}

TEST(BackupRestoreTest, DumpRestoreGivesTheSameAnswers) {
  TempDir dir("bpmc-backup");
  // --- A database loaded through the exporter --------------------------------
  TestDatabase db(SharedCluster());
  std::string admin;
  std::vector<std::string> keys;
  {
    pqxx::connection conn(db.url);
    admin = *identity::CreateUser(conn, "ada", identity::Role::kAdmin, "");
    keys = {db.api_key, identity::CreateApiKey(conn, "globex"),
            identity::CreateApiKey(conn, "initech")};
  }
  constexpr int kEvents = 300;
  const int64_t now = SystemClock::Get().NowMicros();
  const std::string from = FormatRfc3339Micros(now - 3 * kDay).substr(0, 10);
  const std::string to = FormatRfc3339Micros(now + kDay).substr(0, 10);
  std::map<std::string, json> before;
  {
    auto service = StartExporter(db.url, dir.path() + "/a");
    ASSERT_NE(service, nullptr);
    httplib::Client c("127.0.0.1", service->port());
    for (int customer = 0; customer < 3; ++customer) {
      std::string batch;
      for (int n = customer; n < kEvents; n += 3)
        batch += (batch.empty() ? "[" : ",") + EventJson(n, customer, (n % 60) * kDay / 24);
      auto r = c.Post("/v1/connector/usage/batch", Bearer(keys[customer]), batch + "]",
                      "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 201) << r->body;
    }
    ASSERT_TRUE(WaitFor(
        [&] {
          return db.Scalar("SELECT count(*) FROM connector_usage") == kEvents &&
                 db.Scalar("SELECT last_seq FROM rollup_state WHERE name = 'usage'") ==
                     db.Scalar("SELECT max(seq) FROM connector_usage");
        },
        60s));
    for (const std::string& q : Questions(from, to)) {
      auto r = c.Get(q.c_str(), Bearer(admin));
      ASSERT_TRUE(r) << q;
      ASSERT_EQ(r->status, 200) << q << " " << r->body;
      before[q] = json::parse(r->body);
    }
    // The answers are about the loaded events (not a comparison of two empty databases).
    EXPECT_EQ(before["/api/v1/analytics/overview?from=" + from + "&to=" + to]["operations_total"],
              kEvents);
    service->Shutdown();
  }

  // --- pg_dump -Fc, a fresh cluster, pg_restore (docs/OPERATIONS.md) ----------
  const std::string dump = dir.path() + "/bpmc.dump";
  std::string out;
  ASSERT_EQ(Shell(std::string(kPgBin) + "/pg_dump -Fc -f " + dump + " -d '" + db.url + "'", &out),
            0)
      << out;
  std::unique_ptr<PgCluster> fresh = PgCluster::Start();
  const std::string name = fresh->CreateDatabase();
  const std::string restored = fresh->ConnectionString(name);
  ASSERT_EQ(Shell(std::string(kPgBin) + "/pg_restore --exit-on-error --no-owner -d '" + restored +
                      "' " + dump,
                  &out),
            0)
      << out;

  // --- The same answers from an exporter on the restored copy ------------------
  auto service = StartExporter(restored, dir.path() + "/b");
  ASSERT_NE(service, nullptr);
  httplib::Client c("127.0.0.1", service->port());
  for (const std::string& q : Questions(from, to)) {
    auto r = c.Get(q.c_str(), Bearer(admin));  // the admin's token came with the dump
    ASSERT_TRUE(r) << q;
    ASSERT_EQ(r->status, 200) << q << " " << r->body;
    json a = before[q], b = json::parse(r->body);
    ASSERT_TRUE(a.contains("as_of") && b.contains("as_of")) << q;
    a.erase("as_of");
    b.erase("as_of");
    // freshness.as_of is the read's time as well; source and lag must agree.
    ASSERT_TRUE(a.contains("freshness") && b.contains("freshness")) << q;
    a["freshness"].erase("as_of");
    b["freshness"].erase("as_of");
    EXPECT_EQ(a.dump(), b.dump()) << q;
  }

  // --- The spool replays into the restored database -----------------------------
  // While it is down, an event the dump holds and a new one are acknowledged
  // through the spool; once it is back both are replayed: the old one is a
  // duplicate (the dump brought its event_id), the new one is stored.
  fresh->Stop();
  const std::string old_event = EventJson(3, 0, 0);  // same id; content below must match
  pqxx::connection probe_conn(db.url);
  const std::string stored_ts = [&] {
    pqxx::work txn(probe_conn);
    return txn
        .exec_params(
            "SELECT to_char(\"timestamp\" AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM connector_usage WHERE id = $1",
            Uuid(3))[0][0]
        .as<std::string>();
  }();
  json replay = json::parse(old_event);
  replay["timestamp"] = stored_ts;  // the very event (content equal), sent again
  auto r =
      c.Post("/v1/connector/usage/batch", Bearer(keys[0]),
             "[" + replay.dump() + "," + EventJson(kEvents + 3, 0, 0) + "]", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  fresh->Restart();
  pqxx::connection conn(restored);
  auto count = [&](const std::string& sql) {
    try {
      pqxx::work txn(conn);
      return txn.exec(sql)[0][0].as<long long>();
    } catch (const std::exception&) {
      return -1LL;
    }
  };
  ASSERT_TRUE(
      WaitFor([&] { return count("SELECT count(*) FROM connector_usage") == kEvents + 1; }, 60s))
      << count("SELECT count(*) FROM connector_usage");
  EXPECT_EQ(count("SELECT count(*) FROM connector_usage WHERE id = '" + Uuid(3) + "'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM connector_usage WHERE id = '" + Uuid(kEvents + 3) + "'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM connector_usage_conflicts"), 0);
  service->Shutdown();
}

}  // namespace
}  // namespace bpmc::testing
