// Heartbeats in the running receiver against a real PostgreSQL and a loopback Slack: a
// missed heartbeat pages through the normal routes, a check-in resolves it and the
// resolution is sent, check-ins while healthy page nobody, refusals record nothing, and
// two receivers on one database fire once.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <thread>

#include "receiver_test_util.h"
#include "recorders/http_recorder.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"
#include "webhook_receiver/service.h"

namespace bpmc::webhook_receiver {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::WaitFor;

const httplib::Headers kBeat = {{"Authorization", "Bearer beat-token"}};

// Every HeartbeatMissed to Slack; `job` is missed 2 s after its last check-in.
std::string Yaml(const std::string& slack_url) {
  return R"(
auth: {insecure_no_auth: true}   # the webhook intakes; heartbeats keep their own tokens
channels:
  ops-slack:
    type: slack
    url: )" +
         slack_url + R"(
    rate_limit: none
delivery:
  initial_backoff_seconds: 0.05
  max_backoff_seconds: 0.2
routes:
  - match: {alertname: HeartbeatMissed}
    notify: [ops-slack]
heartbeats:
  job:
    interval: 1s
    grace: 1s
    token_env: BPMC_TEST_HEARTBEAT_TOKEN
    labels: {team: platform}
  hourly: {interval: 1h, token_env: BPMC_TEST_HEARTBEAT_TOKEN_2}
)";
}

class HeartbeatServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("BPMC_TEST_HEARTBEAT_TOKEN", "beat-token", 1);
    setenv("BPMC_TEST_HEARTBEAT_TOKEN_2", "other-token", 1);
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
    slack_ = recorders::HttpRecorder::Slack();
  }

  std::unique_ptr<Service> Start(bool delivery) {
    ReceiverConfig config = test::MustLoad(Yaml(slack_->Url("/slack")));
    config.listen = "127.0.0.1:0";
    config.database_url = url_;
    config.http_threads = 8;
    ServiceDeps deps;
    deps.start_delivery = delivery;
    std::string error;
    auto service = Service::Start(config, deps, &error);
    EXPECT_TRUE(service) << error;
    return service;
  }

  static httplib::Result CheckIn(const Service& s, const std::string& name,
                                 const httplib::Headers& headers = kBeat,
                                 const std::string& body = "{}") {
    httplib::Client c("127.0.0.1", s.port());
    return c.Post(("/v1/heartbeat/" + name).c_str(), headers, body, "application/json");
  }

  static std::string Metrics(const Service& s) {
    httplib::Client c("127.0.0.1", s.port());
    auto r = c.Get("/metrics");
    return r ? r->body : "";
  }

  int64_t Events(const std::string& status) {
    return test::Count(url_,
                       "SELECT count(*) FROM receiver_alert_events WHERE source = 'heartbeat'"
                       " AND dedup_key = 'heartbeat/job' AND status = '" +
                           status + "'");
  }

  std::string url_;
  std::unique_ptr<recorders::HttpRecorder> slack_;
};

