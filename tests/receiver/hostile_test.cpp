// Hostile payloads against the real bpmc-receiver binary, whose handlers run on
// CivetWeb's ~100 KB thread stacks: each of these killed the process before
// (issue 14 §1), and a receiver that crash-loops pages nobody. Each request must
// get its answer and the process must stay up and keep paging.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <pqxx/pqxx>
#include <string>

#include "common/ids.h"
#include "common/migrate.h"
#include "common/testing/temp_dir.h"
#include "notifier/slack_app.h"
#include "receiver_test_util.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"
#include "webhook_receiver/intake.h"
#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::Process;

constexpr const char* kSlackSecret = "hostile-signing-secret";

// A 2,000-deep chain of objects, as the attacker's `details`.
std::string Deep(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  s += std::string(static_cast<size_t>(depth), '}');
  return s;
}

class HostileInputTest : public ::testing::Test {
 protected:
  // The example config's regex route (receiver.example.yaml).
  virtual std::string Config() const {
    return R"(
auth:
  bearer_tokens:
    - token_env: BPMC_HOSTILE_TOKEN
channels:
  billing-slack:
    type: slack
    url: http://127.0.0.1:9/slack
    rate_limit: none
routes:
  - name: billing
    match_re: {alertname: "Payment.*|Billing.*"}
    notify: [billing-slack]
)";
  }

  // Runs after the database is created, before the receiver starts.
  virtual void BeforeStart() {}

  void SetUp() override {
    auto& cluster = bpmc::testing::SharedCluster();
    db_url_ = cluster.Url(cluster.CreateDatabase());
    // The example config's regex route (receiver.example.yaml).
    std::ofstream(dir_.File("receiver.yaml")) << Config();
    BeforeStart();
    port_ = bpmc::testing::FreePort();
    receiver_ = std::make_unique<Process>(
        std::vector<std::string>{bpmc::testing::BinPath("bpmc-receiver"), "serve", "--config",
                                 dir_.File("receiver.yaml"), "--listen",
                                 "127.0.0.1:" + std::to_string(port_), "--database-url", db_url_},
        std::vector<std::string>{"BPMC_HOSTILE_TOKEN=hostile-token",
                                 "BPMC_HOSTILE_TG=123456:hostile-bot-token",
                                 "BPMC_HOSTILE_SLACK_TOKEN=xoxb-hostile",
                                 "BPMC_HOSTILE_SLACK_SECRET=" + std::string(kSlackSecret),
                                 "BPMC_HOSTILE_ICAL=" + std::string(32, 'i')});
    ASSERT_TRUE(bpmc::testing::WaitFor(
        [&] {
          httplib::Client c("127.0.0.1", port_);
          auto r = c.Get("/readyz");
          return r && r->status == 200;
        },
        30s))
        << receiver_->Stderr();
  }

  void TearDown() override {
    if (receiver_) {
      receiver_->Signal(SIGTERM);
      EXPECT_EQ(receiver_->Wait(30s), 0) << receiver_->Stderr();
    }
  }

  httplib::Result Post(const std::string& path, const std::string& body) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    c.set_bearer_token_auth("hostile-token");
    return c.Post(path.c_str(), body, "application/json");
  }

  // `method` with `body` (and the admin's token when `admin`), on a fresh connection.
  httplib::Result Send(const std::string& method, const std::string& path, const std::string& body,
                       bool admin, const httplib::Headers& headers = {},
                       const char* type = "application/json") {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    if (admin) c.set_bearer_token_auth(kAdminToken);
    if (method == "GET") return c.Get(path.c_str(), headers);
    return c.Post(path.c_str(), headers, body, type);
  }
  // A platform user's token has the users' form (bpmcu_ + 43 base64url characters).
  const std::string kAdminToken = "bpmcu_" + std::string(43, 'h');

  bpmc::testing::TempDir dir_{"bpmc-hostile"};
  std::string db_url_;
  int port_ = 0;
  std::unique_ptr<Process> receiver_;
};

