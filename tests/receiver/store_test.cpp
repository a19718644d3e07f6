// StoreWebhook against a real PostgreSQL: dedup of HA duplicates and retries,
// resolution notices to everyone notified, episodes, stale firings, sources
// without a start, and the outbox rows enqueued in the same transaction.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/time_format.h"
#include "receiver/schema.h"
#include "receiver_test_util.h"
#include "testing/pg_cluster.h"

namespace bpmc::webhook_receiver {
namespace {

using test::AmAlert;
using test::AmPayload;
using test::Firing;
using test::OutboxRows;
using test::Resolved;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
    test::Migrate(url_);
    config_ = test::MustLoad(test::TestConfigYaml());
    conn_ = std::make_unique<pqxx::connection>(url_);
  }

  // Parses, plans and stores one webhook; returns the outcome names.
  std::vector<std::string> Store(Source source, const std::string& body, int64_t now_us = kNow) {
    IntakeResult parsed = ParseWebhook(source, body);
    if (auto* e = std::get_if<IntakeError>(&parsed)) {
      ADD_FAILURE() << e->field << ": " << e->message;
      return {};
    }
    const Webhook& w = std::get<Webhook>(parsed);
    std::vector<PlannedAlert> planned;
    for (const IncomingAlert& a : w.alerts)
      planned.push_back(PlanAlert(a, config_.routes, config_.notifier, config_.default_severity));
    StoreResult r = StoreWebhook(*conn_, w, body, planned, now_us, [this](const std::string& ch) {
      return notifier::HasChannel(config_.notifier, ch);
    });
    std::vector<std::string> out;
    for (AlertOutcome o : r.outcomes) out.push_back(OutcomeName(o));
    return out;
  }

  static constexpr int64_t kNow = 1'800'000'000'000'000;
  std::string url_;
  ReceiverConfig config_;
  std::unique_ptr<pqxx::connection> conn_;
};

using Outcomes = std::vector<std::string>;

TEST_F(StoreTest, FiringThenResolvedReachesTheSameRecipients) {
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({Firing("HighErrorRate")})),
            Outcomes{"notified"});
  EXPECT_EQ(OutboxRows(url_),
            (std::vector<std::string>{"oncall-sms|+70000000001|firing|fp-HighErrorRate",
                                      "oncall-sms|+70000000002|firing|fp-HighErrorRate",
                                      "ops-slack||firing|fp-HighErrorRate"}));
  // The resolution goes to everyone notified, even if the labels no longer route there.
  AmAlert resolved = Resolved("HighErrorRate", "2026-11-25T10:30:00Z");
  resolved.severity = "info";
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({resolved})), Outcomes{"notified"});
  EXPECT_EQ(
      test::Count(url_, "SELECT count(*) FROM notification_outbox WHERE alert_status = 'resolved'"),
      3);

  pqxx::nontransaction txn(*conn_);
  const auto state = txn.exec(
      "SELECT status, ends_at = '2026-11-25T10:30:00Z', escalation_policies::text FROM "
      "receiver_alerts");
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0][0].as<std::string>(), "resolved");
  EXPECT_TRUE(state[0][1].as<bool>());
  EXPECT_EQ(state[0][2].as<std::string>(), "{}") << "the resolution routed nowhere";
  const auto alert = txn.exec(
      "SELECT alert->>'starts_at', alert->>'ends_at', alert->>'severity', routing::text"
      " FROM receiver_alert_events WHERE status = 'firing'");
  EXPECT_EQ(alert[0][0].as<std::string>(), "2026-11-25T10:00:00Z");
  EXPECT_EQ(alert[0][1].as<std::string>(), "");
  EXPECT_EQ(alert[0][2].as<std::string>(), "critical");
  EXPECT_NE(alert[0][3].as<std::string>().find("primary"), std::string::npos);
}