TEST_F(HeartbeatServiceTest, MissedPagesAndCheckInResolves) {
  auto service = Start(/*delivery=*/true);
  ASSERT_TRUE(service);
  // Never checked in: missed 2 s after the receiver first watched it.
  ASSERT_TRUE(WaitFor([&] { return Events("firing") == 1; }, 15s));
  EXPECT_EQ(test::Count(url_,
                        "SELECT count(*) FROM receiver_alert_events e JOIN receiver_heartbeats h"
                        " ON h.name = 'job' WHERE e.source = 'heartbeat' AND e.status = 'firing'"
                        " AND e.outcome = 'notified' AND e.alert->>'alertname' = 'HeartbeatMissed'"
                        " AND e.alert->'labels'->>'team' = 'platform'"
                        " AND e.starts_at = h.watched_since + interval '2 seconds'"
                        " AND h.missed_at = e.starts_at"),
            1);
  ASSERT_TRUE(WaitFor([&] { return slack_->AcceptedCount() == 1; }, 15s));
  EXPECT_NE(slack_->Accepted()[0].body.find("HeartbeatMissed"), std::string::npos)
      << slack_->Accepted()[0].body;
  EXPECT_NE(slack_->Accepted()[0].body.find("No check-in from job"), std::string::npos);

  // The check-in resolves it, and the resolution reaches whoever was paged.
  auto r = CheckIn(*service, "job");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto body = nlohmann::json::parse(r->body);
  EXPECT_EQ(body["name"], "job");
  EXPECT_TRUE(body["resolved"].get<bool>());
  EXPECT_FALSE(body["next_due_at"].get<std::string>().empty());
  EXPECT_EQ(Events("resolved"), 1);
  EXPECT_EQ(test::Count(url_,
                        "SELECT count(*) FROM receiver_heartbeats WHERE name = 'job'"
                        " AND missed_at IS NULL AND last_checkin_at IS NOT NULL"),
            1);
  ASSERT_TRUE(WaitFor([&] { return slack_->AcceptedCount() == 2; }, 15s));
  EXPECT_NE(slack_->Accepted()[1].body.find("RESOLVED"), std::string::npos)
      << slack_->Accepted()[1].body;

  // Check-ins while healthy page nobody and store nothing.
  const int64_t webhooks = test::Count(url_, "SELECT count(*) FROM receiver_webhooks");
  for (int i = 0; i < 12; ++i) {
    r = CheckIn(*service, "job");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_FALSE(nlohmann::json::parse(r->body)["resolved"].get<bool>());
    std::this_thread::sleep_for(250ms);  // the cadence of the check-ins under test
  }
  EXPECT_EQ(Events("firing"), 1);
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_webhooks"), webhooks);
  EXPECT_EQ(slack_->AcceptedCount(), 2u);

  // Silence again: a second episode pages again.
  ASSERT_TRUE(WaitFor([&] { return Events("firing") == 2; }, 15s));
  ASSERT_TRUE(WaitFor([&] { return slack_->AcceptedCount() == 3; }, 15s));
  const std::string m = Metrics(*service);
  EXPECT_NE(m.find("bpmc_receiver_heartbeats_missed_total{heartbeat=\"job\"} 2"), std::string::npos)
      << m;
  EXPECT_NE(m.find("bpmc_receiver_heartbeat_checkins_total{heartbeat=\"job\",result=\"ok\"} 13"),
            std::string::npos);
  EXPECT_NE(m.find("bpmc_receiver_heartbeat_last_checkin_timestamp_seconds{heartbeat=\"job\"}"),
            std::string::npos);
  EXPECT_NE(m.find("bpmc_receiver_alerts_total{outcome=\"notified\",source=\"heartbeat\"} 3"),
            std::string::npos);
  EXPECT_EQ(m.find("reason=\"heartbeat_check\""), std::string::npos) << "a checker failure";
  service->Shutdown();
}

// A silence matching the heartbeat keeps its miss from paging (planned downtime
// of the job); when the silence ends while the heartbeat is still missed, it pages.
TEST_F(HeartbeatServiceTest, ASilenceMutesAMissedHeartbeatUntilItEnds) {
  auto service = Start(/*delivery=*/true);
  ASSERT_TRUE(service);
  {
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    txn.exec(
        "INSERT INTO silences (matchers, starts_at, ends_at, comment, created_by)"
        " VALUES ('[\"heartbeat=\\\"job\\\"\"]', now() - interval '1 minute',"
        " now() + interval '1 hour', 'the job host is being replaced', 'test')");
    txn.commit();
  }
  ASSERT_TRUE(WaitFor([&] { return Events("firing") == 1; }, 15s));
  EXPECT_EQ(test::Count(url_,
                        "SELECT count(*) FROM receiver_alert_events WHERE source ="
                        " 'heartbeat' AND outcome = 'silenced'"),
            1);
  std::this_thread::sleep_for(1500ms);  // a negative check needs a wait
  EXPECT_EQ(slack_->AcceptedCount(), 0u);
  // The silence ends (as DELETE /api/v1/silences/{id} does): the miss pages now.
  test::Count(url_,
              "WITH e AS (UPDATE silences SET ends_at = now() RETURNING 1) SELECT count(*) FROM e");
  ASSERT_TRUE(WaitFor([&] { return slack_->AcceptedCount() == 1; }, 15s));
  EXPECT_NE(slack_->Accepted()[0].body.find("HeartbeatMissed"), std::string::npos);
  service->Shutdown();
}

