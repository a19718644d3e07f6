// Notices to platform users through the running receiver, against a real
// PostgreSQL (the receiver's migrations plus the exporter's users, subscriptions
// and payments tables): maintenance windows muting pages and noticing exactly the
// subscribers before and after, connector problems noticed once per subscriber
// per incident (and once on resolution), payment failures, feed isolation
// between customers, and the rate limits. Pages go to a loopback Slack recorder;
// notice e-mails to a FakeMailer through the real outbox and Deliverer.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <thread>
#include <tuple>

#include "common/ids.h"
#include "common/migrate.h"
#include "common/pg_statements.h"
#include "common/time_format.h"
#include "http/raw_client.h"
#include "identity/api_keys.h"
#include "notices/store.h"
#include "notices/texts.h"
#include "notifier_testing/fakes.h"
#include "receiver/telegram_bot_api.h"
#include "recorders/http_recorder.h"
#include "testing/pg_cluster.h"
#include "webhook_receiver/service.h"
#include "webhook_receiver/store.h"

namespace bpmc::notices {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using webhook_receiver::ReceiverConfig;
using webhook_receiver::Service;

std::string NewToken() { return "bpmcu_" + Base64UrlEncode(RandomBytes(32)); }

std::string Iso(std::chrono::system_clock::time_point t) {
  return FormatRfc3339Micros(
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}

// One Alertmanager v4 alert with a `connector` label.
Json AmAlert(const std::string& fingerprint, const std::string& connector,
             const std::string& status = "firing") {
  return {{"status", status},
          {"labels",
           {{"alertname", "ConnectorDown"},
            {"severity", "critical"},
            {"connector", connector},
            {"instance", fingerprint}}},
          {"annotations", {{"summary", "connector " + connector + " is down"}}},
          {"startsAt", "2026-11-25T10:00:00Z"},
          {"endsAt", status == "firing" ? "0001-01-01T00:00:00Z" : "2026-11-25T10:30:00Z"},
          {"generatorURL", "http://127.0.0.1:9090/graph"},
          {"fingerprint", fingerprint}};
}

std::string AmPayload(const std::string& group_key, const std::vector<Json>& alerts) {
  Json out = {{"version", "4"},
              {"groupKey", group_key},
              {"truncatedAlerts", 0},
              {"status", alerts.at(0)["status"]},
              {"receiver", "bpmc"},
              {"groupLabels", Json::object()},
              {"commonLabels", Json::object()},
              {"commonAnnotations", Json::object()},
              {"externalURL", "http://127.0.0.1:9093"},
              {"alerts", alerts}};
  return out.dump();
}

struct Options {
  std::string extra_notices;  // more keys of `notices:`
  std::string rate_limit = "{notices: 100, per: 1h}";
  std::string api_rate_limit = "{requests: 1000, per: 1m}";
  std::string telegram_api;  // a Bot API URL: adds channel customer-tg, telegram_channel
};

const std::string kBotToken = "654321:TEST-notices_bot";

class NoticesServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
    {
      // The receiver's schema modules: identity (users, audit_log) and billing
      // (subscriptions, payments) come with it.
      pqxx::connection conn(url_);
      ApplySchema(conn, webhook_receiver::DatabaseSchema());
      for (const char* c : {"conn-1", "conn-2", "conn-3"}) identity::AddConnector(conn, c, c);
    }
    admin_ = AddUser("ops-admin", "admin", "");
    alice_ = AddUser("alice", "user", "cust-a");
    bob_ = AddUser("bob", "user", "cust-b");
    slack_ = recorders::HttpRecorder::Slack();
  }
  void TearDown() override {
    for (auto& s : services_) s->Shutdown();
  }

  std::string ConfigYaml(const Options& o) const {
    return R"(
auth: {insecure_no_auth: true}
channels:
  ops-slack:
    type: slack
    url: )" +
           slack_->Url("/slack") + R"(
    rate_limit: none
  customer-email:
    type: email
    smtp: {url: "smtp://127.0.0.1:9", starttls: none}
    from: "BPM Centr <notices@example.com>"
    to: [postmaster@example.com]
    rate_limit: none
)" +
           (o.telegram_api.empty()
                ? std::string()
                : "  customer-tg: {type: telegram, bot_token_env: BPMC_TEST_NOTICES_TG, api_url: " +
                      o.telegram_api + ", poll_timeout_seconds: 1}\n") +
           R"(delivery: {initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2}
routes:
  - name: everything
    notify: [ops-slack]
notices:
  email_channel: customer-email
  maintenance_notice_before: 1h
  connector_problem_after: 1s
  poll_interval: 100ms
  rate_limit: )" +
           o.rate_limit + R"(
  api_rate_limit: )" +
           o.api_rate_limit + "\n" +
           (o.telegram_api.empty() ? "" : "  telegram_channel: customer-tg\n") + o.extra_notices;
  }

  // Starts one more receiver on the test's database.
  Service& Start(const Options& o = {}) {
    setenv("BPMC_TEST_NOTICES_TG", kBotToken.c_str(), 1);
    ReceiverConfig config;
    auto e = webhook_receiver::LoadConfigYaml(ConfigYaml(o), &config);
    EXPECT_FALSE(e) << e->ToString();
    config.listen = "127.0.0.1:0";
    config.database_url = url_;
    config.http_threads = 4;
    webhook_receiver::ServiceDeps deps;
    deps.mailer = &mailer_;
    std::string error;
    services_.push_back(Service::Start(config, deps, &error));
    EXPECT_TRUE(services_.back()) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", services_.front()->port());
    client_->set_read_timeout(30, 0);
    return *services_.back();
  }

  void Exec(const std::string& sql) {
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    txn.exec(sql);
    txn.commit();
  }
  template <typename... Args>
  void ExecParams(const std::string& sql, Args&&... args) {
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    txn.exec_params(sql, std::forward<Args>(args)...);
    txn.commit();
  }
  int64_t Count(const std::string& sql) {
    pqxx::connection conn(url_);
    pqxx::nontransaction txn(conn);
    return txn.exec(sql)[0][0].as<int64_t>();
  }

  std::string AddUser(const std::string& name, const std::string& role,
                      const std::string& customer) {
    const std::string token = NewToken();
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    txn.exec_params(
        "INSERT INTO users (name, role, customer_id, token_hash)"
        " VALUES ($1, $2, NULLIF($3, ''), decode($4, 'hex'))",
        name, role, customer, HexEncode(Sha256(token)));
    txn.commit();
    return token;
  }
  void Subscribe(const std::string& id, const std::string& customer, const std::string& connector,
                 bool cancelled = false) {
    ExecParams(
        "INSERT INTO subscriptions (id, customer_id, connector_id, plan, trial, price_minor,"
        " currency, started_at, cancelled_at) VALUES ($1, $2, $3, 'basic', false, 1000, 'USD',"
        " now() - interval '30 days', CASE WHEN $4 THEN now() - interval '1 day' END)",
        id, customer, connector, cancelled);
  }
  void Contacts(const std::string& customer, const std::vector<std::string>& emails) {
    auto r = Send("PUT", "/api/v1/notices/contacts/" + customer, admin_,
                  Json{{"emails", emails}}.dump());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }

  httplib::Result Send(const std::string& method, const std::string& path, const std::string& token,
                       const std::string& body = "") {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    if (method == "POST") return client_->Post(path.c_str(), h, body, "application/json");
    if (method == "PUT") return client_->Put(path.c_str(), h, body, "application/json");
    if (method == "PATCH") return client_->Patch(path.c_str(), h, body, "application/json");
    if (method == "DELETE") return client_->Delete(path.c_str(), h);
    return client_->Get(path.c_str(), h);
  }
  Json Feed(const std::string& token, const std::string& query = "") {
    auto r = Send("GET", "/api/v1/notices" + query, token);
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    return Json::parse(r->body);
  }
  std::string Metrics() {
    auto r = client_->Get("/metrics");
    return r ? r->body : "";
  }

  // Mails sent so far, as "to|subject", sorted.
  std::vector<std::string> Mails() const {
    std::vector<std::string> out;
    for (const auto& m : mailer_.Messages())
      for (const auto& to : m.to) out.push_back(to + "|" + m.subject);
    std::sort(out.begin(), out.end());
    return out;
  }
  // Waits until `n` mails were sent (false at the deadline).
  bool WaitMails(size_t n, std::chrono::milliseconds timeout = 15s) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (mailer_.Messages().size() >= n) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  // Waits until `sql` counts at least `n`.
  bool WaitCount(const std::string& sql, int64_t n, std::chrono::milliseconds timeout = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Count(sql) >= n) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  // Lets the engine run several more passes (poll_interval is 100 ms): used before
  // asserting that nothing more happened.
  void SeveralPasses() { std::this_thread::sleep_for(600ms); }

  std::string url_;
  std::string admin_, alice_, bob_;
  std::unique_ptr<recorders::HttpRecorder> slack_;
  notifier::testing::FakeMailer mailer_;
  std::vector<std::unique_ptr<Service>> services_;
  std::unique_ptr<httplib::Client> client_;
};

