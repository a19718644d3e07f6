// bpmc-receiver's HTTP limits end to end (docs/SECURITY.md, "HTTP layer:
// limits and slow clients"): a token that cannot be checked is 503 with
// Retry-After (not 401), and 200 slow clients on the incidents API cannot
// starve Alertmanager webhooks.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdio>
#include <thread>

#include "http/raw_client.h"
#include "http/slow_clients.h"
#include "receiver_test_util.h"
#include "testing/pg_cluster.h"
#include "webhook_receiver/service.h"

namespace bpmc::webhook_receiver {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::RawConnection;
using Clock = std::chrono::steady_clock;

std::unique_ptr<Service> StartReceiver(const std::string& url) {
  ReceiverConfig config = test::MustLoad(test::TestConfigYaml());
  config.listen = "127.0.0.1:0";
  config.database_url = url;
  // BPMC_TEST_HTTP_THREADS=32 (the old default) shows the slow-client test failing.
  if (getenv("BPMC_TEST_HTTP_THREADS"))
    config.http_threads = atoi(getenv("BPMC_TEST_HTTP_THREADS"));
  ServiceDeps deps;
  deps.start_delivery = false;
  std::string error;
  auto s = Service::Start(config, deps, &error);
  EXPECT_TRUE(s) << error;
  return s;
}

TEST(ReceiverHttpLimitsTest, TokenLookupFailureIs503WithRetryAfter) {
  // No PostgreSQL at all: the platform user of a token cannot be looked up.
  auto service = StartReceiver("postgresql:///bpmc?host=/nonexistent-bpmc-socket-dir");
  ASSERT_TRUE(service);
  httplib::Client c("127.0.0.1", service->port());
  const httplib::Headers token = {{"Authorization", "Bearer bpmcu_" + std::string(43, 'A')}};
  for (const char* path : {"/api/v1/incidents", "/api/v1/oncall", "/api/v1/incidents/1"}) {
    auto r = c.Get(path, token);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 503) << path << " " << r->body;
    EXPECT_EQ(r->get_header_value("Retry-After"), "5") << path;
    EXPECT_NE(r->body.find("\"message\""), std::string::npos) << r->body;
  }
  // A POST with a body: refused before the body is read.
  auto r = c.Post("/api/v1/incidents/1/notes", token, R"({"text":"x"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  // Without a token it stays 401.
  r = c.Get("/api/v1/incidents");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(
      r->body,
      R"({"error":"a platform user's bearer token is required","message":"a platform user's bearer token is required","field":"Authorization"})");
  service->Shutdown();
}

TEST(ReceiverHttpLimitsTest, SlowClientsDoNotStarveAlertmanagerWebhooks) {
  auto& cluster = bpmc::testing::SharedCluster();
  auto service = StartReceiver(cluster.ConnectionString(cluster.CreateDatabase()));
  ASSERT_TRUE(service);
  const int port = service->port();
  auto measure = [&](int n, int offset) {
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
      const std::string body = test::AmPayload({test::Firing("Slow" + std::to_string(offset + i))});
      RawConnection c(port);
      const auto t0 = Clock::now();
      c.Send(
          "POST /v1/alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n"
          "Content-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body);
      const int status = c.ReadResponse(10s);
      ms.push_back(status == 200
                       ? std::chrono::duration<double, std::milli>(Clock::now() - t0).count()
                       : 10000.0);
    }
    return ms;
  };
  const double before = bpmc::testing::Percentile(measure(50, 0), 99);
  bpmc::testing::SlowClients slow(
      port, 200, "POST /api/v1/incidents/1/notes HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n");
  std::this_thread::sleep_for(1500ms);
  const std::vector<double> during = measure(50, 1000);
  slow.Stop();
  const double p99 = bpmc::testing::Percentile(during, 99);
  std::printf(
      "[ slow clients ] Alertmanager webhook p99: %.2f ms without, %.2f ms with 200 slow "
      "connections to /api/v1/incidents/1/notes\n",
      before, p99);
  EXPECT_LT(p99, 2000);
  EXPECT_LT(*std::max_element(during.begin(), during.end()), 10000.0);
  service->Shutdown();
}

}  // namespace
}  // namespace bpmc::webhook_receiver