// Which state changes the incident engine looks at (docs/INCIDENTS.md): firings routed to an
// escalation policy or about a connector, and every resolution; a plain notification opens none.
TEST_F(StoreTest, OnlyEscalatedOrConnectorFiringsAndResolutionsAwaitTheIncidentEngine) {
  AmAlert connector = Firing("ConnectorDown", "warning");
  connector.labels["connector"] = "crm-connector";
  EXPECT_EQ(Store(Source::kAlertmanager,
                  AmPayload({Firing("Paged"), Firing("Plain", "warning"), connector})),
            (Outcomes{"notified", "notified", "notified"}));
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({Resolved("Plain")})), Outcomes{"notified"});
  pqxx::nontransaction txn(*conn_);
  const auto rows = txn.exec(
      "SELECT alert->>'alertname' || '/' || status || '=' || incident_pending::text"
      " FROM receiver_alert_events ORDER BY alert->>'alertname', status");
  std::vector<std::string> got;
  for (const auto& r : rows) got.push_back(r[0].as<std::string>());
  EXPECT_EQ(got, (std::vector<std::string>{"ConnectorDown/firing=true", "Paged/firing=true",
                                           "Plain/firing=false", "Plain/resolved=true"}));
}

TEST_F(StoreTest, RepeatedWebhooksNotifyOncePerStateChange) {
  const std::string body = AmPayload({Firing("A"), Firing("B", "warning")});
  EXPECT_EQ(Store(Source::kAlertmanager, body), (Outcomes{"notified", "notified"}));
  // The HA peer's copy, a retry, and Alertmanager's repeat_interval re-send.
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Store(Source::kAlertmanager, body), (Outcomes{"duplicate", "duplicate"}));
  EXPECT_EQ(OutboxRows(url_).size(), 4u);  // A: slack + 2 sms; B: slack
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_webhooks"), 4)
      << "every webhook is kept";
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_alert_events"), 2);
}

TEST_F(StoreTest, ConcurrentCopiesFromAnHaPairNotifyOnce) {
  // 8 connections store the same 20-alert webhook at once, alerts in different orders.
  std::vector<AmAlert> alerts;
  for (int i = 0; i < 20; ++i) alerts.push_back(test::Firing("Alert" + std::to_string(i)));
  std::atomic<int> notified{0}, duplicates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    std::vector<AmAlert> mine = alerts;
    if (t % 2) std::reverse(mine.begin(), mine.end());
    threads.emplace_back([&, mine] {
      pqxx::connection conn(url_);
      const std::string body = AmPayload(mine);
      const Webhook w = std::get<Webhook>(ParseAlertmanager(body));
      std::vector<PlannedAlert> planned;
      for (const IncomingAlert& a : w.alerts)
        planned.push_back(PlanAlert(a, config_.routes, config_.notifier, "warning"));
      const StoreResult r =
          StoreWebhook(conn, w, body, planned, kNow, [](const std::string&) { return true; });
      for (AlertOutcome o : r.outcomes) (o == AlertOutcome::kNotified ? notified : duplicates)++;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(notified.load(), 20);
  EXPECT_EQ(duplicates.load(), 7 * 20);
  EXPECT_EQ(OutboxRows(url_).size(), 20u * 3);
}

TEST_F(StoreTest, NewEpisodeNotifiesAgain) {
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({Firing("A")})), Outcomes{"notified"});
  AmAlert resolved = Resolved("A", "2026-11-25T10:05:00Z");
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({resolved})), Outcomes{"notified"});
  AmAlert again = Firing("A", "critical", "2026-11-25T11:00:00Z");
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({again})), Outcomes{"notified"});
  EXPECT_EQ(
      test::Count(url_, "SELECT count(*) FROM notification_outbox WHERE alert_status = 'firing'"),
      6);
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_alerts WHERE status = 'firing'"), 1);
}

TEST_F(StoreTest, FiringAfterItsResolutionIsStale) {
  // A retried firing arrives after the resolution (both from one episode).
  AmAlert resolved = Resolved("A", "2026-11-25T10:05:00Z");
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({resolved})), Outcomes{"not_notified"});
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({Firing("A")})), Outcomes{"stale"});
  EXPECT_TRUE(OutboxRows(url_).empty());
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_alerts WHERE status = 'resolved'"), 1);
}

TEST_F(StoreTest, UnroutedAlertsAreStoredButNotifyNobody) {
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({Firing("Chatty", "info")})),
            Outcomes{"unrouted"});
  EXPECT_TRUE(OutboxRows(url_).empty());
  EXPECT_EQ(
      test::Count(url_, "SELECT count(*) FROM receiver_alert_events WHERE outcome = 'unrouted'"),
      1);
  // An unknown severity word takes default_severity (warning): Slack.
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({Firing("Odd", "bogus")})),
            Outcomes{"notified"});
  EXPECT_EQ(OutboxRows(url_), std::vector<std::string>{"ops-slack||firing|fp-Odd"});
}