bool Contains(const std::vector<std::string>& mails, const std::string& to,
              const std::string& text) {
  return std::any_of(mails.begin(), mails.end(), [&](const std::string& m) {
    return m.rfind(to + "|", 0) == 0 && m.find(text) != std::string::npos;
  });
}

TEST_F(NoticesServiceTest, MaintenanceWindowMutesPagesAndNoticesExactlyTheSubscribers) {
  Subscribe("s1", "cust-a", "conn-1");
  Subscribe("s2", "cust-b", "conn-2");
  Subscribe("s3", "cust-c", "conn-1", /*cancelled=*/true);
  Subscribe("s4", "cust-d", "conn-1");
  Subscribe("s5", "cust-d", "conn-1");  // two subscriptions: still one notice
  Start();
  Contacts("cust-a", {"a@example.com"});
  Contacts("cust-b", {"b@example.com"});
  Contacts("cust-c", {"c@example.com"});
  Contacts("cust-d", {"d1@example.com", "d2@example.com"});

  const auto now = std::chrono::system_clock::now();
  const Json window = {{"connectors", {"conn-1"}},
                       {"starts_at", Iso(now - 1s)},
                       {"ends_at", Iso(now + 5s)},
                       {"message", "Upgrading the conn-1 workers"}};
  auto r = Send("POST", "/api/v1/maintenance", alice_, window.dump());
  ASSERT_EQ(r->status, 403) << r->body;
  Json bad = window;
  bad["ends_at"] = Iso(now - 2s);
  r = Send("POST", "/api/v1/maintenance", admin_, bad.dump());
  ASSERT_EQ(r->status, 400);
  EXPECT_EQ(Json::parse(r->body)["field"], "ends_at");
  r = Send("POST", "/api/v1/maintenance", admin_, window.dump());
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(Json::parse(r->body)["window"]["created_by"], "ops-admin");

  // The window is on at once (it started a second ago): the conn-1 alert is stored but pages
  // nobody; conn-2 pages.
  auto am = client_->Post("/v1/alertmanager",
                          AmPayload("{}:{alertname=\"ConnectorDown\"}",
                                    {AmAlert("fp-muted", "conn-1"), AmAlert("fp-paged", "conn-2")}),
                          "application/json");
  ASSERT_EQ(am->status, 200) << am->body;
  EXPECT_EQ(Json::parse(am->body)["alerts"], (Json{{"muted", 1}, {"notified", 1}}));
  EXPECT_EQ(Count("SELECT count(*) FROM receiver_alert_events WHERE dedup_key = 'fp-muted'"
                  " AND outcome = 'muted'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM notification_outbox WHERE dedup_key = 'fp-muted'"), 0);
  EXPECT_NE(
      Metrics().find("bpmc_receiver_alerts_total{outcome=\"muted\",source=\"alertmanager\"} 1"),
      std::string::npos);

  // Advance notice: cust-a and cust-d (both addresses), nobody else.
  ASSERT_TRUE(WaitMails(3));
  std::vector<std::string> mails = Mails();
  for (const char* to : {"a@example.com", "d1@example.com", "d2@example.com"})
    EXPECT_TRUE(Contains(mails, to, "Плановые работы: conn-1")) << to;
  for (const std::string& m : mails)
    EXPECT_TRUE(m.rfind("a@", 0) == 0 || m.rfind("d1@", 0) == 0 || m.rfind("d2@", 0) == 0) << m;

  // End notice to the same customers; the window shows both notices done.
  ASSERT_TRUE(slack_->WaitAccepted(1, 10s));  // the conn-2 page
  ASSERT_TRUE(WaitMails(6));
  mails = Mails();
  ASSERT_EQ(mails.size(), 6u) << ::testing::PrintToString(mails);
  for (const char* to : {"a@example.com", "d1@example.com", "d2@example.com"})
    EXPECT_TRUE(Contains(mails, to, "Плановые работы завершены: conn-1")) << to;
  r = Send("GET", "/api/v1/maintenance", admin_);
  ASSERT_EQ(r->status, 200);
  const Json windows = Json::parse(r->body)["windows"];
  ASSERT_EQ(windows.size(), 1u);
  EXPECT_TRUE(windows[0]["advance_noticed"].get<bool>());
  EXPECT_TRUE(windows[0]["end_noticed"].get<bool>());
  const Json feed = Feed(alice_)["notices"];
  ASSERT_EQ(feed.size(), 2u);
  EXPECT_EQ(feed[0]["kind"], "maintenance_ended");
  EXPECT_EQ(feed[1]["kind"], "maintenance_scheduled");
  EXPECT_EQ(Feed(bob_)["notices"].size(), 0u);

  // After the window a conn-1 alert pages again.
  am = client_->Post("/v1/alertmanager",
                     AmPayload("{}:{alertname=\"ConnectorDown\"}", {AmAlert("fp-after", "conn-1")}),
                     "application/json");
  EXPECT_EQ(Json::parse(am->body)["alerts"], (Json{{"notified", 1}}));
  SeveralPasses();
  EXPECT_EQ(mailer_.Messages().size(), 6u);
}

