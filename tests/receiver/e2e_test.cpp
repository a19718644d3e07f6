// End to end: a real Alertmanager pair (Debian prometheus-alertmanager 0.25,
// clustered on loopback) receives an alert through its API and sends webhooks
// to the bpmc-receiver binary, which pages every channel — email (SMTP
// recorder), Slack, SMS, a signed webhook and PagerDuty (HTTP recorders).
// Each recorder must get exactly one message, then exactly one resolution.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "common/clock.h"
#include "common/ids.h"
#include "common/testing/temp_dir.h"
#include "common/time_format.h"
#include "receiver_test_util.h"
#include "recorders/http_recorder.h"
#include "recorders/smtp_recorder.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"

namespace bpmc::webhook_receiver {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using bpmc::testing::FreePort;
using bpmc::testing::Process;
using bpmc::testing::WaitFor;

constexpr const char* kAlertmanager = "/usr/bin/prometheus-alertmanager";
const std::string kRoutingKey(32, 'k');

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string Get(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5, 0);
  auto r = c.Get(path.c_str());
  return r && r->status == 200 ? r->body : "";
}

// Sum of the samples of `metric` (any labels) whose label text contains `filter`.
double MetricSum(const std::string& text, const std::string& metric,
                 const std::string& filter = "") {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(metric, 0) != 0) continue;
    const char next = line.size() > metric.size() ? line[metric.size()] : ' ';
    if (next != '{' && next != ' ') continue;
    if (!filter.empty() && line.find(filter) == std::string::npos) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

class AlertmanagerPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kAlertmanager, X_OK) != 0) GTEST_SKIP() << kAlertmanager << " is not installed";
    dir_ = std::make_unique<bpmc::testing::TempDir>("bpmc-e2e");
    auto& cluster = bpmc::testing::SharedCluster();
    db_url_ = cluster.Url(cluster.CreateDatabase());
    slack_ = recorders::HttpRecorder::Slack();
    sms_ = recorders::HttpRecorder::Sms();
    webhook_ = recorders::HttpRecorder::Webhook();
    pagerduty_ = recorders::HttpRecorder::PagerDuty();
    smtp_ = std::make_unique<recorders::SmtpRecorder>();
    StartReceiver();
    StartAlertmanagers();
  }

  void TearDown() override {
    for (auto& am : alertmanagers_) am.reset();
    if (receiver_) {
      receiver_->Signal(SIGTERM);
      EXPECT_EQ(receiver_->Wait(30s), 0) << receiver_->Stderr();
    }
  }

  void StartReceiver() {
    WriteFile(dir_->File("token"), "e2e-token\n");
    receiver_port_ = FreePort();
    WriteFile(dir_->File("receiver.yaml"), R"(
auth:
  bearer_tokens:
    - token_file: )" + dir_->File("token") + R"(
delivery:
  initial_backoff_seconds: 0.1
channels:
  oncall-email:
    type: email
    rate_limit: none
    smtp: {url: ")" + smtp_->Url() + R"(", starttls: none}
    from: bpmc-alerts@example.com
    to: [oncall@example.com]
  ops-slack:
    type: slack
    rate_limit: none
    url: )" + slack_->Url("/services/T0/B0/x") +
                                               R"(
  oncall-sms:
    type: sms
    rate_limit: none
    url: )" + sms_->Url("/send") + R"(
    to: ["+70000000001"]
  audit-webhook:
    type: webhook
    url: )" + webhook_->Url("/hook") + R"(
    secret_env: BPMC_E2E_WEBHOOK_SECRET
  pagerduty:
    type: pagerduty
    url: )" + pagerduty_->Url("/v2/enqueue") +
                                               R"(
    routing_key_env: BPMC_E2E_PD_KEY