TEST_F(HostileInputTest, LongLabelAgainstARegexRouteIsRoutedNotACrash) {
  for (const size_t n : {250u, 100'000u}) {
    test::AmAlert a = test::Firing("Payment" + std::string(n, 'x'));
    a.fingerprint = "fp-long-" + std::to_string(n);
    if (n > kMaxLabelValueBytes) {
      // Past the label limit: refused whole, naming the label, nothing stored.
      auto r = Post("/v1/alertmanager", test::AmPayload({a}));
      ASSERT_TRUE(r) << "no answer: " << receiver_->Stderr();
      EXPECT_EQ(r->status, 400) << r->body;
      EXPECT_NE(r->body.find("\"field\":\"alerts[0].labels.alertname\""), std::string::npos)
          << r->body;
      continue;
    }
    auto r = Post("/v1/alertmanager", test::AmPayload({a}));
    ASSERT_TRUE(r) << "no answer: " << receiver_->Stderr();
    EXPECT_EQ(r->status, 200) << r->body;
  }
  // The regex route matched: the billing channel got a notification.
  EXPECT_EQ(test::Count(db_url_,
                        "SELECT count(*) FROM notification_outbox WHERE channel = 'billing-slack'"),
            1);
  EXPECT_TRUE(receiver_->Running());
}

TEST_F(HostileInputTest, DeepJsonIsRefusedOnEveryIntake) {
  const std::string deep = Deep(2000);
  const struct {
    const char* path;
    std::string body;
  } cases[] = {
      {"/v1/generic", R"({"summary":"s","details":)" + deep + "}"},
      {"/v1/alertmanager", R"({"version":"4","alerts":[{"annotations":)" + deep + "}]}"},
      {"/v1/sentry", R"({"data":)" + deep + "}"},
      {"/v1/datadog", R"({"body":)" + deep + "}"},
      {"/v1/newrelic", "[" + deep + "]"},
  };
  for (const auto& c : cases) {
    ASSERT_LT(c.body.size(), 16'000u);
    auto r = Post(c.path, c.body);
    ASSERT_TRUE(r) << c.path << ": no answer: " << receiver_->Stderr();
    EXPECT_EQ(r->status, 400) << c.path << ": " << r->body;
    EXPECT_NE(r->body.find("deeper than 32 levels"), std::string::npos) << r->body;
  }
  EXPECT_EQ(test::Count(db_url_, "SELECT count(*) FROM receiver_webhooks"), 0);
  // Still paging after all of that.
  auto ok = Post("/v1/alertmanager", test::AmPayload({test::Firing("BillingDown")}));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_TRUE(receiver_->Running());
}

TEST_F(HostileInputTest, TooManyAlertsIs413) {
  std::vector<test::AmAlert> alerts;
  for (size_t i = 0; i <= kMaxAlertsPerWebhook; ++i)
    alerts.push_back(test::Firing("A" + std::to_string(i)));
  auto r = Post("/v1/alertmanager", test::AmPayload(alerts));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body;
  EXPECT_NE(r->body.find("\"field\":\"alerts\""), std::string::npos) << r->body;
  EXPECT_EQ(test::Count(db_url_, "SELECT count(*) FROM receiver_webhooks"), 0);
}

// The routes of issue 16 (Telegram link codes, Slack interactions, calendar feeds, config
// reload) against the real binary: no credentials, 10 MB, 5,000-deep JSON and
// 10,000-character values each get an answer, store nothing, and the receiver stays up.
class NewRoutesHostileTest : public HostileInputTest {
 protected:
  std::string Config() const override {
    return R"(
auth:
  bearer_tokens:
    - token_env: BPMC_HOSTILE_TOKEN
channels:
  tg: {type: telegram, bot_token_env: BPMC_HOSTILE_TG, api_url: "http://127.0.0.1:9"}
  ops-slack:
    type: slack
    bot_token_env: BPMC_HOSTILE_SLACK_TOKEN
    signing_secret_env: BPMC_HOSTILE_SLACK_SECRET
    channel: C0OPS
    api_url: http://127.0.0.1:9/api
people:
  ivan:
    contact_methods: [{type: telegram}, {type: slack, address: U0IVAN}]
schedules:
  primary:
    time_zone: Europe/Moscow
    layers: [{rotation: weekly, handoff: "10:00", start: "2026-01-05", participants: [ivan]}]
incidents:
  ical_feed_secret_env: BPMC_HOSTILE_ICAL
routes:
  - match: {severity: critical}
    notify: [ops-slack]
)";
  }
  // An admin platform user (the receiver reads users at start).
  void BeforeStart() override {
    pqxx::connection conn(db_url_);
    ApplySchema(conn, DatabaseSchema());
    pqxx::work txn(conn);
    txn.exec_params("INSERT INTO users (name, role, token_hash) VALUES ('root', 'admin', $1)",
                    pqxx::binarystring(Sha256(kAdminToken)));
    txn.commit();
  }
};

TEST_F(NewRoutesHostileTest, EveryNewRouteAnswersAndTheReceiverStaysUp) {
  const std::string ten_mb(10u << 20, 'x');
  const std::string deep_array = std::string(5000, '[') + std::string(5000, ']');
  const std::string deep_object = Deep(5000);
  const std::string long_value(10000, 'v');
  const auto answered = [&](const httplib::Result& r, std::initializer_list<int> codes,
                            const std::string& what) {
    ASSERT_TRUE(r) << what << ": no answer: " << receiver_->Stderr();
    EXPECT_TRUE(std::find(codes.begin(), codes.end(), r->status) != codes.end())
        << what << ": " << r->status << " " << r->body.substr(0, 200);
  };

  // Telegram link codes (admin or support): credentials before the body; the body limit
  // (4 KiB) before parsing; a person the config does not name is refused by name.
  const std::string codes = "/api/v1/telegram/link-codes";
  answered(Send("POST", codes, ten_mb, false), {401}, "codes, no credentials, 10 MB");
  answered(Send("POST", codes, deep_object, false), {401}, "codes, no credentials, deep");
  answered(Send("POST", codes, ten_mb, true), {413}, "codes, 10 MB");
  answered(Send("POST", codes, deep_array, true), {400, 413}, "codes, 5,000-deep array");
  answered(Send("POST", codes, "{\"person\":\"" + long_value + "\"}", true), {400, 413},
           "codes, 10,000-character person");
  answered(Send("POST", codes, "{\"person\":\"" + std::string(3000, 'p') + "\"}", true), {400, 404},
           "codes, unknown long person");
  answered(Send("POST", codes, Deep(40), true), {400}, "codes, 40-deep object");
  EXPECT_EQ(test::Count(db_url_, "SELECT count(*) FROM telegram_link_codes"), 0);

  // Slack interactions: the signature is the credential, then 64 KiB, then the payload.
  const std::string slack = "/v1/slack/interactions";
  answered(Send("POST", slack, ten_mb, false, {}, "application/x-www-form-urlencoded"), {401, 413},
           "slack, unsigned 10 MB");
  const auto signed_post = [&](const std::string& body) {
    const std::string ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
    return Send("POST", slack, body, false,
                {{"X-Slack-Request-Timestamp", ts},
                 {"X-Slack-Signature", notifier::SlackSignatureFor(kSlackSecret, ts, body)}},
                "application/x-www-form-urlencoded");
  };
  answered(signed_post("payload=" + deep_array), {400}, "slack, 5,000-deep payload");
  answered(signed_post("payload=" + deep_object), {400}, "slack, 5,000-deep object payload");
  answered(signed_post("payload=" + std::string(R"({"type":"block_actions","user":{"id":")") +
                       long_value + R"("},"actions":[{"value":"a:1"}]})"),
           {200}, "slack, 10,000-character member (unmapped: refused, audited)");
  answered(signed_post("payload=" +
                       std::string(R"({"type":"block_actions","user":{"id":"U0IVAN"},)"
                                   R"("actions":[{"value":")") +
                       long_value + R"("}]})"),
           {400}, "slack, 10,000-character button value");
  EXPECT_EQ(test::Count(db_url_, "SELECT count(*) FROM slack_interactions_seen"), 0);

  // Calendar feeds: the signature before the id, whatever their length.
  answered(Send("GET", "/api/v1/oncall/ical/schedule/" + long_value + ".ics?sig=" + long_value, "",
                false),
           {400, 403, 404, 414}, "feed, 10,000-character id and sig");
  answered(Send("GET", "/api/v1/oncall/ical/person/ivan.ics", "", false), {403}, "feed, no sig");
  answered(Send("GET", "/api/v1/oncall/ical-links", "", false), {401}, "feed links, no token");

  // Reload: an admin's token before anything; the body is not read.
  answered(Send("POST", "/-/reload", ten_mb, false), {401}, "reload, no credentials, 10 MB");
  answered(Send("POST", "/-/reload", deep_object, false), {401}, "reload, no credentials, deep");

  // Still up and serving.
  httplib::Client c("127.0.0.1", port_);
  auto ready = c.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_TRUE(receiver_->Running()) << receiver_->Stderr();
}

}  // namespace
}  // namespace bpmc::webhook_receiver
