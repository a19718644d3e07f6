// Analytics on a real hot standby (docs/SCALING.md "Reads on a replica"): a
// primary and a standby made with pg_basebackup -R, the exporter writing to the
// primary and reading analytics on the standby. With replay paused the answers
// stay at the standby's data and say how far behind they are; with the standby
// stopped they come from the primary, counted.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "analytics/access.h"
#include "common/testing/temp_dir.h"
#include "exporter/service.h"
#include "identity/users.h"
#include "testing/exporter_harness.h"
#include "testing/process.h"

namespace bpmc::testing {
namespace {

using analytics::Role;
using exporter::Config;
using exporter::Service;
using nlohmann::json;
using namespace std::chrono_literals;

long long ScalarOn(const std::string& url, const std::string& sql) {
  pqxx::connection conn(url);
  pqxx::nontransaction txn(conn);
  return txn.exec(sql)[0][0].as<long long>();
}

TEST(AnalyticsReplicaTest, ReadsOnTheStandbyAndSaysHowFresh) {
  std::unique_ptr<PgCluster> primary = PgCluster::Start();
  TestDatabase db(*primary);
  std::string admin;
  {
    pqxx::connection conn(db.url);
    admin = *identity::CreateUser(conn, "ada", Role::kAdmin, "");
  }
  std::unique_ptr<PgCluster> standby = primary->StartStandby();
  const std::string standby_url = standby->ConnectionString(db.name);
  ASSERT_EQ(ScalarOn(standby_url, "SELECT pg_is_in_recovery()::int"), 1);

  const TempDir dir("bpmc-replica");
  Config config;
  config.listen = "127.0.0.1:0";
  config.database_url = db.url;
  config.analytics_database_url = standby_url;
  config.data_dir = dir.path();
  config.rollup_interval_ms = 100;
  config.analytics_cache_ms = 0;
  std::string error;
  auto service = Service::Start(config, SystemClock::Get(), &error);
  ASSERT_NE(service, nullptr) << error;
  httplib::Client c("127.0.0.1", service->port());
  auto overview = [&] {
    auto r = c.Get("/api/v1/analytics/overview", {{"Authorization", "Bearer " + admin}});
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r && r->status == 200 ? json::parse(r->body) : json::object();
  };
  auto post = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto r = c.Post("/v1/connector/usage", Bearer(db.api_key), SeedBody(), "application/json");
      ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    }
  };
  // Aggregated on the primary, then replayed on the standby.
  auto aggregated_on = [&](const std::string& url, long long events) {
    return WaitFor(
        [&] {
          return ScalarOn(url,
                          "SELECT coalesce(sum(operation_count), 0)::bigint FROM "
                          "connector_usage_hourly") == events;
        },
        30s);
  };

  post(5);
  ASSERT_TRUE(aggregated_on(db.url, 5));
  ASSERT_TRUE(aggregated_on(standby_url, 5));
  json a = overview();
  EXPECT_EQ(a["operations_total"], 5) << a.dump();
  ASSERT_TRUE(a.contains("freshness")) << a.dump();
  EXPECT_EQ(a["freshness"]["source"], "replica") << a.dump();
  ASSERT_TRUE(a["freshness"]["replay_lag_seconds"].is_number()) << a.dump();
  EXPECT_LT(a["freshness"]["replay_lag_seconds"].get<double>(), 5) << a.dump();
  ASSERT_TRUE(a["freshness"]["as_of"].is_string()) << a.dump();
  // The answer's own audit row went to the primary (the standby refuses writes).
  const long long audited =
      ScalarOn(db.url, "SELECT count(*) FROM audit_log WHERE endpoint LIKE '%overview%'");
  EXPECT_GE(audited, 1);

  // Replay paused: the primary moves on, the standby's answer does not, and says so.
  ScalarOn(standby_url, "SELECT count(*) FROM (SELECT pg_wal_replay_pause()) p");
  post(3);
  ASSERT_TRUE(aggregated_on(db.url, 8));
  std::this_thread::sleep_for(1500ms);  // the lag is measured in wall-clock time
  a = overview();
  EXPECT_EQ(a["operations_total"], 5) << "not read on the standby: " << a.dump();
  EXPECT_EQ(a["freshness"]["source"], "replica") << a.dump();
  EXPECT_GE(a["freshness"]["replay_lag_seconds"].get<double>(), 1.0) << a.dump();
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_GE(MetricValue(metrics->body, "bpmc_exporter_analytics_replica_lag_seconds"), 1.0);
  EXPECT_GE(MetricValue(metrics->body, "bpmc_exporter_analytics_answers_total{source=\"replica\"}"),
            2);
  EXPECT_GT(ScalarOn(db.url, "SELECT count(*) FROM audit_log WHERE endpoint LIKE '%overview%'"),
            audited);

  // Resumed: caught up again, lag 0 even though nothing is being written.
  ScalarOn(standby_url, "SELECT count(*) FROM (SELECT pg_wal_replay_resume()) p");
  ASSERT_TRUE(aggregated_on(standby_url, 8));
  ASSERT_TRUE(WaitFor(
      [&] {
        const json b = overview();
        return b.value("operations_total", -1) == 8 && b["freshness"]["replay_lag_seconds"] == 0.0;
      },
      30s))
      << overview().dump();

  // Standby down: the primary answers, says so, and the failure is counted.
  standby->Stop();
  a = overview();
  EXPECT_EQ(a["operations_total"], 8) << a.dump();
  EXPECT_EQ(a["freshness"]["source"], "primary") << a.dump();
  EXPECT_EQ(a["freshness"]["replay_lag_seconds"], 0.0) << a.dump();
  metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(MetricValue(metrics->body,
                        "bpmc_exporter_failures_total{reason=\"analytics_replica_unavailable\"}"),
            1);
  EXPECT_GE(MetricValue(metrics->body, "bpmc_exporter_analytics_answers_total{source=\"primary\"}"),
            1);
  service->Shutdown();
  standby.reset();
}

}  // namespace
}  // namespace bpmc::testing