routes:
  - name: critical
    match: {severity: critical}
    notify: [oncall-email, ops-slack, oncall-sms, audit-webhook, pagerduty]
)");
    const std::string bin = bpmc::testing::BinPath("bpmc-receiver");
    // check-config first, as an operator would.
    std::string out;
    ASSERT_EQ(
        bpmc::testing::RunCommand("BPMC_E2E_WEBHOOK_SECRET=s BPMC_E2E_PD_KEY=" + kRoutingKey + " " +
                                      bin + " check-config --config " + dir_->File("receiver.yaml"),
                                  &out),
        0)
        << out;
    receiver_ = std::make_unique<Process>(
        std::vector<std::string>{bin, "serve", "--config", dir_->File("receiver.yaml"), "--listen",
                                 "127.0.0.1:" + std::to_string(receiver_port_), "--database-url",
                                 db_url_},
        std::vector<std::string>{"BPMC_E2E_WEBHOOK_SECRET=e2e-secret",
                                 "BPMC_E2E_PD_KEY=" + kRoutingKey});
    ASSERT_TRUE(WaitFor([&] { return Get(receiver_port_, "/readyz") == "ready\n"; }, 30s))
        << receiver_->Stderr();
  }

  // Two Alertmanagers gossiping on loopback. A short peer timeout makes the
  // second one notify before the first one's notification log reaches it, so
  // the receiver usually sees the same notification twice (it must page once).
  void StartAlertmanagers() {
    WriteFile(dir_->File("alertmanager.yml"), R"(
route:
  receiver: bpmc.oncall
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: bpmc.oncall
    webhook_configs:
      - url: http://127.0.0.1:)" + std::to_string(receiver_port_) +
                                                  R"(/v1/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: )" + dir_->File("token") +
                                                  R"(
)");
    std::string out;
    ASSERT_EQ(
        bpmc::testing::RunCommand("amtool check-config " + dir_->File("alertmanager.yml"), &out), 0)
        << out;
    const int cluster_ports[2] = {FreePort(), FreePort()};
    for (int i = 0; i < 2; ++i) {
      am_ports_[i] = FreePort();
      const std::string storage = dir_->File("am" + std::to_string(i));
      fs::create_directories(storage);
      alertmanagers_[i] = std::make_unique<Process>(std::vector<std::string>{
          kAlertmanager, "--config.file=" + dir_->File("alertmanager.yml"),
          "--storage.path=" + storage,
          "--web.listen-address=127.0.0.1:" + std::to_string(am_ports_[i]),
          "--cluster.listen-address=127.0.0.1:" + std::to_string(cluster_ports[i]),
          "--cluster.peer=127.0.0.1:" + std::to_string(cluster_ports[1 - i]),
          "--cluster.peer-timeout=50ms", "--cluster.settle-timeout=5s", "--log.level=warn"});
    }
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(WaitFor([&] { return !Get(am_ports_[i], "/-/ready").empty(); }, 60s))
          << alertmanagers_[i]->Stderr();
    }
    // Both see each other before the alert goes in.
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(WaitFor(
          [&] {
            return MetricSum(Get(am_ports_[i], "/metrics"), "alertmanager_cluster_members") == 2;
          },
          60s))
          << alertmanagers_[i]->Stderr();
    }
  }

  // Posts the alert to both Alertmanagers, as Prometheus does (same startsAt).
  void PostAlert(const std::string& ends_at) {
    nlohmann::json alert = {
        {"labels",
         {{"alertname", "ConnectorDown"}, {"severity", "critical"}, {"connector", "crm"}}},
        {"annotations",
         {{"summary", "Connector crm is down"},
          {"description", "Connector has been down for more than 1 minute"},
          {"runbook_url", "https://runbooks.example/ConnectorDown"}}},
        {"startsAt", starts_at_},
        {"generatorURL", "http://127.0.0.1:9090/graph?g0.expr=up"}};
    if (!ends_at.empty()) alert["endsAt"] = ends_at;
    for (int port : am_ports_) {
      httplib::Client c("127.0.0.1", port);
      auto r = c.Post("/api/v2/alerts", nlohmann::json::array({alert}).dump(), "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
    }
  }

  // True once every webhook both Alertmanagers sent was answered by the receiver
  // and its outbox is empty, i.e. nothing more is on its way.
  bool Quiet() {
    double sent = 0;
    for (int port : am_ports_)
      sent += MetricSum(Get(port, "/metrics"), "alertmanager_notifications_total", "webhook");
    const std::string m = Get(receiver_port_, "/metrics");
    const double accepted = MetricSum(m, "bpmc_receiver_webhooks_total", "accepted");
    return sent > 0 && accepted >= sent &&
           test::Count(db_url_,
                       "SELECT count(*) FROM notification_outbox WHERE state = 'queued'") == 0;
  }

  void ExpectCounts(size_t n) {
    EXPECT_EQ(smtp_->Accepted().size(), n);
    EXPECT_EQ(slack_->Accepted().size(), n);
    EXPECT_EQ(sms_->Accepted().size(), n);
    EXPECT_EQ(webhook_->Accepted().size(), n);
    EXPECT_EQ(pagerduty_->Accepted().size(), n);
  }

  bool AllReached(size_t n) {
    return smtp_->Accepted().size() >= n && slack_->Accepted().size() >= n &&
           sms_->Accepted().size() >= n && webhook_->Accepted().size() >= n &&
           pagerduty_->Accepted().size() >= n;
  }

  std::unique_ptr<bpmc::testing::TempDir> dir_;
  std::string db_url_;
  std::string starts_at_ = FormatRfc3339Micros(SystemClock::Get().NowMicros());
  std::unique_ptr<recorders::HttpRecorder> slack_, sms_, webhook_, pagerduty_;
  std::unique_ptr<recorders::SmtpRecorder> smtp_;
  std::unique_ptr<Process> receiver_;
  int receiver_port_ = 0;
  int am_ports_[2] = {0, 0};
  std::unique_ptr<Process> alertmanagers_[2];
};