TEST_F(NoticesServiceTest, ConnectorProblemNoticesEachSubscriberOnceAndOnceOnResolve) {
  Subscribe("s1", "cust-a", "conn-1");
  Subscribe("s2", "cust-b", "conn-2");
  Subscribe("s3", "cust-d", "conn-1");
  Start();
  Contacts("cust-a", {"a@example.com"});
  Contacts("cust-b", {"b@example.com"});
  Contacts("cust-d", {"d@example.com"});

  // Five alerts of one group, all for conn-1.
  std::vector<Json> alerts;
  for (int i = 0; i < 5; ++i) alerts.push_back(AmAlert("fp-" + std::to_string(i), "conn-1"));
  const std::string group = "{}:{connector=\"conn-1\"}";
  auto am = client_->Post("/v1/alertmanager", AmPayload(group, alerts), "application/json");
  ASSERT_EQ(am->status, 200) << am->body;
  const bool wired = WaitCount("SELECT count(*) FROM incidents WHERE connector = 'conn-1'", 1, 3s);
  if (!wired) {
    Exec(
        "INSERT INTO incidents (group_key, title, severity, connector, created_at)"
        " VALUES ('am:{}:{connector=\"conn-1\"}', 'ConnectorDown', 'critical', 'conn-1', now())");
  }
  RecordProperty("incidents_engine", wired ? "wired" : "incident inserted by the test");
  // A muted incident of conn-2 (opened during maintenance): no notice.
  Exec(
      "INSERT INTO incidents (group_key, title, severity, connector, muted, created_at)"
      " VALUES ('g-muted', 'x', 'critical', 'conn-2', true, now() - interval '1 hour')");
  ASSERT_EQ(Count("SELECT count(*) FROM incidents WHERE connector = 'conn-1'"), 1);

  ASSERT_TRUE(WaitMails(2));
  SeveralPasses();
  std::vector<std::string> mails = Mails();
  ASSERT_EQ(mails.size(), 2u) << ::testing::PrintToString(mails);
  EXPECT_TRUE(Contains(mails, "a@example.com", "Проблема с коннектором conn-1"));
  EXPECT_TRUE(Contains(mails, "d@example.com", "Проблема с коннектором conn-1"));
  EXPECT_EQ(Count("SELECT count(*) FROM notices WHERE kind = 'connector_problem'"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM incident_timeline WHERE kind = 'notice'"
                  " AND detail = '{\"notice\": \"connector_problem\", \"customers\": 2}'"),
            1);

  // Resolution: every alert resolves (the incidents library resolves the incident).
  std::vector<Json> resolved;
  for (int i = 0; i < 5; ++i)
    resolved.push_back(AmAlert("fp-" + std::to_string(i), "conn-1", "resolved"));
  am = client_->Post("/v1/alertmanager", AmPayload(group, resolved), "application/json");
  ASSERT_EQ(am->status, 200) << am->body;
  if (!wired)
    Exec(
        "UPDATE incidents SET status = 'resolved', resolved_at = now() WHERE connector = 'conn-1'");
  ASSERT_TRUE(WaitMails(4));
  SeveralPasses();
  mails = Mails();
  ASSERT_EQ(mails.size(), 4u) << ::testing::PrintToString(mails);
  EXPECT_TRUE(Contains(mails, "a@example.com", "Коннектор conn-1 снова работает"));
  EXPECT_TRUE(Contains(mails, "d@example.com", "Коннектор conn-1 снова работает"));
  EXPECT_EQ(Feed(bob_)["notices"].size(), 0u);
  const Json feed = Feed(alice_)["notices"];
  ASSERT_EQ(feed.size(), 2u);
  EXPECT_EQ(feed[0]["kind"], "connector_resolved");
  EXPECT_EQ(feed[0]["connectors"], Json({"conn-1"}));
  EXPECT_EQ(Count("SELECT count(*) FROM incident_timeline WHERE kind = 'notice'"), 2);
}

