// Delivery through a real throwaway PostgreSQL: the outbox, retries, rate
// limits with bundling, and crashes of a delivering process.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <csignal>
#include <fstream>
#include <map>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/http_client.h"
#include "common/migrate.h"
#include "notifier/deliverer.h"
#include "notifier/outbox.h"
#include "notifier_testing/fakes.h"
#include "recorders/http_recorder.h"
#include "recorders/smtp_recorder.h"
#include "test_util.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"
#include "webhook_receiver/store.h"  // DatabaseSchema()

namespace bpmc::notifier {
namespace {

using namespace std::chrono_literals;
using recorders::HttpRecorder;
namespace testing_fakes = notifier::testing;
using test::MakeAlert;
using test::MustParse;
using Json = nlohmann::json;

constexpr auto kDeadline = 30s;

// A migrated database, and the config's channel(s) pointed at recorders.
class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
    pqxx::connection conn(url_);
    ApplySchema(conn, webhook_receiver::DatabaseSchema());
  }
  void TearDown() override {
    if (deliverer_) deliverer_->Stop();
  }

  void StartDeliverer(const NotifierConfig& config, int threads = 2,
                      int64_t vacuum_after_rows = 20000) {
    Deliverer::Options options;
    options.database_url = url_;
    options.threads = threads;
    options.poll_interval = 100ms;
    options.gauge_interval = 100ms;
    options.vacuum_after_rows = vacuum_after_rows;
    options.vacuum_min_interval = 0ms;
    deliverer_ = std::make_unique<Deliverer>(options, config, *http_, *mailer_, SystemClock::Get(),
                                             registry_);
    deliverer_->Start();
  }

  void Enqueue(const std::vector<OutboxEntry>& entries) {
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    notifier::Enqueue(txn, entries);
    txn.commit();
    if (deliverer_) deliverer_->Wake();
  }

  long long Scalar(const std::string& sql) {
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    return txn.exec(sql)[0][0].as<long long>();
  }

  double Metric(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        bool match = true;
        for (const auto& [k, v] : labels) {
          bool found = false;
          for (const auto& l : m.label) found = found || (l.name == k && l.value == v);
          match = match && found;
        }
        if (!match) continue;
        if (family.type == prometheus::MetricType::Counter) return m.counter.value;
        if (family.type == prometheus::MetricType::Gauge) return m.gauge.value;
        if (family.type == prometheus::MetricType::Histogram)
          return static_cast<double>(m.histogram.sample_count);
      }
    }
    return -1;
  }

  std::string url_;
  prometheus::Registry registry_;
  std::unique_ptr<HttpClient> http_ = NewCurlHttpClient();
  std::unique_ptr<Mailer> mailer_ = NewCurlMailer();
  std::unique_ptr<Deliverer> deliverer_;
};

std::string HookConfig(const HttpRecorder& hook, const std::string& extra = "") {
  return "hook: {type: webhook, url: \"" + hook.Url("/in") + "\"" + extra + "}";
}

constexpr const char* kFastRetries =
    "{max_attempts: 5, initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2, jitter: 0.5}";

// The dedup keys of the alerts in accepted webhook bodies, with how often each came.
std::map<std::string, int> DeliveredKeys(const HttpRecorder& hook) {
  std::map<std::string, int> keys;
  for (const auto& r : hook.Accepted()) {
    const Json body = Json::parse(r.body);
    for (const auto& a : body["alerts"]) keys[a["dedup_key"].get<std::string>()]++;
  }
  return keys;
}

