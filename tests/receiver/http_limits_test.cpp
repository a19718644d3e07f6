// bpmc-receiver's HTTP limits end to end (docs/SECURITY.md, "HTTP layer:
// limits and slow clients"): a token that cannot be checked is 503 with
// Retry-After (not 401), and 200 slow clients on the incidents API cannot
// starve Alertmanager webhooks.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <thread>

#include "http/raw_client.h"
#include "http/slow_clients.h"
#include "identity/users.h"
#include "receiver_test_util.h"
#include "testing/pg_cluster.h"
#include "webhook_receiver/service.h"

namespace bpmc::webhook_receiver {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::RawConnection;
using Clock = std::chrono::steady_clock;

std::unique_ptr<Service> StartReceiver(const std::string& url, int request_deadline_ms = 0) {
  ReceiverConfig config = test::MustLoad(test::TestConfigYaml());
  config.listen = "127.0.0.1:0";
  config.database_url = url;
  if (request_deadline_ms > 0) config.request_deadline_ms = request_deadline_ms;
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
      R"({"error":"log in, or send a platform user's bearer token in Authorization","message":"log in, or send a platform user's bearer token in Authorization","field":"Authorization"})");
  service->Shutdown();
}

// The APIs added for on-call (silences, overrides, escalate now) against a careless or
// hostile client: no credentials (401 before any body byte), a 10 MB body (413 from its
// Content-Length), JSON 5,000 deep and 10,000-character strings (400 naming the field,
// nothing stored), one byte every half second (408 at the request deadline, while
// others are answered).
TEST(ReceiverHttpLimitsTest, OnCallApisRefuseHostileInput) {
  auto& cluster = bpmc::testing::SharedCluster();
  const std::string url = cluster.ConnectionString(cluster.CreateDatabase());
  auto service = StartReceiver(url, /*request_deadline_ms=*/1500);
  ASSERT_TRUE(service);
  std::string admin;
  {
    pqxx::connection conn(url);
    admin = *identity::CreateUser(conn, "root", identity::Role::kAdmin, "");
  }
  const int port = service->port();
  httplib::Client c("127.0.0.1", port);
  const httplib::Headers auth = {{"Authorization", "Bearer " + admin}};
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  const std::string long_text(10000, 'x');
  for (const std::string path :
       {"/api/v1/silences", "/api/v1/overrides", "/api/v1/incidents/1/escalate"}) {
    SCOPED_TRACE(path);
    {  // No credentials, 10 MB announced: 401 without reading it.
      RawConnection raw(port);
      raw.Send("POST " + path +
               " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: 10485760\r\n\r\n{");
      EXPECT_EQ(raw.ReadResponse(5s), 401);
    }
    {  // Credentials, 10 MB announced: 413 without reading it.
      RawConnection raw(port);
      raw.Send("POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin +
               "\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{");
      EXPECT_EQ(raw.ReadResponse(5s), 413);
    }
  }
  for (const std::string path : {"/api/v1/silences", "/api/v1/overrides"}) {
    auto r = c.Post(path, auth, deep, "application/json");
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path << " " << r->body;
  }
  const std::pair<std::string, std::string> long_bodies[] = {
      {"/api/v1/silences", nlohmann::json{{"matchers", {"a=\"" + long_text + "\""}},
                                          {"ends_at", "2099-01-01T00:00:00Z"},
                                          {"comment", "x"}}
                               .dump()},
      {"/api/v1/silences",
       nlohmann::json{
           {"matchers", {"a=\"b\""}}, {"ends_at", "2099-01-01T00:00:00Z"}, {"comment", long_text}}
           .dump()},
      {"/api/v1/silences", nlohmann::json{{"matchers", {long_text + "=\"b\""}},
                                          {"ends_at", "2099-01-01T00:00:00Z"},
                                          {"comment", "x"}}
                               .dump()},
      {"/api/v1/overrides", nlohmann::json{{"schedule", long_text},
                                           {"person", "x"},
                                           {"from", "2099-01-01T00:00:00Z"},
                                           {"to", "2099-01-02T00:00:00Z"}}
                                .dump()},
      {"/api/v1/overrides", nlohmann::json{{long_text, 1}}.dump()},
  };
  for (const auto& [path, body] : long_bodies) {
    auto r = c.Post(path, auth, body, "application/json");
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path << " " << r->body.substr(0, 200);
    EXPECT_LT(r->body.size(), 1000u) << "the error does not echo the 10,000 characters";
  }
  EXPECT_EQ(test::Count(url, "SELECT count(*) FROM silences"), 0);
  EXPECT_EQ(test::Count(url, "SELECT count(*) FROM oncall_overrides"), 0);
  // One byte every half second, in the headers and then in the body: cut at the 1.5 s
  // deadline (headers: CivetWeb answers 400 or closes; body: the layer's 408), while
  // other requests are answered meanwhile.
  const std::string head = "POST /api/v1/silences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                           admin +
                           "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
  for (const bool in_body : {false, true}) {
    SCOPED_TRACE(in_body ? "slow body" : "slow headers");
    RawConnection slow(port);
    if (in_body) slow.Send(head);
    const std::string trickled = in_body ? std::string(100, ' ') : head;
    const auto t0 = Clock::now();
    std::thread trickle([&] {
      for (char ch : trickled) {
        if (!slow.Send(std::string(1, ch)) || Clock::now() - t0 > 5s) return;
        std::this_thread::sleep_for(500ms);
      }
    });
    auto r = c.Get("/api/v1/silences", auth);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    const int status = slow.ReadResponse(6s);
    if (in_body)
      EXPECT_EQ(status, 408);
    else
      EXPECT_TRUE(status == 400 || status == 408 || status == 0) << status;
    EXPECT_LT(Clock::now() - t0, 4s);
    slow.Close();
    trickle.join();
  }
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