TEST_F(AlertmanagerPairTest, OneMessagePerChannelThenTheResolution) {
  PostAlert("");
  ASSERT_TRUE(WaitFor([&] { return AllReached(1); }, 60s)) << receiver_->Stderr();
  ASSERT_TRUE(WaitFor([&] { return Quiet(); }, 30s));
  ExpectCounts(1);

  // What arrived is what each peer expects.
  const auto pd = nlohmann::json::parse(pagerduty_->Accepted()[0].body);
  EXPECT_EQ(pd["event_action"], "trigger");
  const std::string dedup_key = pd["dedup_key"];
  EXPECT_FALSE(dedup_key.empty());
  EXPECT_NE(slack_->Accepted()[0].body.find("Connector crm is down"), std::string::npos);
  const auto hook = webhook_->Accepted().at(0);
  EXPECT_EQ(hook.Header("x-bpmc-signature"),
            "sha256=" + HexEncode(HmacSha256("e2e-secret", hook.body)));
  EXPECT_NE(recorders::ParseMail(smtp_->Accepted()[0].data).text.find("Connector crm is down"),
            std::string::npos);

  // Resolve it in both Alertmanagers: one resolution per channel.
  PostAlert(FormatRfc3339Micros(SystemClock::Get().NowMicros()));
  ASSERT_TRUE(WaitFor([&] { return AllReached(2); }, 60s)) << receiver_->Stderr();
  ASSERT_TRUE(WaitFor([&] { return Quiet(); }, 30s));
  ExpectCounts(2);
  const auto pd_resolve = nlohmann::json::parse(pagerduty_->Accepted()[1].body);
  EXPECT_EQ(pd_resolve["event_action"], "resolve");
  EXPECT_EQ(pd_resolve["dedup_key"], dedup_key);

  const std::string m = Get(receiver_port_, "/metrics");
  const double webhooks = MetricSum(m, "bpmc_receiver_webhooks_total", "accepted");
  const double duplicates = MetricSum(m, "bpmc_receiver_alerts_total", "duplicate");
  std::printf("Alertmanager webhooks accepted: %.0f (alerts recognised as duplicates: %.0f)\n",
              webhooks, duplicates);
  EXPECT_GE(webhooks, 2);
  EXPECT_EQ(MetricSum(m, "bpmc_receiver_alerts_total", "notified"), 2);
  EXPECT_EQ(duplicates, webhooks - 2);
}

}  // namespace
}  // namespace bpmc::webhook_receiver