TEST_F(DeliveryTest, EnqueueIsIdempotentPerAlertStateChange) {
  AlertView a = MakeAlert("A");
  AlertView same_instant = a;
  same_instant.starts_at = "2026-11-25T13:00:00.000+03:00";  // another spelling of 10:00Z
  Enqueue({{"hook", "", a}, {"sms", "+1", a}, {"sms", "+2", a}});
  Enqueue({{"hook", "", same_instant}, {"sms", "+1", a}});  // HA twin / retried webhook
  EXPECT_EQ(Scalar("SELECT count(*) FROM notification_outbox"), 3);
  Enqueue({{"hook", "", MakeAlert("A", "resolved")}});  // a new state change
  EXPECT_EQ(Scalar("SELECT count(*) FROM notification_outbox"), 4);
  EXPECT_EQ(Scalar("SELECT count(*) FROM notification_destinations"), 3);

  pqxx::connection conn(url_);
  pqxx::work txn(conn);
  txn.exec("UPDATE notification_outbox SET state = 'failed' WHERE destination = '+2'");
  const auto recipients = FiringRecipients(txn, "fp-A", "2026-11-25T10:00:00.000000Z");
  EXPECT_EQ(recipients,
            (std::vector<std::pair<std::string, std::string>>{{"hook", ""}, {"sms", "+1"}}));
  EXPECT_TRUE(FiringRecipients(txn, "fp-B", "2026-11-25T10:00:00Z").empty());
}

TEST_F(DeliveryTest, ServerErrorThenRateLimitThenRecoveryDeliversOnce) {
  auto hook = HttpRecorder::Webhook();
  hook->Script(
      {{500, "boom", "text/plain", {}}, {429, "slow down", "text/plain", {{"Retry-After", "1"}}}});
  StartDeliverer(MustParse(HookConfig(*hook), kFastRetries));
  Enqueue({{"hook", "", MakeAlert("A")}});
  ASSERT_TRUE(hook->WaitAccepted(1, kDeadline));
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Metric("bpmc_receiver_notifications_total", {{"result", "delivered"}}) == 1;
      },
      10s));
  const auto requests = hook->Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].status, 500);
  EXPECT_EQ(requests[1].status, 429);
  EXPECT_EQ(requests[2].status, 200);
  EXPECT_GE(requests[2].at - requests[1].at, 950ms);  // Retry-After: 1 honoured
  EXPECT_EQ(requests[0].Header("idempotency-key"), requests[2].Header("idempotency-key"));
  EXPECT_EQ(
      Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'delivered' AND attempts = 3"),
      1);
  EXPECT_EQ(Metric("bpmc_receiver_notifications_total", {{"result", "retried"}}), 2);
  EXPECT_EQ(Metric("bpmc_receiver_delivery_attempts_total", {{"result", "http_429"}}), 1);
  EXPECT_EQ(Metric("bpmc_receiver_delivery_attempts_total", {{"result", "http_5xx"}}), 1);
  EXPECT_EQ(Metric("bpmc_receiver_delivery_latency_seconds"), 1);
  // Nothing is left to send: stopping now cannot have cut a second delivery short.
  deliverer_->Stop();
  EXPECT_EQ(hook->AcceptedCount(), 1u);
  EXPECT_EQ(Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'queued'"), 0);
}

TEST_F(DeliveryTest, NetworkErrorsAreRetried) {
  // Nothing listens at first; the recorder comes up on that port later.
  const int port = bpmc::testing::FreePort();
  StartDeliverer(
      MustParse("hook: {type: webhook, url: \"http://127.0.0.1:" + std::to_string(port) + "/in\"}",
                "{max_attempts: 50, initial_backoff_seconds: 0.05, max_backoff_seconds: 0.1}"));
  Enqueue({{"hook", "", MakeAlert("A")}});
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Metric("bpmc_receiver_delivery_attempts_total", {{"result", "network"}}) >= 2;
      },
      kDeadline));
  EXPECT_EQ(Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'queued'"), 1);
}

TEST_F(DeliveryTest, OtherClientErrorsFailAtOnce) {
  auto hook = HttpRecorder::Webhook();
  hook->Script({{410, "channel_is_archived", "text/plain", {}}});
  StartDeliverer(MustParse(HookConfig(*hook), kFastRetries));
  Enqueue({{"hook", "", MakeAlert("A")}});
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Metric("bpmc_receiver_notifications_total", {{"result", "failed"}}) == 1;
      },
      kDeadline));
  EXPECT_EQ(hook->Requests().size(), 1u);
  EXPECT_EQ(
      Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'failed' AND attempts = 1"
             " AND last_error LIKE 'http_4xx http 410%'"),
      1);
}