TEST_F(StoreTest, ResolutionSkipsChannelsGoneFromTheConfig) {
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({Firing("A")})), Outcomes{"notified"});
  config_.notifier.channels.erase("ops-slack");  // as if removed from the file
  AmAlert resolved = Resolved("A", "2026-11-25T10:05:00Z");
  EXPECT_EQ(Store(Source::kAlertmanager, AmPayload({resolved})), Outcomes{"notified"});
  EXPECT_EQ(
      test::Count(url_, "SELECT count(*) FROM notification_outbox WHERE alert_status = 'resolved'"),
      2)
      << "the two SMS numbers, not the removed Slack channel";
}

TEST_F(StoreTest, SourcesWithoutAStartAreTrackedByDedupKey) {
  const std::string firing =
      R"({"summary":"Payments failing","severity":"critical","dedup_key":"pay-1"})";
  const std::string resolved = R"({"dedup_key":"pay-1","status":"resolved"})";
  EXPECT_EQ(Store(Source::kGeneric, firing, kNow), Outcomes{"notified"});
  EXPECT_EQ(Store(Source::kGeneric, firing, kNow + 1'000'000), Outcomes{"duplicate"})
      << "still firing";
  EXPECT_EQ(Store(Source::kGeneric, resolved, kNow + 2'000'000), Outcomes{"notified"});
  EXPECT_EQ(Store(Source::kGeneric, resolved, kNow + 3'000'000), Outcomes{"duplicate"})
      << "not firing";
  EXPECT_EQ(Store(Source::kGeneric, firing, kNow + 4'000'000), Outcomes{"notified"})
      << "a new episode";
  EXPECT_EQ(
      test::Count(url_, "SELECT count(*) FROM notification_outbox WHERE alert_status = 'firing'"),
      6);
  EXPECT_EQ(
      test::Count(url_, "SELECT count(*) FROM notification_outbox WHERE alert_status = 'resolved'"),
      3);
  // The resolution carries the episode's start (the first firing's receipt time).
  {
    pqxx::nontransaction txn(*conn_);
    const auto r = txn.exec(
        "SELECT DISTINCT alert->>'starts_at' FROM notification_outbox WHERE alert_status = "
        "'resolved'");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0][0].as<std::string>(), FormatRfc3339Micros(kNow).substr(0, 19) + "Z");
  }
  // A resolution of a key never seen: nobody to tell.
  EXPECT_EQ(Store(Source::kGeneric, R"({"dedup_key":"unknown","status":"resolved"})"),
            Outcomes{"duplicate"});
}

TEST_F(StoreTest, OnePayloadMayFireAndResolveOneKey) {
  const std::string body = R"([{"summary":"s","dedup_key":"k","severity":"warning"},
                               {"summary":"s","dedup_key":"k","severity":"warning"},
                               {"dedup_key":"k","status":"resolved"}])";
  EXPECT_EQ(Store(Source::kGeneric, body), (Outcomes{"notified", "duplicate", "notified"}));
  EXPECT_EQ(OutboxRows(url_),
            (std::vector<std::string>{"ops-slack||firing|k", "ops-slack||resolved|k"}));
}

TEST_F(StoreTest, OtherSourcesPageThroughTheSameRoutes) {
  EXPECT_EQ(Store(Source::kSentry, R"({"id":"77","project":"p","level":"fatal","message":"boom",
                                       "url":"https://sentry/77"})"),
            Outcomes{"notified"});
  EXPECT_EQ(
      Store(Source::kDatadog, R"({"alert_id":"5","alert_transition":"Warn","alert_type":"warning",
                                        "title":"disk"})"),
      Outcomes{"notified"});
  EXPECT_EQ(Store(Source::kNewRelic, R"({"id":"nr1","state":"ACTIVATED","priority":"CRITICAL",
                                         "title":"t","createdAt":1700000000000})"),
            Outcomes{"notified"});
  EXPECT_EQ(Store(Source::kNewRelic, R"({"id":"nr1","state":"CLOSED","priority":"CRITICAL",
                                         "title":"t","createdAt":1700000000000})"),
            Outcomes{"notified"});
  EXPECT_EQ(
      test::Count(url_, "SELECT count(*) FROM notification_outbox WHERE dedup_key = 'sentry:77'"),
      3);
  EXPECT_EQ(
      test::Count(url_, "SELECT count(*) FROM notification_outbox WHERE dedup_key = 'datadog:5'"),
      1);
  EXPECT_EQ(test::Count(
                url_, "SELECT count(*) FROM notification_outbox WHERE dedup_key = 'newrelic:nr1'"),
            6);
}