// Issue 16 §6: an incident still unresolved connector_problem_after (1 s here) after it
// opened is noticed even when acknowledged; each customer reads it in its locale and
// time zone, the connector named by its display name (identity's connector_names); the
// resolution follows. The timer is the incident's created_at: an incident older than the
// delay when the receivers start is noticed at once, and two receivers notice it once.
TEST_F(NoticesServiceTest, AcknowledgedButUnresolvedIncidentIsNoticedInEachCustomersWords) {
  Subscribe("s1", "cust-b", "conn-2");
  Subscribe("s2", "cust-e", "conn-2");
  Subscribe("s3", "cust-a", "conn-1");
  Exec("UPDATE connectors SET name = 'ERP Коннектор' WHERE id = 'conn-2'");
  Exec("INSERT INTO notice_contacts (customer_id, address) VALUES ('cust-b', 'b@example.com')");
  // Opened (and acknowledged) before any receiver ran: the delay is already over.
  Exec(
      "INSERT INTO incidents (group_key, title, severity, connector, status, acknowledged_at,"
      " created_at) VALUES ('g-old', 'x', 'critical', 'conn-2', 'acknowledged', now(),"
      " '2026-12-07T12:00:00Z')");
  Start();
  Start();  // a second receiver on the same database
  auto r = Send("PUT", "/api/v1/notices/preferences/cust-e", admin_,
                R"({"locale":"en","time_zone":"Europe/Berlin"})");
  ASSERT_EQ(r->status, 200) << r->body;
  r = Send("GET", "/api/v1/notices/preferences/cust-e", admin_);
  EXPECT_EQ(Json::parse(r->body)["time_zone"], "Europe/Berlin");
  EXPECT_EQ(Json::parse(Send("GET", "/api/v1/notices/preferences/cust-b", admin_)->body)["locale"],
            "ru");
  ASSERT_TRUE(WaitCount("SELECT count(*) FROM notices WHERE dedup_key LIKE 'incident:%'", 2));
  // cust-e's notice may have been written before its preferences: check cust-b's first.
  Json feed = Feed(bob_)["notices"];
  ASSERT_EQ(feed.size(), 1u);
  EXPECT_EQ(feed[0]["title"], "Проблема с коннектором ERP Коннектор");
  EXPECT_NE(feed[0]["body"].get<std::string>().find(
                "С 7 декабря 2026, 15:00 (MSK) коннектор ERP Коннектор работает с ошибками"),
            std::string::npos)
      << feed[0]["body"];

  // A new acknowledged incident: nothing before the delay, then one notice per subscriber.
  Exec(
      "INSERT INTO incidents (group_key, title, severity, connector, status, acknowledged_at)"
      " VALUES ('g-acked', 'x', 'critical', 'conn-2', 'acknowledged', now())");
  const std::string id =
      std::to_string(Count("SELECT id FROM incidents WHERE group_key = 'g-acked'"));
  EXPECT_EQ(Count("SELECT count(*) FROM notices WHERE dedup_key = 'incident:" + id + ":problem'"),
            0);
  ASSERT_TRUE(
      WaitCount("SELECT count(*) FROM notices WHERE dedup_key = 'incident:" + id + ":problem'", 2));
  SeveralPasses();
  EXPECT_EQ(Count("SELECT count(*) FROM notices WHERE kind = 'connector_problem'"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM notices WHERE customer_id = 'cust-a'"), 0);
  const int64_t created_us = Count(
      "SELECT (extract(epoch FROM created_at) * 1000000)::bigint FROM incidents WHERE id = " + id);
  Json admin_feed = Feed(admin_, "?customer=cust-e")["notices"];
  ASSERT_EQ(admin_feed.size(), 2u);
  EXPECT_EQ(admin_feed[0]["title"], "Problem with connector ERP Коннектор");
  EXPECT_NE(admin_feed[0]["body"].get<std::string>().find(
                "since " + FormatLocalTime(created_us, "en", "Europe/Berlin")),
            std::string::npos)
      << admin_feed[0]["body"];
  EXPECT_NE(admin_feed[0]["body"].get<std::string>().find("(CET)"), std::string::npos);
  feed = Feed(bob_)["notices"];
  ASSERT_EQ(feed.size(), 2u);
  EXPECT_NE(
      feed[0]["body"].get<std::string>().find(FormatLocalTime(created_us, "ru", "Europe/Moscow")),
      std::string::npos);
  ASSERT_TRUE(WaitMails(2));  // cust-b has an address: both of its notices are mailed
  EXPECT_TRUE(Contains(Mails(), "b@example.com", "Проблема с коннектором ERP Коннектор"));

  // Resolved: the update follows, once, in each customer's words.
  Exec("UPDATE incidents SET status = 'resolved', resolved_at = now() WHERE id = " + id);
  ASSERT_TRUE(WaitCount(
      "SELECT count(*) FROM notices WHERE dedup_key = 'incident:" + id + ":resolved'", 2));
  SeveralPasses();
  EXPECT_EQ(Count("SELECT count(*) FROM notices WHERE kind = 'connector_resolved'"), 2);
  EXPECT_EQ(Feed(bob_)["notices"][0]["title"], "Коннектор ERP Коннектор снова работает");
  EXPECT_EQ(Feed(admin_, "?customer=cust-e")["notices"][0]["title"],
            "Connector ERP Коннектор works again");
  ASSERT_TRUE(WaitMails(3));
  EXPECT_TRUE(Contains(Mails(), "b@example.com", "Коннектор ERP Коннектор снова работает"));
}

TEST_F(NoticesServiceTest, InMaintenanceAtTheWindowsEdges) {
  {
    pqxx::connection conn(url_);
    ApplySchema(conn, webhook_receiver::DatabaseSchema());
  }
  Exec(
      "INSERT INTO maintenance_windows (connectors, starts_at, ends_at, message, created_by)"
      " VALUES ('{c1,c2}', '2026-11-26T10:00:00Z', '2026-11-26T12:00:00Z', 'm', 'test')");
  const struct {
    std::map<std::string, std::string> labels;
    const char* at;
    bool muted;
  } cases[] = {
      {{{"connector", "c1"}}, "2026-11-26T09:59:59.999999Z", false},
      {{{"connector", "c1"}}, "2026-11-26T10:00:00Z", true},  // starts_at is inside
      {{{"connector", "c2"}}, "2026-11-26T11:59:59.999999Z", true},
      {{{"connector", "c1"}}, "2026-11-26T12:00:00Z", false},  // ends_at is outside
      {{{"connector", "c3"}}, "2026-11-26T11:00:00Z", false},
      {{{"connector", ""}}, "2026-11-26T11:00:00Z", false},
      {{{"service", "c1"}}, "2026-11-26T11:00:00Z", false},  // only the connector label counts
      {{}, "2026-11-26T11:00:00Z", false},
  };
  pqxx::connection conn(url_);
  for (const auto& c : cases) {
    pqxx::work txn(conn);
    EXPECT_EQ(InMaintenance(txn, c.labels, *ParseRfc3339Micros(c.at)), c.muted)
        << c.at << " " << ::testing::PrintToString(c.labels);
  }
}

TEST_F(NoticesServiceTest, ConfigErrorsNameTheNoticesKey) {
  const struct {
    std::string from, to, key;
  } cases[] = {
      {"email_channel: customer-email", "email_channel: ops-slack", "notices.email_channel"},
      {"email_channel: customer-email", "email_channel: nowhere", "notices.email_channel"},
      {"poll_interval: 100ms", "poll_interval: often", "notices.poll_interval"},
      {"poll_interval: 100ms", "poll_interval: 100ms\n  colour: blue", "notices.colour"},
  };
  for (const auto& c : cases) {
    std::string yaml = ConfigYaml({});
    yaml.replace(yaml.find(c.from), c.from.size(), c.to);
    ReceiverConfig config;
    auto e = webhook_receiver::LoadConfigYaml(yaml, &config);
    ASSERT_TRUE(e) << c.to;
    EXPECT_EQ(e->key, c.key) << e->ToString();
  }
}

TEST_F(NoticesServiceTest, FailedPaymentNoticesThatCustomerOnceEvenWithTwoReceivers) {
  Subscribe("s1", "cust-a", "conn-1");
  Start();
  Start();  // a second receiver on the same database
  Contacts("cust-a", {"a@example.com"});
  Contacts("cust-b", {"b@example.com"});
  Exec(
      "INSERT INTO payments (id, customer_id, connector_id, amount_minor, currency, status,"
      "                      failure_reason, occurred_at) VALUES"
      " ('p-ok', 'cust-a', 'conn-1', 1250, 'USD', 'succeeded', NULL, now()),"
      " ('p-fail', 'cust-a', 'conn-1', 1250, 'USD', 'failed', 'card_declined', now()),"
      " ('p-old', 'cust-b', 'conn-1', 900, 'USD', 'failed', 'expired', now() - interval '3 days')");
  ASSERT_TRUE(WaitMails(1));
  SeveralPasses();
  std::vector<std::string> mails = Mails();
  ASSERT_EQ(mails.size(), 1u) << ::testing::PrintToString(mails);
  EXPECT_TRUE(Contains(mails, "a@example.com", "Не прошёл платёж за коннектор conn-1"));
  const Json feed = Feed(alice_)["notices"];
  ASSERT_EQ(feed.size(), 1u);
  EXPECT_NE(feed[0]["body"].get<std::string>().find("12,50\u00a0$"), std::string::npos);
  EXPECT_EQ(Feed(bob_)["notices"].size(), 0u);  // before the cursor and the lookback

  Exec(
      "INSERT INTO payments (id, customer_id, connector_id, amount_minor, currency, status,"
      "                      failure_reason, occurred_at)"
      " VALUES ('p-fail-2', 'cust-a', 'conn-1', 1250, 'USD', 'failed', NULL, now())");
  ASSERT_TRUE(WaitMails(2));
  SeveralPasses();
  EXPECT_EQ(mailer_.Messages().size(), 2u);
  EXPECT_EQ(Count("SELECT count(*) FROM notices"), 2);
}

// Behind PgBouncer in transaction mode (docs/SCALING.md "PgBouncer") a pass is
// guarded by the notice_pass_lease row, not by a session advisory lock that would
// stay on whichever server connection took it.
TEST_F(NoticesServiceTest, TransactionPoolingGuardsThePassWithALeaseRow) {
  SetPgPooling(PgPooling::kTransaction);
  struct Restore {
    ~Restore() { SetPgPooling(PgPooling::kSession); }
  } restore;
  pqxx::connection conn(url_);
  notices::NoticesConfig config;
  config.enabled = true;
  const int64_t now = SystemClock::Get().NowMicros();
  Exec("INSERT INTO notice_pass_lease VALUES ('pass', 'other', now() + interval '1 minute')");
  EXPECT_TRUE(notices::RunNoticeStep(conn, config, now).skipped) << "a live lease was ignored";
  Exec("UPDATE notice_pass_lease SET expires_at = now() - interval '1 second'");
  EXPECT_FALSE(notices::RunNoticeStep(conn, config, now).skipped) << "an expired lease held";
  // Taken by this pass and released at its end.
  EXPECT_EQ(Count("SELECT count(*) FROM notice_pass_lease WHERE holder <> 'other'"
                  " AND expires_at < clock_timestamp()"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), 0);
  EXPECT_FALSE(notices::RunNoticeStep(conn, config, now).skipped);
}

TEST_F(NoticesServiceTest, FeedShowsEachCustomerOnlyItsOwnNotices) {
  Start();
  Exec(
      "INSERT INTO notices (customer_id, kind, connectors, title, body, dedup_key) VALUES"
      " ('cust-a', 'payment_failed', '{conn-1}', 'A1', 'a', 'k1'),"
      " ('cust-b', 'payment_failed', '{conn-secret-b}', 'B1 conn-secret-b', 'b', 'k2'),"
      " ('cust-a', 'connector_problem', '{conn-1}', 'A2', 'a', 'k3')");
  auto r = Send("GET", "/api/v1/notices", alice_);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->body.find("cust-b"), std::string::npos);
  EXPECT_EQ(r->body.find("conn-secret-b"), std::string::npos);
  EXPECT_EQ(r->body.find("customer_id"), std::string::npos);
  Json feed = Json::parse(r->body)["notices"];
  ASSERT_EQ(feed.size(), 2u);
  EXPECT_EQ(feed[0]["title"], "A2");
  EXPECT_EQ(feed[1]["title"], "A1");

  EXPECT_EQ(Send("GET", "/api/v1/notices?customer=cust-b", alice_)->status, 403);
  EXPECT_EQ(Feed(bob_)["notices"].size(), 1u);
  const Json admin_b = Feed(admin_, "?customer=cust-b")["notices"];
  ASSERT_EQ(admin_b.size(), 1u);
  EXPECT_EQ(admin_b[0]["customer_id"], "cust-b");
  EXPECT_EQ(Feed(admin_)["notices"].size(), 3u);

  // Paging, newest first.
  const Json page1 = Feed(alice_, "?limit=1");
  ASSERT_EQ(page1["notices"].size(), 1u);
  const Json page2 = Feed(alice_, "?limit=1&before=" + page1["next_before"].dump());
  ASSERT_EQ(page2["notices"].size(), 1u);
  EXPECT_EQ(page2["notices"][0]["title"], "A1");
  EXPECT_EQ(Send("GET", "/api/v1/notices?limit=x", alice_)->status, 400);

  // Authentication and roles.
  EXPECT_EQ(Send("GET", "/api/v1/notices", "")->status, 401);
  EXPECT_EQ(Send("GET", "/api/v1/notices", NewToken())->status, 401);
  const std::string manager = AddUser("mia", "manager", "");
  EXPECT_EQ(Send("GET", "/api/v1/notices", manager)->status, 403);
  EXPECT_EQ(Send("GET", "/api/v1/maintenance", alice_)->status, 403);
  EXPECT_EQ(Send("PUT", "/api/v1/notices/contacts/cust-a", alice_, R"({"emails":[]})")->status,
            403);
  Exec("UPDATE users SET disabled_at = now() WHERE name = 'bob'");
  std::this_thread::sleep_for(1100ms);  // PlatformUsers caches a lookup for 1 s
  EXPECT_EQ(Send("GET", "/api/v1/notices", bob_)->status, 401);
}

// GET /api/v1/notices/status: a customer's connectors (live subscriptions only), by
// display name, with their open incidents and maintenance; nothing of other customers.
TEST_F(NoticesServiceTest, StatusShowsACustomerOnlyItsOwnConnectors) {
  Subscribe("s1", "cust-a", "conn-1");
  Subscribe("s2", "cust-a", "conn-3");
  Subscribe("s3", "cust-a", "conn-2", /*cancelled=*/true);
  Subscribe("s4", "cust-b", "conn-2");
  Exec("UPDATE connectors SET name = 'CRM Коннектор' WHERE id = 'conn-1'");
  Start();
  Exec(
      "INSERT INTO incidents (group_key, title, severity, connector, status, acknowledged_at)"
      " VALUES ('g-1', 'internal title', 'critical', 'conn-1', 'acknowledged', now())");
  Exec(
      "INSERT INTO incidents (group_key, title, severity, connector, created_at)"
      " VALUES ('g-2', 'secret of b', 'critical', 'conn-2', now())");
  Exec(
      "INSERT INTO incidents (group_key, title, severity, connector, muted, created_at)"
      " VALUES ('g-3', 'x', 'critical', 'conn-3', true, now())");
  const auto now = std::chrono::system_clock::now();
  for (const auto& [conns, from, to] :
       {std::tuple<Json, std::chrono::seconds, std::chrono::seconds>{{"conn-3"}, -60s, 3600s},
        {{"conn-2", "conn-3"}, 7200s, 9000s},
        {{"conn-1"}, -7200s, -3600s}}) {  // over: not shown
    Exec(
        "INSERT INTO maintenance_windows (connectors, starts_at, ends_at, message, created_by)"
        " VALUES (ARRAY(SELECT json_array_elements_text('" +
        conns.dump() + "'::json)), '" + Iso(now + from) + "', '" + Iso(now + to) +
        "', 'upgrade', 'ops-admin')");
  }
  auto r = Send("GET", "/api/v1/notices/status", alice_);
  ASSERT_EQ(r->status, 200) << r->body;
  const Json a = Json::parse(r->body);
  EXPECT_EQ(a["customer"], "cust-a");
  ASSERT_EQ(a["connectors"].size(), 2u) << a.dump();
  const Json& c1 = a["connectors"][0];
  EXPECT_EQ(c1["id"], "conn-1");
  EXPECT_EQ(c1["name"], "CRM Коннектор");
  EXPECT_EQ(c1["status"], "problem");  // acknowledged is still a problem
  ASSERT_EQ(c1["incidents"].size(), 1u);
  EXPECT_EQ(c1["incidents"][0]["status"], "acknowledged");
  EXPECT_TRUE(c1["maintenance"].empty());
  const Json& c3 = a["connectors"][1];
  EXPECT_EQ(c3["id"], "conn-3");
  EXPECT_EQ(c3["status"], "maintenance");  // the muted incident is not shown
  EXPECT_TRUE(c3["incidents"].empty());
  ASSERT_EQ(c3["maintenance"].size(), 2u);
  EXPECT_EQ(c3["maintenance"][0]["in_progress"], true);
  EXPECT_EQ(c3["maintenance"][1]["in_progress"], false);
  for (const char* leak : {"conn-2", "secret of b", "internal title", "cust-b"})
    EXPECT_EQ(r->body.find(leak), std::string::npos) << leak;

  EXPECT_EQ(Send("GET", "/api/v1/notices/status?customer=cust-b", alice_)->status, 403);
  const Json b = Json::parse(Send("GET", "/api/v1/notices/status", bob_)->body);
  EXPECT_EQ(b["customer"], "cust-b");
  EXPECT_EQ(b["connectors"][0]["status"], "problem");
  auto admin = Send("GET", "/api/v1/notices/status?customer=cust-a", admin_);
  ASSERT_EQ(admin->status, 200);
  EXPECT_EQ(Json::parse(admin->body)["connectors"].size(), 2u);
  auto unnamed = Send("GET", "/api/v1/notices/status", admin_);
  EXPECT_EQ(unnamed->status, 400);
  EXPECT_EQ(Json::parse(unnamed->body)["field"], "customer");
  auto long_name =
      Send("GET", "/api/v1/notices/status?customer=" + std::string(10000, 'x'), admin_);
  EXPECT_EQ(long_name->status, 400);
  EXPECT_EQ(long_name->body.find(std::string(200, 'x')), std::string::npos);  // not echoed
  EXPECT_EQ(Send("GET", "/api/v1/notices/status", AddUser("mia", "manager", ""))->status, 403);
  EXPECT_EQ(Send("GET", "/api/v1/notices/status", "")->status, 401);
  EXPECT_EQ(Send("POST", "/api/v1/notices/status", alice_, "{}")->status, 405);
}

TEST_F(NoticesServiceTest, RateLimitsPerUserAndPerCustomer) {
  Options o;
  o.rate_limit = "{notices: 2, per: 1h}";
  o.api_rate_limit = "{requests: 3, per: 1m}";
  Subscribe("s1", "cust-a", "conn-1");
  Start(o);
  {
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    txn.exec(
        "INSERT INTO notice_contacts (customer_id, address) VALUES ('cust-a', 'a@example.com')");
    txn.commit();
  }
  // E-mails: at most 2 per customer per hour; the third notice is in the feed only.
  Exec(
      "INSERT INTO payments (id, customer_id, connector_id, amount_minor, currency, status,"
      "                      occurred_at) VALUES"
      " ('p1', 'cust-a', 'conn-1', 100, 'USD', 'failed', now()),"
      " ('p2', 'cust-a', 'conn-1', 200, 'USD', 'failed', now()),"
      " ('p3', 'cust-a', 'conn-1', 300, 'USD', 'failed', now())");
  ASSERT_TRUE(WaitCount("SELECT count(*) FROM notices", 3));
  ASSERT_TRUE(WaitMails(2));
  SeveralPasses();
  EXPECT_EQ(mailer_.Messages().size(), 2u);
  EXPECT_EQ(Count("SELECT count(*) FROM notices WHERE email_skipped = 'rate_limited'"), 1);
  EXPECT_NE(Metrics().find("bpmc_receiver_notice_emails_total{result=\"rate_limited\"} 1"),
            std::string::npos);

  // API: 3 requests a minute per user.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Send("GET", "/api/v1/notices", alice_)->status, 200) << i;
  auto r = Send("GET", "/api/v1/notices", alice_);
  ASSERT_EQ(r->status, 429);
  EXPECT_FALSE(r->get_header_value("Retry-After").empty());
  EXPECT_EQ(Send("GET", "/api/v1/notices", bob_)->status, 200);  // another user
}

// Issue 16 §4: a window edited after its advance notice tells its subscribers of the
// change (in their locale, Moscow time); a customer whose connector left the window is
// told it is cancelled for it; cancelling tells the rest. Refusals store nothing; every
// change is audited.
TEST_F(NoticesServiceTest, EditedAndCancelledWindowTellsItsSubscribers) {
  Subscribe("s1", "cust-a", "conn-1");
  Subscribe("s2", "cust-b", "conn-2");
  Exec("UPDATE connectors SET name = 'CRM Коннектор' WHERE id = 'conn-1'");
  Start();
  const auto now = std::chrono::system_clock::now();
  const auto t0 = std::chrono::time_point_cast<std::chrono::minutes>(now + 30min);
  auto r = Send("POST", "/api/v1/maintenance", admin_,
                Json{{"connectors", {"conn-1"}},
                     {"starts_at", Iso(t0)},
                     {"ends_at", Iso(t0 + 1h)},
                     {"message", "Обновление"}}
                    .dump());
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = std::to_string(Json::parse(r->body)["window"]["id"].get<int64_t>());
  const std::string item = "/api/v1/maintenance/" + id;
  ASSERT_TRUE(WaitCount("SELECT count(*) FROM notices WHERE kind = 'maintenance_scheduled'", 1));

  // Refusals: nothing changes.
  const struct {
    std::string method, path, token, body;
    int status;
    std::string field;
  } refused[] = {
      {"PATCH", item, alice_, R"({"message":"x"})", 403, ""},
      {"PATCH", item, "", R"({"message":"x"})", 401, "Authorization"},
      {"PATCH", "/api/v1/maintenance/999999", admin_, R"({"message":"x"})", 404, "id"},
      {"PATCH", "/api/v1/maintenance/abc", admin_, R"({"message":"x"})", 404, "id"},
      {"PATCH", item, admin_, R"({"ends_at":"2000-01-01T00:00:00Z"})", 400, "ends_at"},
      {"PATCH", item, admin_, R"({"connectors":["bad id"]})", 400, "connectors[0]"},
      {"PATCH", item, admin_, R"({"colour":"red"})", 400, "colour"},
      {"PATCH", item, admin_, "{}", 400, ""},
      {"PATCH", item, admin_, "[", 400, ""},
      {"DELETE", item, bob_, "", 403, ""},
      {"DELETE", "/api/v1/maintenance/999999", admin_, "", 404, "id"},
  };
  for (const auto& c : refused) {
    auto got = Send(c.method, c.path, c.token, c.body);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->status, c.status)
        << c.method << " " << c.path << " " << c.body << " " << got->body;
    if (!c.field.empty()) EXPECT_EQ(Json::parse(got->body)["field"], c.field) << c.body;
  }
  EXPECT_EQ(Count("SELECT revision FROM maintenance_windows WHERE id = " + id), 0);

  // Edit: one hour longer, a new message. cust-a is told, in Russian, in Moscow time.
  r = Send("PATCH", item, admin_,
           Json{{"ends_at", Iso(t0 + 2h)}, {"message", "Обновление, на час дольше"}}.dump());
  ASSERT_EQ(r->status, 200) << r->body;
  const Json edited = Json::parse(r->body)["window"];
  EXPECT_EQ(edited["revision"], 1);
  EXPECT_EQ(edited["updated_by"], "ops-admin");
  EXPECT_EQ(edited["starts_at"], Iso(t0));
  ASSERT_TRUE(WaitCount("SELECT count(*) FROM notices WHERE kind = 'maintenance_changed'", 1));
  Json feed = Feed(alice_)["notices"];
  ASSERT_EQ(feed.size(), 2u);
  EXPECT_EQ(feed[0]["kind"], "maintenance_changed");
  EXPECT_EQ(feed[0]["title"], "Плановые работы изменены: CRM Коннектор");
  const auto us = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  };
  const std::string moscow = "с " + FormatLocalTime(us(t0), "ru", "Europe/Moscow") + " до " +
                             FormatLocalTime(us(t0 + 2h), "ru", "Europe/Moscow");
  EXPECT_NE(feed[0]["body"].get<std::string>().find(moscow), std::string::npos) << feed[0]["body"];
  EXPECT_NE(feed[0]["body"].get<std::string>().find("(MSK)"), std::string::npos);
  EXPECT_NE(feed[0]["body"].get<std::string>().find("на час дольше"), std::string::npos);
  EXPECT_EQ(Feed(bob_)["notices"].size(), 0u);

  // Move the window to conn-2 (PUT, as the console sends it): cust-b is told of the
  // changed window, cust-a that it is cancelled for it.
  r = Send("PUT", item, admin_, R"({"connectors":["conn-2"]})");
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(WaitCount("SELECT count(*) FROM notices WHERE kind = 'maintenance_cancelled'", 1));
  ASSERT_TRUE(WaitCount("SELECT count(*) FROM notices WHERE kind = 'maintenance_changed'", 2));
  feed = Feed(alice_)["notices"];
  ASSERT_EQ(feed.size(), 3u);
  EXPECT_EQ(feed[0]["kind"], "maintenance_cancelled");
  EXPECT_EQ(feed[0]["title"], "Плановые работы отменены: CRM Коннектор");
  EXPECT_NE(feed[0]["body"].get<std::string>().find(moscow), std::string::npos) << feed[0]["body"];
  feed = Feed(bob_)["notices"];
  ASSERT_EQ(feed.size(), 1u);
  EXPECT_EQ(feed[0]["kind"], "maintenance_changed");

  // Cancel: cust-b is told; cust-a (already told) is not told again; no end notice later.
  r = Send("DELETE", item, admin_);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(Json::parse(r->body)["window"]["cancelled"].get<bool>());
  EXPECT_EQ(Json::parse(r->body)["window"]["cancelled_by"], "ops-admin");
  ASSERT_TRUE(WaitCount("SELECT count(*) FROM notices WHERE kind = 'maintenance_cancelled'", 2));
  SeveralPasses();
  EXPECT_EQ(Feed(bob_)["notices"][0]["kind"], "maintenance_cancelled");
  EXPECT_EQ(Feed(alice_)["notices"].size(), 3u);
  EXPECT_EQ(Count("SELECT count(*) FROM notices WHERE kind LIKE 'maintenance%'"), 5);
  // A cancelled window can be neither edited nor cancelled again.
  r = Send("PATCH", item, admin_, R"({"message":"x"})");
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_EQ(Send("DELETE", item, admin_)->status, 409);
  r = Send("GET", "/api/v1/maintenance", admin_);
  EXPECT_TRUE(Json::parse(r->body)["windows"][0]["cancelled"].get<bool>());
  // Audited: who changed what, allowed or not.
  EXPECT_EQ(Count("SELECT count(*) FROM audit_log WHERE endpoint = '" + item +
                  "' AND method IN ('PATCH', 'PUT') AND allowed"),
            2);
  EXPECT_EQ(Count("SELECT count(*) FROM audit_log WHERE endpoint = '" + item +
                  "' AND method = 'DELETE' AND allowed"),
            1);
  EXPECT_GE(Count("SELECT count(*) FROM audit_log WHERE endpoint = '" + item +
                  "' AND NOT allowed AND status = 400"),
            5);
}