TEST_F(DeliveryTest, GivesUpAfterTheLastAttempt) {
  auto hook = HttpRecorder::Webhook();
  hook->SetDefault({503, "unavailable", "text/plain", {}});
  StartDeliverer(
      MustParse(HookConfig(*hook),
                "{max_attempts: 3, initial_backoff_seconds: 0.02, max_backoff_seconds: 0.05}"));
  Enqueue({{"hook", "", MakeAlert("A")}});
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Metric("bpmc_receiver_notifications_total", {{"result", "failed"}}) == 1;
      },
      kDeadline));
  EXPECT_EQ(hook->Requests().size(), 3u);
  EXPECT_EQ(Metric("bpmc_receiver_notifications_total", {{"result", "retried"}}), 2);
  EXPECT_EQ(
      Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'failed' AND attempts = 3"),
      1);
}

TEST_F(DeliveryTest, StormOf200IsBundledUnderTheSlackRateLimit) {
  auto slack = HttpRecorder::Slack();
  slack->LimitRate(1, 800ms);  // Slack's ~1/s per hook, lenient for scheduling jitter
  StartDeliverer(MustParse("slack: {type: slack, url: \"" + slack->Url("/services/T/B/X") +
                           "\", max_bundle: 100}"));
  // The storm arrives as four webhooks of 50 alerts.
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<OutboxEntry> entries;
    for (int i = batch * 50; i < batch * 50 + 50; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "storm-%03d", i);
      entries.push_back({"slack", "", MakeAlert(name)});
    }
    Enqueue(entries);
  }
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'delivered'") == 200;
      },
      kDeadline));
  deliverer_->Stop();
  std::map<std::string, int> seen;
  for (const auto& r : slack->Accepted()) {
    const std::string text = Json::parse(r.body)["text"];
    for (size_t pos = 0; (pos = text.find("*storm-", pos)) != std::string::npos; ++pos) {
      seen[text.substr(pos + 1, 9)]++;
    }
  }
  EXPECT_EQ(seen.size(), 200u);
  for (const auto& [name, count] : seen) EXPECT_EQ(count, 1) << name;
  RecordProperty("slack_messages", static_cast<int>(slack->AcceptedCount()));
  EXPECT_LE(slack->AcceptedCount(), 5u);
  EXPECT_GE(Metric("bpmc_receiver_bundles_total"), 2);
  EXPECT_EQ(Metric("bpmc_receiver_bundled_notifications_total") +
                (slack->AcceptedCount() - Metric("bpmc_receiver_bundles_total")),
            200);
  // We kept to the limit: the peer never had to refuse.
  EXPECT_EQ(slack->Requests().size(), slack->AcceptedCount());
}

// The dead versions left by sent rows are vacuumed by the deliverer itself, not
// left to autovacuum's minute-long naptime (docs/BENCHMARKS.md, receiver (c)).
TEST_F(DeliveryTest, TheOutboxIsVacuumedAfterManyChangedRows) {
  auto hook = HttpRecorder::Webhook();
  StartDeliverer(MustParse(HookConfig(*hook, ", rate_limit: none")), 1, /*vacuum_after_rows=*/10);
  std::vector<OutboxEntry> entries;
  for (int i = 0; i < 30; ++i)
    entries.push_back({"hook", "", MakeAlert("vac-" + std::to_string(i))});
  Enqueue(entries);
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'delivered'") == 30;
      },
      kDeadline));
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Metric("bpmc_receiver_outbox_vacuums_total", {{"result", "ok"}}) >= 1;
      },
      kDeadline));
  EXPECT_EQ(Metric("bpmc_receiver_outbox_vacuums_total", {{"result", "error"}}), 0);
  // PostgreSQL publishes its statistics with a delay of up to a second.
  EXPECT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Scalar(
                   "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = "
                   "'notification_outbox'") >= 1;
      },
      kDeadline));
  EXPECT_EQ(DeliveredKeys(*hook).size(), 30u);
}

