// LoadDemoData against a throwaway PostgreSQL: the exporter then answers the
// analytics API with the demo data, exactly (operations), with the incidents
// and failed payments in place; a database with usage events is refused.

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "common/testing/temp_dir.h"
#include "demo/demo_data.h"
#include "exporter/service.h"
#include "identity/users.h"
#include "testing/exporter_harness.h"
#include "testing/pg_cluster.h"
#include "webhook_receiver/store.h"  // the receiver's DatabaseSchema (incidents' tables)

namespace bpmc::testing {
namespace {

using nlohmann::json;

std::string NewDatabase(bool with_receiver) {
  PgCluster& cluster = SharedCluster();
  const std::string url = cluster.ConnectionString(cluster.CreateDatabase());
  pqxx::connection conn(url);
  ApplySchema(conn, exporter::DatabaseSchema());
  if (with_receiver) ApplySchema(conn, webhook_receiver::DatabaseSchema());
  return url;
}

long long Scalar(const std::string& url, const std::string& sql) {
  pqxx::connection conn(url);
  pqxx::work txn(conn);
  return txn.exec(sql)[0][0].as<long long>();
}

TEST(DemoDataTest, TheExporterAnswersWithTheDemoMonth) {
  const std::string url = NewDatabase(true);
  const demo::DemoData data = demo::GenerateDemoData({30, 3, SystemClock::Get().NowMicros()});
  const demo::LoadReport r = demo::LoadDemoData(data, {url, "Europe/Moscow"});
  ASSERT_EQ(r.result, demo::LoadReport::Result::kLoaded) << r.message;
  EXPECT_EQ(r.events, data.events.size());
  EXPECT_EQ(r.aggregated, data.events.size());
  EXPECT_EQ(r.incidents, 2u);
  EXPECT_FALSE(r.incidents_skipped);
  EXPECT_GT(r.failed_payments, 0u);

  EXPECT_EQ(Scalar(url, "SELECT count(*) FROM connector_usage"),
            static_cast<long long>(data.events.size()));
  EXPECT_EQ(Scalar(url, "SELECT count(*) FROM connector_usage_ids"),
            static_cast<long long>(data.events.size()));
  EXPECT_EQ(Scalar(url, "SELECT count(*) FROM incidents WHERE status = 'resolved'"), 1);
  EXPECT_EQ(Scalar(url, "SELECT count(*) FROM incidents WHERE status <> 'resolved'"), 1);
  EXPECT_GT(Scalar(url, "SELECT count(*) FROM payments WHERE status = 'failed'"), 0);
  EXPECT_EQ(Scalar(url, "SELECT count(*) FROM subscriptions"),
            static_cast<long long>(data.subscriptions.size()));

  std::string admin;
  {
    pqxx::connection conn(url);
    admin = *identity::CreateUser(conn, "root", identity::Role::kAdmin, "");
  }
  TempDir dir("bpmc-demo");
  exporter::Config config;
  config.listen = "127.0.0.1:0";
  config.database_url = url;
  config.data_dir = dir.path();
  config.http_threads = 8;
  config.reporting_time_zone = "Europe/Moscow";
  std::string error;
  auto service = exporter::Service::Start(config, SystemClock::Get(), &error);
  ASSERT_NE(service, nullptr) << error;
  httplib::Client c("127.0.0.1", service->port());
  c.set_read_timeout(60);
  const std::string period = "?from=" + FormatRfc3339Micros(data.from_us) +
                             "&to=" + FormatRfc3339Micros(data.to_us + 3600LL * 1000000);
  const auto Get = [&](const std::string& path) {
    auto res = c.Get((path + period).c_str(), Bearer(admin));
    EXPECT_TRUE(res) << path;
    if (!res) return json();
    EXPECT_EQ(res->status, 200) << path << ": " << res->body;
    return json::parse(res->body);
  };
  // Right away: demo-data left nothing for the rollup to do.
  const json o = Get("/api/v1/analytics/overview");
  EXPECT_EQ(o["operations_total"].get<long long>(), static_cast<long long>(data.events.size()));
  size_t errors = 0;
  for (const auto& e : data.events) errors += e.event.status == ingestion::EventStatus::kError;
  EXPECT_NEAR(o["error_rate"].get<double>(), static_cast<double>(errors) / data.events.size(),
              1e-4);
  EXPECT_GT(o["active_subscriptions"].get<long long>(), 0);
  EXPECT_EQ(o["connectors"].size(), data.connectors.size());
  const json f = Get("/api/v1/analytics/financial");
  EXPECT_GT(f["failed_payments"]["count"].get<long long>(), 0) << f.dump();
  service->Shutdown();

  const demo::LoadReport again = demo::LoadDemoData(data, {url, "Europe/Moscow"});
  EXPECT_EQ(again.result, demo::LoadReport::Result::kRefused);
  EXPECT_NE(again.message.find("connector_usage"), std::string::npos) << again.message;
  EXPECT_EQ(Scalar(url, "SELECT count(*) FROM api_keys"),
            static_cast<long long>(data.customers.size()));
}

// Without the receiver's tables the rest is loaded and the incidents are skipped.
TEST(DemoDataTest, IncidentsAreSkippedWithoutTheReceiversTables) {
  const std::string url = NewDatabase(false);
  const demo::DemoData data = demo::GenerateDemoData({2, 9, SystemClock::Get().NowMicros()});
  const demo::LoadReport r = demo::LoadDemoData(data, {url, "UTC"});
  ASSERT_EQ(r.result, demo::LoadReport::Result::kLoaded) << r.message;
  EXPECT_TRUE(r.incidents_skipped);
  EXPECT_EQ(r.incidents, 0u);
  EXPECT_EQ(r.aggregated, data.events.size());
  EXPECT_EQ(Scalar(url, "SELECT sum(operation_count) FROM connector_usage_daily"),
            static_cast<long long>(data.events.size()));
}

}  // namespace
}  // namespace bpmc::testing
