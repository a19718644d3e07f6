// bpmc-exporter's HTTP limits end to end (docs/SECURITY.md, "HTTP layer:
// limits and slow clients"): unauthenticated 31 MB POSTs to /api/v1/audit
// cost no memory, and 200 slow clients cannot starve usage events.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "common/clock.h"
#include "common/process.h"
#include "common/testing/temp_dir.h"
#include "exporter/service.h"
#include "http/raw_client.h"
#include "http/slow_clients.h"
#include "testing/exporter_harness.h"
#include "testing/pg_cluster.h"

namespace bpmc::exporter {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::RawConnection;
using Clock = std::chrono::steady_clock;

class HttpLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<bpmc::testing::TestDatabase>(bpmc::testing::SharedCluster());
    Config config;
    config.listen = "127.0.0.1:0";
    config.database_url = db_->url;
    config.data_dir = data_dir_.path();
    config.rollup_enabled = false;
    std::string error;
    service_ = Service::Start(config, SystemClock::Get(), &error);
    ASSERT_TRUE(service_) << error;
  }
  void TearDown() override {
    if (service_) service_->Shutdown();
    service_.reset();
  }
  std::unique_ptr<bpmc::testing::TestDatabase> db_;
  bpmc::testing::TempDir data_dir_{"bpmc-limits"};
  std::unique_ptr<Service> service_;
};

TEST_F(HttpLimitsTest, UnauthenticatedHugePostsToAuditCostNoMemory) {
  const int port = service_->port();
  const std::string chunk(1 << 20, 'x');  // one shared 1 MB buffer: the client adds nothing
  const long before_kb = bpmc::testing::ProcStatusKb("self", "VmHWM");
  std::atomic<int> answered_fast{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&] {
      RawConnection c(port);
      std::thread sender([&] {
        if (!c.Send("POST /api/v1/audit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 31000000\r\n\r\n"))
          return;
        for (int mb = 0; mb < 31 && c.Send(chunk); ++mb) {
        }
      });
      std::string head;
      const int status = c.ReadResponse(10s, &head);
      if (status == 405 || status == 401) answered_fast++;
      sender.join();
    });
  }
  for (auto& t : clients) t.join();
  const long after_kb = bpmc::testing::ProcStatusKb("self", "VmHWM");
  std::printf("[ memory ] VmHWM %ld kB before, %ld kB after 16 x 31 MB unauthenticated POSTs\n",
              before_kb, after_kb);
  EXPECT_EQ(answered_fast, 16);
  EXPECT_LT(after_kb - before_kb, 50 * 1024);
}

TEST_F(HttpLimitsTest, SlowClientsDoNotStarveUsageEvents) {
  const int port = service_->port();
  auto measure = [&](int n) {
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
      const std::string body = bpmc::testing::SeedBody();
      RawConnection c(port);
      const auto t0 = Clock::now();
      c.Send("POST /v1/connector/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
             db_->api_key + "\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body);
      const int status = c.ReadResponse(10s);
      ms.push_back(status == 201
                       ? std::chrono::duration<double, std::milli>(Clock::now() - t0).count()
                       : 10000.0);
    }
    return ms;
  };
  const double before = bpmc::testing::Percentile(measure(100), 99);
  bpmc::testing::SlowClients slow(
      port, 200, "POST /v1/billing/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n");
  std::this_thread::sleep_for(1500ms);
  const std::vector<double> during = measure(100);
  slow.Stop();
  const double p99 = bpmc::testing::Percentile(during, 99);
  std::printf(
      "[ slow clients ] usage event p99: %.2f ms without, %.2f ms with 200 slow "
      "connections to /v1/billing/events\n",
      before, p99);
  EXPECT_LT(p99, 2000);
  EXPECT_LT(*std::max_element(during.begin(), during.end()), 10000.0);
}

}  // namespace
}  // namespace bpmc::exporter