TEST_F(DeliveryTest, EmailPerPersonWithBundling) {
  recorders::SmtpRecorder smtp;
  StartDeliverer(MustParse("mail: {type: email, smtp: {url: \"" + smtp.Url() +
                           "\", starttls: none}, from: alerts@bpmc.example,"
                           " to: [a@bpmc.example, b@bpmc.example],"
                           " rate_limit: {messages: 1, per_seconds: 0.5}}"));
  std::vector<OutboxEntry> entries;
  NotifierConfig config = MustParse(
      "mail: {type: email, smtp: {url: \"smtp://x\", starttls: none},"
      " from: a@b, to: [a@bpmc.example, b@bpmc.example]}");
  for (const char* name : {"A", "B", "C"}) {
    for (const auto& to : Destinations(config, "mail"))
      entries.push_back({"mail", to, MakeAlert(name)});
  }
  Enqueue(entries);
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'delivered'") == 6;
      },
      kDeadline));
  std::map<std::string, int> per_person;
  for (const auto& m : smtp.Accepted()) {
    ASSERT_EQ(m.to.size(), 1u);
    per_person[m.to[0]]++;
    EXPECT_EQ(recorders::ParseMail(m.data).Header("subject"),
              "[BPMC] 3 alerts: 3 firing, 0 resolved");
  }
  // Three alerts at once for one person: one bundled mail each.
  EXPECT_EQ(per_person, (std::map<std::string, int>{{"a@bpmc.example", 1}, {"b@bpmc.example", 1}}));
}

TEST_F(DeliveryTest, ResolutionFollowsTheTriggerInOrder) {
  auto pd = HttpRecorder::PagerDuty();
  test::SetTestSecrets();
  StartDeliverer(MustParse("pd: {type: pagerduty, url: \"" + pd->Url("/v2/enqueue") +
                           "\", routing_key_env: BPMC_TEST_PD_KEY}"));
  Enqueue({{"pd", "", MakeAlert("Down")}});
  Enqueue({{"pd", "", MakeAlert("Down", "resolved")}, {"pd", "", MakeAlert("Other")}});
  ASSERT_TRUE(pd->WaitAccepted(3, kDeadline));
  const auto got = pd->Accepted();
  EXPECT_EQ(Json::parse(got[0].body)["event_action"], "trigger");
  EXPECT_EQ(Json::parse(got[1].body)["event_action"], "resolve");
  EXPECT_EQ(Json::parse(got[1].body)["dedup_key"], "fp-Down");
  EXPECT_EQ(Json::parse(got[2].body)["dedup_key"], "fp-Other");  // never bundled
}

TEST_F(DeliveryTest, EnqueueDoesNotWaitForASendInProgress) {
  auto hook = HttpRecorder::Webhook();
  hook->HoldNext();
  StartDeliverer(MustParse(HookConfig(*hook)));
  Enqueue({{"hook", "", MakeAlert("A")}});
  ASSERT_TRUE(hook->WaitHeld(kDeadline));  // the destination row is locked now
  const auto start = std::chrono::steady_clock::now();
  Enqueue({{"hook", "", MakeAlert("B")}, {"hook", "", MakeAlert("A")}});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  hook->Release({200, "ok", "text/plain", {}});
  ASSERT_TRUE(hook->WaitAccepted(2, kDeadline));
  EXPECT_EQ(DeliveredKeys(*hook), (std::map<std::string, int>{{"fp-A", 1}, {"fp-B", 1}}));
}

TEST_F(DeliveryTest, UnknownChannelsStayQueuedAndAreCounted) {
  auto hook = HttpRecorder::Webhook();
  StartDeliverer(MustParse(HookConfig(*hook)));
  Enqueue({{"removed-channel", "", MakeAlert("A")}, {"hook", "", MakeAlert("B")}});
  ASSERT_TRUE(hook->WaitAccepted(1, kDeadline));
  ASSERT_TRUE(
      bpmc::testing::WaitFor([&] { return Metric("bpmc_receiver_queue_depth") == 1; }, kDeadline));
  EXPECT_GE(Metric("bpmc_receiver_oldest_queued_seconds"), 0);
  EXPECT_EQ(Scalar("SELECT count(*) FROM notification_outbox WHERE channel = 'removed-channel'"
                   " AND state = 'queued' AND attempts = 0"),
            1);
}

