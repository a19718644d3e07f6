// Hostile payloads against the real bpmc-receiver binary, whose handlers run on
// CivetWeb's ~100 KB thread stacks: each of these killed the process before
// (issue 14 §1), and a receiver that crash-loops pages nobody. Each request must
// get its answer and the process must stay up and keep paging.
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <fstream>
#include <string>

#include "common/testing/temp_dir.h"
#include "receiver_test_util.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"
#include "webhook_receiver/intake.h"

namespace bpmc::webhook_receiver {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::Process;

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
  void SetUp() override {
    auto& cluster = bpmc::testing::SharedCluster();
    db_url_ = cluster.Url(cluster.CreateDatabase());
    // The example config's regex route (receiver.example.yaml).
    std::ofstream(dir_.File("receiver.yaml")) << R"(
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
    port_ = bpmc::testing::FreePort();
    receiver_ = std::make_unique<Process>(
        std::vector<std::string>{bpmc::testing::BinPath("bpmc-receiver"), "serve", "--config",
                                 dir_.File("receiver.yaml"), "--listen",
                                 "127.0.0.1:" + std::to_string(port_), "--database-url", db_url_},
        std::vector<std::string>{"BPMC_HOSTILE_TOKEN=hostile-token"});
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

}  // namespace
}  // namespace bpmc::webhook_receiver