TEST_F(NoticesServiceTest, CancelledWindowMutesNothing) {
  Start();
  const auto now = std::chrono::system_clock::now();
  auto r = Send("POST", "/api/v1/maintenance", admin_,
                Json{{"connectors", {"conn-1"}},
                     {"starts_at", Iso(now - 1min)},
                     {"ends_at", Iso(now + 1h)},
                     {"message", "m"}}
                    .dump());
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string id = std::to_string(Json::parse(r->body)["window"]["id"].get<int64_t>());
  pqxx::connection conn(url_);
  const int64_t at = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  {
    pqxx::work txn(conn);
    EXPECT_TRUE(InMaintenance(txn, {{"connector", "conn-1"}}, at));
  }
  ASSERT_EQ(Send("DELETE", "/api/v1/maintenance/" + id, admin_)->status, 200);
  pqxx::work txn(conn);
  EXPECT_FALSE(InMaintenance(txn, {{"connector", "conn-1"}}, at));
}

// The new and changed routes against a careless or hostile client: no credentials
// (401 before any body byte), a 10 MB body (413 from its Content-Length), JSON 5,000
// deep and 10,000-character strings (400 naming the field, nothing stored).
TEST_F(NoticesServiceTest, NewRoutesRefuseHostileInput) {
  Start();
  const auto now = std::chrono::system_clock::now();
  auto r = Send("POST", "/api/v1/maintenance", admin_,
                Json{{"connectors", {"conn-1"}},
                     {"starts_at", Iso(now + 2h)},
                     {"ends_at", Iso(now + 3h)},
                     {"message", "m"}}
                    .dump());
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string item =
      "/api/v1/maintenance/" + std::to_string(Json::parse(r->body)["window"]["id"].get<int64_t>());
  const std::string prefs = "/api/v1/notices/preferences/cust-a";
  const int port = services_.front()->port();
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"PATCH", item}, {"PUT", item}, {"DELETE", item}, {"PUT", prefs}}) {
    SCOPED_TRACE(method + " " + path);
    {  // No credentials, 10 MB announced: 401 without reading it.
      bpmc::testing::RawConnection raw(port);
      raw.Send(method + " " + path +
               " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: 10485760\r\n\r\n{");
      EXPECT_EQ(raw.ReadResponse(5s), 401);
    }
    {  // Credentials, 10 MB announced: 413 without reading it.
      bpmc::testing::RawConnection raw(port);
      raw.Send(method + " " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin_ +
               "\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{");
      EXPECT_EQ(raw.ReadResponse(5s), 413);
    }
  }
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  const std::string long_text(10000, 'x');
  const struct {
    std::string method, path, body, field;
  } bad[] = {
      {"PATCH", item, deep, ""},
      {"PATCH", item, "{\"message\":" + deep + "}", ""},
      {"PUT", prefs, deep, ""},
      {"PUT", prefs, "{\"locale\":" + deep + "}", ""},
      {"PATCH", item, Json{{"message", long_text}}.dump(), "message"},
      {"PATCH", item, Json{{"connectors", {long_text}}}.dump(), "connectors[0]"},
      {"PATCH", item, Json{{"starts_at", long_text}}.dump(), "starts_at"},
      {"PATCH", item, Json{{long_text, 1}}.dump(), ""},
      {"PUT", prefs, Json{{"time_zone", long_text}}.dump(), "time_zone"},
      {"PUT", prefs, Json{{"locale", long_text}}.dump(), "locale"},
      {"PUT", prefs, Json{{long_text, "x"}}.dump(), ""},
  };
  for (const auto& b : bad) {
    auto got = Send(b.method, b.path, admin_, b.body);
    ASSERT_TRUE(got) << b.path;
    EXPECT_EQ(got->status, 400) << b.method << " " << b.body.substr(0, 60) << " " << got->body;
    EXPECT_LT(got->body.size(), 1000u) << "the error does not echo the input";
    if (!b.field.empty())
      EXPECT_EQ(Json::parse(got->body)["field"], b.field) << b.body.substr(0, 60);
  }
  // 10,000-character ids in the path: 404, not a crash.
  EXPECT_EQ(Send("PATCH", "/api/v1/maintenance/" + long_text, admin_, "{}")->status, 404);
  EXPECT_EQ(Send("PUT", "/api/v1/notices/preferences/" + long_text, admin_, "{}")->status, 404);
  EXPECT_EQ(Count("SELECT revision FROM maintenance_windows"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM notice_preferences"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM maintenance_windows WHERE cancelled_at IS NOT NULL"), 0);
}