TEST_F(DeliveryTest, TwoDeliverersShareTheQueueWithoutDoubleSends) {
  auto hook = HttpRecorder::Webhook();
  const NotifierConfig config =
      MustParse(HookConfig(*hook, ", rate_limit: none") + "\n" + "hook2: {type: webhook, url: \"" +
                hook->Url("/in2") + "\"}");
  StartDeliverer(config, 3);
  prometheus::Registry other_registry;
  Deliverer::Options options;
  options.database_url = url_;
  options.threads = 3;
  Deliverer other(options, config, *http_, *mailer_, SystemClock::Get(), other_registry);
  other.Start();
  for (int batch = 0; batch < 5; ++batch) {
    std::vector<OutboxEntry> entries;
    for (int i = 0; i < 20; ++i) {
      const std::string name = "x" + std::to_string(batch * 20 + i);
      entries.push_back({i % 2 ? "hook" : "hook2", "", MakeAlert(name)});
    }
    Enqueue(entries);
    other.Wake();
  }
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'delivered'") == 100;
      },
      kDeadline));
  other.Stop();
  const auto keys = DeliveredKeys(*hook);
  EXPECT_EQ(keys.size(), 100u);
  for (const auto& [key, count] : keys) EXPECT_EQ(count, 1) << key;
}

// With fakes in place of the network: the whole message is one attempt.
TEST_F(DeliveryTest, MultiPartSmsIsRetriedAsAWhole) {
  auto fake = std::make_unique<testing_fakes::FakeHttpClient>();
  fake->Script(
      {testing_fakes::FakeHttpClient::Status(200), testing_fakes::FakeHttpClient::Status(503)});
  auto* http = fake.get();
  http_ = std::move(fake);
  StartDeliverer(
      MustParse("sms: {type: sms, url: \"http://127.0.0.1:1/sms\", to: [\"+1\"], max_parts: 2,"
                " rate_limit: none}",
                kFastRetries));
  AlertView a = MakeAlert("Long");
  a.summary = std::string(200, 'x');
  Enqueue({{"sms", "+1", a}});
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Metric("bpmc_receiver_notifications_total", {{"result", "delivered"}}) == 1;
      },
      kDeadline));
  const auto requests = http->Requests();
  ASSERT_EQ(requests.size(), 4u);  // part 1, part 2 (503), then both again
  EXPECT_EQ(requests[0].body, requests[2].body);
  EXPECT_EQ(requests[1].body, requests[3].body);
  EXPECT_NE(requests[0].body, requests[1].body);
  EXPECT_EQ(Scalar("SELECT attempts FROM notification_outbox"), 2);
}

TEST_F(DeliveryTest, TransientSmtpRepliesAreRetried) {
  auto fake = std::make_unique<testing_fakes::FakeMailer>();
  MailResult busy;
  busy.smtp_code = 451;
  busy.transport_error = 55;  // CURLE_SEND_ERROR
  MailResult rejected;
  rejected.smtp_code = 550;
  rejected.transport_error = 55;
  fake->Script({busy, MailResult{}, rejected});
  auto* mailer = fake.get();
  mailer_ = std::move(fake);
  StartDeliverer(
      MustParse("mail: {type: email, smtp: {url: \"smtp://127.0.0.1:1\", starttls: none},"
                " from: a@b.example, to: [x@b.example], rate_limit: none}",
                kFastRetries));
  Enqueue({{"mail", "x@b.example", MakeAlert("A")}});
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Metric("bpmc_receiver_notifications_total", {{"result", "delivered"}}) == 1;
      },
      kDeadline));
  Enqueue({{"mail", "x@b.example", MakeAlert("B")}});
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Metric("bpmc_receiver_notifications_total", {{"result", "failed"}}) == 1;
      },
      kDeadline));
  EXPECT_EQ(mailer->Messages().size(), 3u);
  EXPECT_EQ(Metric("bpmc_receiver_delivery_attempts_total", {{"result", "smtp_4xx"}}), 1);
  EXPECT_EQ(Metric("bpmc_receiver_delivery_attempts_total", {{"result", "smtp_5xx"}}), 1);
}