namespace bpmc::webhook_receiver {
namespace {

// kill -9 of the receiver while a sender posts alerts (retrying, as Alertmanager does, until it
// gets a 200): every alert answered 200 is delivered after the restart, and only the messages
// in flight at the kill can arrive twice (the notifier's at-least-once window).
TEST(ReceiverCrashTest, KillNineLosesNoAcceptedAlert) {
  const bpmc::testing::TempDir tmp("bpmc-crash");
  const std::string& dir = tmp.path();
  auto& cluster = bpmc::testing::SharedCluster();
  const std::string db_url = cluster.Url(cluster.CreateDatabase());
  auto hook = recorders::HttpRecorder::Webhook();
  WriteFile(dir + "/receiver.yaml", R"(
auth: {insecure_no_auth: true}
delivery_threads: 2
channels:
  hook:
    type: webhook
    url: )" + hook->Url("/hook") + R"(
    rate_limit: none
routes:
  - notify: [hook]
)");
  const int port = FreePort();
  auto start = [&] {
    auto p = std::make_unique<Process>(std::vector<std::string>{
        bpmc::testing::BinPath("bpmc-receiver"), "serve", "--config", dir + "/receiver.yaml",
        "--listen", "127.0.0.1:" + std::to_string(port), "--database-url", db_url});
    EXPECT_TRUE(WaitFor([&] { return Get(port, "/readyz") == "ready\n"; }, 30s)) << p->Stderr();
    return p;
  };
  auto receiver = start();

  constexpr int kAlerts = 300;
  std::atomic<int> accepted{0};
  std::atomic<bool> sender_failed{false};
  std::thread sender([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(1, 0);
    c.set_read_timeout(10, 0);
    for (int i = 0; i < kAlerts; ++i) {
      const std::string body = R"({"summary":"crash test )" + std::to_string(i) +
                               R"(","severity":"critical","dedup_key":"crash-)" +
                               std::to_string(i) + R"("})";
      const bool ok = WaitFor(
          [&] {
            auto r = c.Post("/v1/generic", body, "application/json");
            return r && r->status == 200;
          },
          60s);
      if (!ok) {
        sender_failed = true;
        return;
      }
      ++accepted;
    }
  });
  ASSERT_TRUE(WaitFor([&] { return accepted.load() >= kAlerts / 3; }, 60s));
  receiver->Signal(SIGKILL);
  receiver->Wait(10s);
  receiver = start();
  sender.join();
  ASSERT_FALSE(sender_failed.load());

  // Every alert reaches the peer; count how often each arrived.
  std::map<std::string, int> seen;
  auto count_seen = [&] {
    seen.clear();
    for (const auto& r : hook->Accepted()) {
      const auto body = nlohmann::json::parse(r.body, nullptr, false);
      if (body.is_discarded()) continue;
      for (const auto& a : body["alerts"]) ++seen[a.value("dedup_key", "")];
    }
    return seen.size() == static_cast<size_t>(kAlerts);
  };
  ASSERT_TRUE(WaitFor(count_seen, 60s)) << "delivered " << seen.size() << " of " << kAlerts;
  int repeats = 0;
  for (const auto& [key, n] : seen) repeats += n - 1;
  EXPECT_LE(repeats, 2) << "at most the messages in flight at the kill (one per delivery thread)";
  EXPECT_EQ(test::Count(db_url, "SELECT count(*) FROM receiver_alert_events"), kAlerts);
  receiver->Signal(SIGTERM);
  EXPECT_EQ(receiver->Wait(30s), 0) << receiver->Stderr();
}

}  // namespace
}  // namespace bpmc::webhook_receiver