TEST_F(HeartbeatServiceTest, RefusalsRecordNothing) {
  auto service = Start(/*delivery=*/false);
  ASSERT_TRUE(service);
  const struct {
    const char* name;
    std::string path;
    httplib::Headers headers;
    std::string body;
    int status;
  } cases[] = {
      {"no token (insecure_no_auth is for webhooks only)", "hourly", {}, "", 401},
      {"wrong token", "hourly", {{"Authorization", "Bearer nope"}}, "", 401},
      {"another heartbeat's token", "hourly", kBeat, "", 401},
      {"query token not enabled", "hourly?token=other-token", {}, "", 401},
      {"unknown name", "nightly", kBeat, "", 404},
      {"nested path", "hourly/x", {{"Authorization", "Bearer other-token"}}, "", 404},
      {"body over 64 KiB",
       "hourly",
       {{"Authorization", "Bearer other-token"}},
       std::string(64 * 1024 + 1, ' '),
       413},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = CheckIn(*service, c.path, c.headers, c.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << r->body;
    if (c.status == 401) EXPECT_FALSE(r->get_header_value("WWW-Authenticate").empty());
    if (c.status == 404) EXPECT_EQ(nlohmann::json::parse(r->body)["field"], "name");
  }
  EXPECT_EQ(test::Count(
                url_, "SELECT count(*) FROM receiver_heartbeats WHERE last_checkin_at IS NOT NULL"),
            0);
  // A body up to 64 KiB is accepted and ignored; GET checks in too (cron's curl).
  const httplib::Headers other = {{"Authorization", "Bearer other-token"}};
  auto r = CheckIn(*service, "hourly", other, std::string(64 * 1024, 'x'));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  httplib::Client c("127.0.0.1", service->port());
  r = c.Get("/v1/heartbeat/hourly", other);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(test::Count(url_,
                        "SELECT count(*) FROM receiver_heartbeats WHERE name = 'hourly'"
                        " AND last_checkin_at IS NOT NULL"),
            1);
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_webhooks"), 0);
  const std::string m = Metrics(*service);
  EXPECT_NE(m.find("bpmc_receiver_heartbeat_checkins_total{heartbeat=\"hourly\",result="
                   "\"unauthorized\"} 4"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("bpmc_receiver_heartbeat_checkins_total{heartbeat=\"(unknown)\",result="
                   "\"unknown\"} 2"),
            std::string::npos);
  EXPECT_NE(m.find("bpmc_receiver_heartbeat_checkins_total{heartbeat=\"hourly\",result=\"ok\"} 2"),
            std::string::npos);
  EXPECT_EQ(m.find("nightly"), std::string::npos) << "an unknown name became a label";
  service->Shutdown();
}

TEST_F(HeartbeatServiceTest, TwoReceiversOnOneDatabaseFireOnce) {
  auto a = Start(/*delivery=*/false);
  auto b = Start(/*delivery=*/false);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitFor([&] { return Events("firing") == 1; }, 15s));
  std::this_thread::sleep_for(3s);  // both checkers run three more passes meanwhile
  EXPECT_EQ(Events("firing"), 1);
  EXPECT_EQ(test::OutboxRows(url_), std::vector<std::string>{"ops-slack||firing|heartbeat/job"});
  auto missed = [](const std::string& m) {
    return m.find("bpmc_receiver_heartbeats_missed_total{heartbeat=\"job\"} 1") !=
           std::string::npos;
  };
  EXPECT_NE(missed(Metrics(*a)), missed(Metrics(*b))) << "exactly one receiver fired";
  // A check-in on either one resolves it, once.
  auto r = CheckIn(*b, "job");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = CheckIn(*a, "job");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Events("resolved"), 1);
  EXPECT_EQ(test::OutboxRows(url_),
            (std::vector<std::string>{"ops-slack||firing|heartbeat/job",
                                      "ops-slack||resolved|heartbeat/job"}));
  a->Shutdown();
  b->Shutdown();
}

}  // namespace
}  // namespace bpmc::webhook_receiver