// A measurement, not a check (run with --gtest_also_run_disabled_tests): 1,000
// alerts a second for 5 s to one webhook with the default limit (20/s, bundles of
// up to 100); prints enqueue → first attempt p50/p99.
// NOTIFIER_MEASURE_CHANNEL_KEYS adds keys to the channel, e.g. ", rate_limit: none".
TEST_F(DeliveryTest, DISABLED_FirstAttemptLatencyAt1000AlertsPerSecond) {
  auto hook = HttpRecorder::Webhook();
  const char* extra = std::getenv("NOTIFIER_MEASURE_CHANNEL_KEYS");
  StartDeliverer(MustParse(HookConfig(*hook, extra ? extra : "")));
  pqxx::connection producer(url_);
  const auto start = std::chrono::steady_clock::now();
  for (int tick = 0; tick < 250; ++tick) {  // 20 ms ticks of 20 alerts
    std::vector<OutboxEntry> entries;
    for (int i = 0; i < 20; ++i)
      entries.push_back({"hook", "", MakeAlert("t" + std::to_string(tick * 20 + i))});
    pqxx::work txn(producer);
    notifier::Enqueue(txn, entries);
    txn.commit();
    deliverer_->Wake();
    std::this_thread::sleep_until(start + (tick + 1) * 20ms);
  }
  const bool drained = bpmc::testing::WaitFor(
      [&] {
        return Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'delivered'") == 5000;
      },
      60s);
  for (const auto& family : registry_.Collect()) {
    if (family.name == "bpmc_receiver_delivery_attempt_seconds") {
      const auto& h = family.metric.at(0).histogram;
      std::printf("attempts: %llu, mean %.2f ms\n", static_cast<unsigned long long>(h.sample_count),
                  h.sample_sum / static_cast<double>(h.sample_count) * 1000);
    }
  }
  ASSERT_TRUE(drained);
  pqxx::connection conn(url_);
  pqxx::work txn(conn);
  const auto r = txn.exec(
      "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), percentile_cont(0.99) WITHIN GROUP "
      "(ORDER BY x),"
      " count(DISTINCT message_id) FROM (SELECT extract(epoch FROM first_attempt_at - created_at) "
      "* 1000 AS x,"
      " message_id FROM notification_outbox) t");
  std::printf("enqueue -> first attempt: p50 %.1f ms, p99 %.1f ms, %lld messages for 5000 alerts\n",
              r[0][0].as<double>(), r[0][1].as<double>(), r[0][2].as<long long>());
  const auto span = txn.exec(
      "SELECT extract(epoch FROM max(created_at) - min(created_at)), extract(epoch FROM "
      "max(done_at) - min(created_at)),"
      " avg(bundle_size), max(bundle_size) FROM notification_outbox");
  std::printf("enqueued over %.2f s, delivered by %.2f s, bundle avg %.1f max %d\n",
              span[0][0].as<double>(), span[0][1].as<double>(), span[0][2].as<double>(),
              span[0][3].as<int>());
}

// --- Crashes: the deliverer runs in a child process that we kill -9. ---

class CrashTest : public DeliveryTest {
 protected:
  std::unique_ptr<bpmc::testing::Process> StartWorker(const std::string& channels_yaml) {
    const std::string path =
        ::testing::TempDir() + "/notifier_worker_" + std::to_string(getpid()) + ".yaml";
    std::ofstream(path) << "channels:\n  " << channels_yaml << "\ndelivery: " << kFastRetries
                        << "\n";
    auto p = std::make_unique<bpmc::testing::Process>(std::vector<std::string>{
        bpmc::testing::BinPath("notifier-test-worker"), "--config", path, "--database-url", url_});
    EXPECT_TRUE(bpmc::testing::WaitFor(
        [&] { return p->Stdout().find("ready") != std::string::npos; }, kDeadline))
        << p->Stderr();
    return p;
  }

  std::vector<OutboxEntry> Alerts(int n) {
    std::vector<OutboxEntry> entries;
    for (int i = 0; i < n; ++i) entries.push_back({"hook", "", MakeAlert("k" + std::to_string(i))});
    return entries;
  }
};