TEST_F(StoreTest, ABatchBehavesLikeItsWebhooksOneAfterAnother) {
  // Group commit: an HA copy, a resolution and a new alert in one transaction.
  const std::vector<std::string> bodies = {AmPayload({Firing("A")}), AmPayload({Firing("A")}),
                                           AmPayload({Resolved("A", "2026-11-25T10:05:00Z")}),
                                           AmPayload({Firing("B", "warning")})};
  std::vector<Webhook> webhooks;
  std::vector<std::vector<PlannedAlert>> planned;
  for (const std::string& b : bodies) {
    webhooks.push_back(std::get<Webhook>(ParseAlertmanager(b)));
    planned.emplace_back();
    for (const IncomingAlert& a : webhooks.back().alerts)
      planned.back().push_back(PlanAlert(a, config_.routes, config_.notifier, "warning"));
  }
  std::vector<WebhookToStore> jobs;
  for (size_t i = 0; i < bodies.size(); ++i)
    jobs.push_back({&webhooks[i], bodies[i], &planned[i], kNow});
  const std::vector<StoreResult> r =
      StoreWebhooks(*conn_, jobs, [](const std::string&) { return true; });
  ASSERT_EQ(r.size(), 4u);
  const AlertOutcome want[] = {AlertOutcome::kNotified, AlertOutcome::kDuplicate,
                               AlertOutcome::kNotified, AlertOutcome::kNotified};
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    ASSERT_EQ(r[i].outcomes.size(), 1u);
    EXPECT_EQ(r[i].outcomes[0], want[i]);
    if (i > 0) {
      EXPECT_GT(r[i].webhook_id, r[i - 1].webhook_id) << "ids follow the batch order";
    }
  }
  EXPECT_EQ(r[0].enqueued.at("oncall-sms"), 2);
  EXPECT_TRUE(r[1].enqueued.empty());
  EXPECT_EQ(r[2].enqueued.at("ops-slack"), 1) << "the resolution reaches the firing's recipients";
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM notification_outbox"), 7);
  pqxx::nontransaction txn(*conn_);
  const auto rows = txn.exec(
      "SELECT e.dedup_key, e.status FROM receiver_alert_events e"
      " JOIN receiver_webhooks w ON w.id = e.webhook_id ORDER BY w.id");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1][1].as<std::string>(), "resolved");
}

TEST_F(StoreTest, MigrationsAreRecordedPerModule) {
  const std::string sql = "SELECT count(*) FROM schema_versions WHERE module = 'receiver'";
  EXPECT_EQ(test::Count(url_, sql), static_cast<int64_t>(Schema().migrations.size()));
  // The receiver applies the modules of the libraries it links, and no others.
  EXPECT_EQ(test::Count(url_, "SELECT count(DISTINCT module) FROM schema_versions"),
            static_cast<int64_t>(DatabaseSchema().size()));
  test::Migrate(url_);  // idempotent
  EXPECT_EQ(test::Count(url_, sql), static_cast<int64_t>(Schema().migrations.size()));
}

TEST_F(StoreTest, RetentionDeletesOldWebhooksOnly) {
  Store(Source::kAlertmanager, AmPayload({Firing("A")}));
  pqxx::nontransaction(*conn_).exec(
      "UPDATE receiver_webhooks SET received_at = now() - interval '40 days'");
  Store(Source::kAlertmanager, AmPayload({Firing("B")}));
  EXPECT_EQ(DeleteOldWebhooks(*conn_, 30), 1);
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_webhooks"), 1);
  EXPECT_EQ(test::Count(url_, "SELECT count(*) FROM receiver_alert_events"), 2);
}

}  // namespace
}  // namespace bpmc::webhook_receiver