// Customers' notices by Telegram (docs/NOTICES.md "Telegram"): a customer user gets a
// link code, "/start <code>" in a private chat with the bot adds the chat as a telegram
// contact (the bot answers in the customer's locale), an advance maintenance notice
// arrives there in Russian naming the connector by its display name (title bold, text
// HTML-escaped); an unknown or used code is refused and binds nothing; "/stop" removes it.
TEST_F(NoticesServiceTest, ACustomerLinksTelegramAndGetsAMaintenanceNoticeThere) {
  bpmc::testing::BotApi bot(kBotToken);
  Exec("UPDATE connectors SET name = 'ERP Коннектор' WHERE id = 'conn-1'");
  Subscribe("s1", "cust-a", "conn-1");
  Options o;
  o.telegram_api = bot.Url();
  Start(o);
  auto start = [&](int64_t user, const std::string& text) {
    bot.PushUpdate({{"message",
                     {{"message_id", 1},
                      {"from", {{"id", user}, {"is_bot", false}, {"first_name", "A"}}},
                      {"chat", {{"id", user}, {"type", "private"}}},
                      {"text", text}}}});
  };
  auto replies = [&](int64_t chat) {
    std::vector<std::string> out;
    for (const auto& c : bot.Calls("sendMessage"))
      if (c.body["chat_id"] == chat || c.body["chat_id"] == std::to_string(chat))
        out.push_back(c.body["text"].get<std::string>());
    return out;
  };
  auto wait_replies = [&](int64_t chat, size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (replies(chat).size() >= n) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };

  // alice (role user, customer cust-a) gets a code for her own customer.
  auto r = Send("POST", "/api/v1/notices/telegram-link-code", alice_, "{}");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const Json code = Json::parse(r->body);
  EXPECT_EQ(code["customer_id"], "cust-a");
  EXPECT_EQ(code["code"].get<std::string>().size(), 16u);
  EXPECT_EQ(Count("SELECT count(*) FROM telegram_link_codes WHERE customer_id = 'cust-a'"
                  " AND person IS NULL"),
            1);

  // An unknown code: refused, nothing bound.
  start(7001, "/start nosuchcode0000000");
  ASSERT_TRUE(wait_replies(7001, 1));
  EXPECT_NE(replies(7001)[0].find("unknown, used"), std::string::npos) << replies(7001)[0];
  EXPECT_EQ(Count("SELECT count(*) FROM notice_contacts"), 0);

  // The code binds the chat; the bot answers in Russian (cust-a has no preferences).
  start(7001, code["command"].get<std::string>());
  ASSERT_TRUE(wait_replies(7001, 2));
  EXPECT_NE(replies(7001)[1].find("Готово"), std::string::npos) << replies(7001)[1];
  EXPECT_EQ(Count("SELECT count(*) FROM notice_contacts WHERE customer_id = 'cust-a'"
                  " AND channel = 'telegram' AND address = '7001'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM telegram_bindings"), 0) << "a customer is no person";

  // The same code again, from another chat: used, refused.
  start(7002, code["command"].get<std::string>());
  ASSERT_TRUE(wait_replies(7002, 1));
  EXPECT_NE(replies(7002)[0].find("unknown, used"), std::string::npos) << replies(7002)[0];
  EXPECT_EQ(Count("SELECT count(*) FROM notice_contacts"), 1);

  // Maintenance of conn-1 within the advance-notice lead time: the notice arrives in the chat.
  const auto now = std::chrono::system_clock::now();
  r = Send("POST", "/api/v1/maintenance", admin_,
           Json{{"connectors", {"conn-1"}},
                {"starts_at", Iso(now + 30min)},
                {"ends_at", Iso(now + 90min)},
                {"message", "Обновление <v2> & \"ещё\""}}
               .dump());
  ASSERT_EQ(r->status, 201) << r->body;
  ASSERT_TRUE(wait_replies(7001, 3)) << [&] {
    pqxx::connection conn(url_);
    pqxx::nontransaction txn(conn);
    std::string out;
    for (const auto& row : txn.exec("SELECT channel || ' ' || destination || ' ' || state || ' ' ||"
                                    " coalesce(last_error, '') FROM notification_outbox"))
      out += row[0].as<std::string>() + "\n";
    for (const auto& row :
         txn.exec("SELECT kind || ' ' || coalesce(email_skipped, '') FROM notices"))
      out += row[0].as<std::string>() + "\n";
    return out;
  }();
  const std::string notice = replies(7001)[2];
  EXPECT_EQ(notice.rfind("<b>Плановые работы: ERP Коннектор</b>\n\n", 0), 0u) << notice;
  EXPECT_NE(notice.find("Обновление &lt;v2&gt; &amp; &quot;ещё&quot;"), std::string::npos)
      << notice;
  for (const auto& c : bot.Calls("sendMessage"))
    if (c.body["text"] == notice) EXPECT_EQ(c.body["parse_mode"], "HTML");

  // "/stop" in the chat: no longer a contact.
  start(7001, "/stop");
  ASSERT_TRUE(wait_replies(7001, 4));
  EXPECT_NE(replies(7001)[3].find("отключены"), std::string::npos) << replies(7001)[3];
  EXPECT_EQ(Count("SELECT count(*) FROM notice_contacts"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM audit_log WHERE endpoint = 'telegram:start'"), 3);
}

// POST /api/v1/notices/telegram-link-code against a careless or hostile client, and
// roles: nothing stored on any refusal.
TEST_F(NoticesServiceTest, TelegramLinkCodeRouteRefusesHostileInput) {
  bpmc::testing::BotApi bot(kBotToken);
  Options o;
  o.telegram_api = bot.Url();
  Start(o);
  const std::string path = "/api/v1/notices/telegram-link-code";
  const int port = services_.front()->port();
  {  // No credentials, 10 MB announced: 401 without reading it.
    bpmc::testing::RawConnection raw(port);
    raw.Send("POST " + path +
             " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 10485760\r\n\r\n{");
    EXPECT_EQ(raw.ReadResponse(5s), 401);
  }
  {  // Credentials, 10 MB announced: 413 without reading it.
    bpmc::testing::RawConnection raw(port);
    raw.Send("POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin_ +
             "\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{");
    EXPECT_EQ(raw.ReadResponse(5s), 413);
  }
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  const std::string deep_obj = "{\"customer\":" + deep + "}";
  const std::string deep_fit = std::string(2000, '[') + std::string(2000, ']');
  const std::string long_text(10000, 'x');
  const std::string support = AddUser("sue", "support", "");
  const struct {
    std::string token, body;
    int status;
    std::string field;
  } bad[] = {
      {admin_, deep, 413, ""},  // 10,000 bytes: over the 4 KiB body limit
      {admin_, deep_obj, 413, ""},
      {alice_, deep, 413, ""},
      {admin_, deep_fit, 400, ""},  // 2,000 deep within the limit: the HTTP layer's depth check
      {alice_, "{\"customer\":" + std::string(1500, '[') + std::string(1500, ']') + "}", 400, ""},
      {admin_, Json{{"customer", long_text}}.dump(), 413, ""},  // over the 4 KiB body limit
      {admin_, Json{{long_text, "x"}}.dump(), 413, ""},
      {admin_, Json{{"customer", std::string(101, 'c')}}.dump(), 400, "customer"},
      {admin_, "{}", 400, "customer"},
      {admin_, Json{{"customer", 5}}.dump(), 400, "customer"},
      {alice_, Json{{"customer", "cust-b"}}.dump(), 403, "customer"},
      {alice_, Json{{"customer", long_text}}.dump(), 413, ""},
      {support, Json{{"customer", "cust-a"}}.dump(), 403, ""},
      {"bpmcu_" + std::string(43, 'z'), "{}", 401, ""},
  };
  for (const auto& b : bad) {
    auto got = Send("POST", path, b.token, b.body);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->status, b.status) << b.body.substr(0, 60) << " " << got->body;
    EXPECT_LT(got->body.size(), 1000u) << "the error does not echo the input";
    if (!b.field.empty())
      EXPECT_EQ(Json::parse(got->body)["field"], b.field) << b.body.substr(0, 60);
  }
  EXPECT_EQ(Count("SELECT count(*) FROM telegram_link_codes"), 0);
  // An admin names the customer.
  auto ok = Send("POST", path, admin_, Json{{"customer", "cust-b"}}.dump());
  ASSERT_EQ(ok->status, 201) << ok->body;
  EXPECT_EQ(Json::parse(ok->body)["customer_id"], "cust-b");
  EXPECT_GE(Count("SELECT count(*) FROM audit_log WHERE endpoint LIKE '%telegram-link-code%'"),
            static_cast<int64_t>(std::size(bad)) + 1);
}

}  // namespace
}  // namespace bpmc::notices