TEST_F(CrashTest, KillDashNineWhileSendingLosesNothingAndSendsNothingTwice) {
  auto hook = HttpRecorder::Webhook();
  Enqueue(Alerts(30));  // all queued before any worker runs
  for (int crash = 0; crash < 2; ++crash) {
    const size_t before = hook->AcceptedCount();
    auto worker = StartWorker(HookConfig(*hook));
    ASSERT_TRUE(hook->WaitAccepted(before + 5, kDeadline));
    hook->HoldNext();  // the next message is in flight when the process dies
    ASSERT_TRUE(hook->WaitHeld(kDeadline));
    worker->Signal(SIGKILL);
    EXPECT_EQ(worker->Wait(10s), 128 + SIGKILL);
    hook->Release({0, "", "text/plain", {}});  // the answer never reached the sender
  }
  auto worker = StartWorker(HookConfig(*hook));
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'delivered'") == 30;
      },
      kDeadline));
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(10s), 0) << worker->Stderr();
  const auto keys = DeliveredKeys(*hook);
  EXPECT_EQ(keys.size(), 30u);
  for (const auto& [key, count] : keys) EXPECT_EQ(count, 1) << key;
  int cut_off = 0;
  for (const auto& r : hook->Requests()) cut_off += r.status == 0 ? 1 : 0;
  EXPECT_EQ(cut_off, 2);  // the messages in flight at the kills, sent again after the restart
}

TEST_F(CrashTest, KillDashNineAtRandomMomentsLosesNothing) {
  // Without a hold the kill can land after the peer accepted a message but
  // before its row was marked: that message goes again (at least once), with
  // the same Idempotency-Key. So: everything arrives, and at most one message
  // (one key; it may carry a bundle of alerts) is resent per kill.
  auto hook = HttpRecorder::Webhook();
  Enqueue(Alerts(60));
  constexpr int kKills = 3;
  for (int crash = 0; crash < kKills; ++crash) {
    const size_t before = hook->AcceptedCount();
    auto worker = StartWorker(HookConfig(*hook));
    ASSERT_TRUE(hook->WaitAccepted(before + 3 + static_cast<size_t>(crash) * 2, kDeadline));
    worker->Signal(SIGKILL);
    worker->Wait(10s);
  }
  auto worker = StartWorker(HookConfig(*hook));
  ASSERT_TRUE(bpmc::testing::WaitFor(
      [&] {
        return Scalar("SELECT count(*) FROM notification_outbox WHERE state = 'delivered'") == 60;
      },
      kDeadline));
  worker->Signal(SIGTERM);
  worker->Wait(10s);
  const auto keys = DeliveredKeys(*hook);
  EXPECT_EQ(keys.size(), 60u);
  std::map<std::string, int> sends;  // by Idempotency-Key
  for (const auto& r : hook->Accepted()) sends[r.Header("idempotency-key")]++;
  int resent_messages = 0;
  for (const auto& [key, count] : sends) resent_messages += count - 1;
  EXPECT_LE(resent_messages, kKills);
  // A resent alert always travels in a resent message.
  int resent_alerts = 0;
  for (const auto& [key, count] : keys) resent_alerts += count - 1;
  if (resent_messages == 0) EXPECT_EQ(resent_alerts, 0);
}

TEST_F(CrashTest, TemplateErrorsStopTheStart) {
  const std::string path = ::testing::TempDir() + "/notifier_bad.yaml";
  std::ofstream(path) << "channels:\n  s: {type: slack, url: \"http://127.0.0.1:1/x\","
                         " text_template: \"{{#alerts}}{{alertnam}}{{/alerts}}\"}\n";
  bpmc::testing::Process p(
      {bpmc::testing::BinPath("notifier-test-worker"), "--config", path, "--database-url", url_});
  EXPECT_EQ(p.Wait(10s), 2);
  EXPECT_NE(p.Stderr().find("channels.s.text_template: unknown name 'alertnam'"), std::string::npos)
      << p.Stderr();
}

}  // namespace
}  // namespace bpmc::notifier
