// The receiver over HTTP against a real PostgreSQL: authentication, refusals
// that store nothing, 200 only after COMMIT, concurrent HA duplicates,
// health/readiness/metrics, a database outage, and delivery to loopback
// recorders through the notifier's Deliverer.
#include "webhook_receiver/service.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

#include "receiver_test_util.h"
#include "recorders/http_recorder.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"

namespace bpmc::webhook_receiver {
namespace {

using namespace std::chrono_literals;
using test::AmAlert;
using test::AmPayload;
using test::Firing;
using test::Resolved;

const httplib::Headers kBearer = {{"Authorization", "Bearer test-token"}};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
  }
  void TearDown() override {
    if (service_) service_->Shutdown();
  }

  void Start(const std::string& yaml, bool delivery = false, const std::string& url = "") {
    ReceiverConfig config = test::MustLoad(yaml);
    config.listen = "127.0.0.1:0";
    config.database_url = url.empty() ? url_ : url;
    config.http_threads = 8;
    ServiceDeps deps;
    deps.start_delivery = delivery;
    std::string error;
    service_ = Service::Start(config, deps, &error);
    ASSERT_TRUE(service_) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", service_->port());
    client_->set_read_timeout(30, 0);
  }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = kBearer) {
    return client_->Post(path.c_str(), headers, body, "application/json");
  }

  std::string Metrics() {
    auto r = client_->Get("/metrics");
    return r ? r->body : "";
  }

  std::string url_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ServiceTest, RefusalsStoreNothing) {
  Start(test::TestConfigYaml());
  const std::string good = AmPayload({Firing("A")});
  const struct {
    const char* name;
    std::string path;
    std::string body;
    httplib::Headers headers;
    int status;
  } cases[] = {
      {"no credentials", "/v1/alertmanager", good, {}, 401},
      {"wrong token", "/v1/alertmanager", good, {{"Authorization", "Bearer nope"}}, 401},
      {"wrong password",
       "/v1/alertmanager",
       good,
       {{"Authorization", "Basic YWxlcnRtYW5hZ2VyOm5vcGU="}},
       401},
      {"query token not enabled", "/v1/alertmanager?token=test-token", good, {}, 401},
      {"not json", "/v1/alertmanager", "{", kBearer, 400},
      {"wrong version", "/v1/alertmanager", R"({"version":"3","alerts":[]})", kBearer, 400},
      {"bad alert", "/v1/alertmanager", R"({"version":"4","alerts":[{"status":"x"}]})", kBearer,
       400},
      {"generic without summary", "/v1/generic", R"({"severity":"critical"})", kBearer, 400},
      {"too large", "/v1/generic", std::string(5 << 20, ' '), kBearer, 413},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = Post(c.path, c.body, c.headers);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << r->body;
    if (c.status == 401) {
      EXPECT_FALSE(r->get_header_value("WWW-Authenticate").empty());
    }
    if (c.status == 400) {
      EXPECT_NE(r->body.find("\"error\""), std::string::npos) << r->body;
    }
    if (c.status == 413) client_ = std::make_unique<httplib::Client>("127.0.0.1", service_->port());
  }
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_webhooks"), 0);
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM notification_outbox"), 0);
  const std::string m = Metrics();
  EXPECT_NE(
      m.find("bpmc_receiver_webhooks_total{result=\"unauthorized\",source=\"alertmanager\"} 4"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("bpmc_receiver_webhooks_total{result=\"malformed\",source=\"alertmanager\"} 3"),
            std::string::npos);
  EXPECT_NE(m.find("bpmc_receiver_webhooks_total{result=\"too_large\",source=\"generic\"} 1"),
            std::string::npos);
}

TEST_F(ServiceTest, AcceptedMeansStored) {
  Start(test::TestConfigYaml());
  auto r = Post("/v1/alertmanager", AmPayload({Firing("A"), Firing("B")}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto body = nlohmann::json::parse(r->body);
  EXPECT_EQ(body["alerts"]["notified"], 2);
  EXPECT_EQ(body["enqueued"], 6);
  // Already committed when the answer arrived.
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_webhooks"), 1);
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM notification_outbox"), 6);
  // Basic auth as Alertmanager's basic_auth sends it ("alertmanager:test-password").
  r = Post("/v1/alertmanager", AmPayload({Firing("A")}),
           {{"Authorization", "Basic YWxlcnRtYW5hZ2VyOnRlc3QtcGFzc3dvcmQ="}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(nlohmann::json::parse(r->body)["alerts"]["duplicate"], 1);
  const std::string m = Metrics();
  EXPECT_NE(m.find("bpmc_receiver_alerts_total{outcome=\"notified\",source=\"alertmanager\"} 2"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("bpmc_receiver_alerts_total{outcome=\"duplicate\",source=\"alertmanager\"} 1"),
            std::string::npos);
  EXPECT_NE(m.find("bpmc_receiver_enqueued_notifications_total{channel=\"oncall-sms\"} 4"),
            std::string::npos);
  // Every intake answers through the same path.
  for (const char* path : {"/v1/generic", "/v1/sentry", "/v1/datadog", "/v1/newrelic"}) {
    SCOPED_TRACE(path);
    r = Post(path, "{}");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
  }
}

// A database error quoting the payload (here a trigger, as a CHECK's "Failing row
// contains (...)" would) reaches the log only through ScrubPii.
TEST_F(ServiceTest, LoggedDatabaseErrorsCarryNoPersonalData) {
  Start(test::TestConfigYaml());
  {
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    txn.exec(
        "CREATE FUNCTION refuse_webhook() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'refused row: %', NEW.payload::text; END $$;"
        "CREATE TRIGGER refuse_webhook BEFORE INSERT ON receiver_webhooks "
        "FOR EACH ROW EXECUTE FUNCTION refuse_webhook()");
    txn.commit();
  }
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100);
  spdlog::default_logger()->sinks().push_back(sink);
  auto alert = Firing("CustomerDown");
  alert.labels["contact"] = "call ivan.petrov@example.com or +7 916 123-45-67";
  auto r = Post("/v1/alertmanager", AmPayload({alert}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  // The answer may come before the writer's log line (it gives up on a deadline).
  std::string logged;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (logged.find("not stored: ") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    logged.clear();
    for (const std::string& line : sink->last_formatted()) logged += line;
  }
  service_->Shutdown();  // no more log lines while the sink goes
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_NE(logged.find("not stored: "), std::string::npos) << logged;
  EXPECT_NE(logged.find("refused row"), std::string::npos) << logged;
  EXPECT_NE(logged.find("[email]"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("ivan.petrov"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("916 123"), std::string::npos) << logged;
}

TEST_F(ServiceTest, QueryTokenWhenAllowed) {
  std::string yaml = test::TestConfigYaml();
  yaml.replace(yaml.find("auth:\n"), 6, "auth:\n  allow_query_token: true\n");
  Start(yaml);
  auto r = Post("/v1/sentry?token=test-token",
                R"({"id":"1","level":"error","message":"boom","url":"https://s"})", {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(ServiceTest, HealthReadinessAndRoutes) {
  Start(test::TestConfigYaml());
  auto r = client_->Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        auto ready = client_->Get("/readyz");
        return ready && ready->status == 200;
      },
      10s));
  r = client_->Get("/v1/alertmanager");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  r = client_->Get("/nope");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  const std::string m = Metrics();
  for (const char* name : {"bpmc_receiver_webhooks_total", "bpmc_receiver_database_up 1",
                           "bpmc_receiver_build_info", "bpmc_receiver_webhook_store_seconds"})
    EXPECT_NE(m.find(name), std::string::npos) << name;
}

TEST_F(ServiceTest, TwoAlertmanagersPostingConcurrentlyNotifyOnce) {
  Start(test::TestConfigYaml());
  // Each "Alertmanager" sends 30 group notifications (2 alerts each, growing
  // groups like a real group would), then the resolutions; both at once.
  auto am = [&](int id, std::atomic<int>* failures) {
    httplib::Client c("127.0.0.1", service_->port());
    c.set_read_timeout(30, 0);
    for (int i = 0; i < 30; ++i) {
      const std::string body =
          AmPayload({test::Firing("A" + std::to_string(i)), test::Firing("B" + std::to_string(i))});
      auto r = c.Post("/v1/alertmanager", kBearer, body, "application/json");
      if (!r || r->status != 200) ++*failures;
    }
    for (int i = 0; i < 30; ++i) {
      AmAlert a = Resolved("A" + std::to_string(i), "2026-11-25T11:00:00Z");
      auto r = c.Post("/v1/alertmanager", kBearer, AmPayload({a}), "application/json");
      if (!r || r->status != 200) ++*failures;
    }
    (void)id;
  };
  std::atomic<int> failures{0};
  std::thread t1(am, 1, &failures), t2(am, 2, &failures);
  t1.join();
  t2.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_webhooks"), 120);
  EXPECT_EQ(
      test::Count(url_, "SELECT count(*) FROM notification_outbox WHERE alert_status = 'firing'"),
      60 * 3);
  EXPECT_EQ(
      test::Count(url_, "SELECT count(*) FROM notification_outbox WHERE alert_status = 'resolved'"),
      30 * 3);
}

TEST_F(ServiceTest, DatabaseOutageAnswers503AndRecovers) {
  auto cluster = bpmc::testing::PgCluster::Start();
  const std::string url = cluster->ConnectionString(cluster->CreateDatabase());
  Start(test::TestConfigYaml(), false, url);
  auto r = Post("/v1/alertmanager", AmPayload({Firing("A")}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  cluster->Stop();
  r = Post("/v1/alertmanager", AmPayload({Firing("B")}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << "Alertmanager retries 5xx";
  EXPECT_FALSE(r->get_header_value("Retry-After").empty());
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        auto ready = client_->Get("/readyz");
        return ready && ready->status == 503;
      },
      10s));
  cluster->Restart();
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        auto again = Post("/v1/alertmanager", AmPayload({Firing("B")}));
        return again && again->status == 200;
      },
      20s));
  EXPECT_EQ(test::Count(url, "SELECT count(*) FROM receiver_alert_events"), 2);
  EXPECT_NE(Metrics().find("bpmc_receiver_failures_total{reason=\"store_webhook\"}"),
            std::string::npos);
}

TEST_F(ServiceTest, DeliversFiringAndResolutionToEveryChannel) {
  auto slack = recorders::HttpRecorder::Slack();
  auto sms = recorders::HttpRecorder::Sms();
  Start(test::TestConfigYaml(slack->Url("/hook"), sms->Url("/send")), true);
  auto r = Post("/v1/alertmanager", AmPayload({Firing("ConnectorDown")}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(slack->WaitAccepted(1, 20s));
  ASSERT_TRUE(sms->WaitAccepted(2, 20s));
  AmAlert resolved = Resolved("ConnectorDown", "2026-11-25T10:10:00Z");
  r = Post("/v1/alertmanager", AmPayload({resolved}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(slack->WaitAccepted(2, 20s));
  ASSERT_TRUE(sms->WaitAccepted(4, 20s));
  // Nothing more arrives: one message per state change per destination.
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return test::Count(
                   url_, "SELECT count(*) FROM notification_outbox WHERE state = 'delivered'") == 6;
      },
      10s));
  EXPECT_EQ(slack->Accepted().size(), 2u);
  EXPECT_EQ(sms->Accepted().size(), 4u);
  EXPECT_NE(slack->Accepted()[0].body.find("ConnectorDown"), std::string::npos);
  EXPECT_NE(Metrics().find("bpmc_receiver_notifications_total"), std::string::npos)
      << "the notifier's metrics are on the receiver's /metrics";
}

}  // namespace
}  // namespace bpmc::webhook_receiver
