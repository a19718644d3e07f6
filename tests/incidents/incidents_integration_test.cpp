// The incident engine inside bpmc-receiver against a real PostgreSQL and loopback
// recorders: a full escalation with second-long delays paged on time and resolved to
// everyone paged, acknowledgement by a signed link stopping it (echoed to PagerDuty),
// the API (auth, notes, report, on-call), two receivers on one database never paging
// twice, kill -9 mid-escalation, and the mute hook.
#include <gtest/gtest.h>
#include <httplib.h>
#include <prometheus/text_serializer.h>

#include <csignal>
#include <fstream>
#include <pqxx/pqxx>
#include <regex>
#include <thread>

#include "common/clock.h"
#include "common/ids.h"
#include "common/migrate.h"
#include "common/testing/temp_dir.h"
#include "common/time_format.h"
#include "incidents/engine.h"
#include "recorders/http_recorder.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"
#include "webhook_receiver/config.h"
#include "webhook_receiver/intake.h"
#include "webhook_receiver/service.h"
#include "webhook_receiver/store.h"

namespace bpmc::incidents {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::WaitFor;
using recorders::HttpRecorder;
using recorders::RecordedRequest;
using SteadyClock = std::chrono::steady_clock;

const std::string kPdKey(32, 'k');
const std::string kAdminToken = "bpmcu_" + std::string(43, 'a');
const std::string kSupportToken = "bpmcu_" + std::string(43, 's');
const std::string kUserToken = "bpmcu_" + std::string(43, 'u');

struct Policy {
  std::string level_delay = "2s";
  std::string alice_sms_delay = "1s";
  int repeat = 0;
  bool carol = false;       // a third level
  bool nobody = false;      // the first level pages a schedule with nobody on call instead
  std::string ack_timeout;  // "" = none
};

struct Alert {
  std::string name = "ConnectorDown", connector = "stripe", status = "firing";
};

// An Alertmanager webhook of one group (groupKey from the first alert's name).
std::string GroupPayload(const std::vector<Alert>& alerts) {
  nlohmann::json list = nlohmann::json::array();
  for (const Alert& a : alerts)
    list.push_back(
        {{"status", a.status},
         {"labels", {{"alertname", a.name}, {"severity", "critical"}, {"connector", a.connector}}},
         {"annotations", {{"summary", a.connector + " is down"}}},
         {"startsAt", "2026-11-25T10:00:00Z"},
         {"endsAt", a.status == "firing" ? "0001-01-01T00:00:00Z" : "2026-11-25T10:30:00Z"},
         {"generatorURL", "http://127.0.0.1:9090/graph"},
         {"fingerprint", "fp-" + a.name + "-" + a.connector}});
  const std::string group = alerts.at(0).name;
  return nlohmann::json{{"version", "4"},
                        {"groupKey", "{}:{alertname=\"" + group + "\"}"},
                        {"truncatedAlerts", 0},
                        {"status", alerts[0].status},
                        {"receiver", "bpmc"},
                        {"groupLabels", {{"alertname", group}}},
                        {"commonLabels", nlohmann::json::object()},
                        {"commonAnnotations", nlohmann::json::object()},
                        {"externalURL", "http://127.0.0.1:9093"},
                        {"alerts", list}}
      .dump();
}

std::string AlertPayload(const std::string& status) {
  Alert a;
  a.status = status;
  return GroupPayload({a});
}

int64_t Count(const std::string& url, const std::string& sql) {
  pqxx::connection conn(url);
  pqxx::nontransaction txn(conn);
  return txn.exec(sql)[0][0].as<int64_t>();
}

std::string Scalar(const std::string& url, const std::string& sql) {
  pqxx::connection conn(url);
  pqxx::nontransaction txn(conn);
  const auto r = txn.exec(sql);
  return r.empty() || r[0][0].is_null() ? "" : r[0][0].as<std::string>();
}

// The requests whose body names `text` (a phone number, a dedup key).
std::vector<RecordedRequest> With(const HttpRecorder& r, const std::string& text) {
  std::vector<RecordedRequest> out;
  for (auto& q : r.Accepted())
    if (q.body.find(text) != std::string::npos) out.push_back(q);
  return out;
}

double SecondsAfter(SteadyClock::time_point t0, const RecordedRequest& r) {
  return std::chrono::duration<double>(r.at - t0).count();
}

class IncidentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
    slack_ = HttpRecorder::Slack();
    sms_ = HttpRecorder::Sms();
    pd_ = HttpRecorder::PagerDuty();
    setenv("BPMC_TEST_PD_KEY", kPdKey.c_str(), 1);
    setenv("BPMC_TEST_ACK_SECRET", "incident-test-secret-0123456789", 1);
  }
  void TearDown() override {
    for (auto& s : services_) s->Shutdown();
  }

  std::string Yaml(const Policy& p, int port) const {
    std::string y = R"(
auth: {insecure_no_auth: true}
channels:
  ops-slack: {type: slack, url: )" +
                    slack_->Url("/hook") + R"(, rate_limit: none}
  oncall-sms: {type: sms, url: )" +
                    sms_->Url("/send") + R"(, to: ["+70000000000"], rate_limit: none}
  pagerduty: {type: pagerduty, url: )" +
                    pd_->Url("/v2/enqueue") +
                    R"(, routing_key_env: BPMC_TEST_PD_KEY, rate_limit: none}
delivery: {initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2}
routes:
  - match: {severity: critical}
    escalation_policy: primary
people:
  alice:
    contact_methods:
      - {type: slack, channel: ops-slack}
      - {type: pagerduty, channel: pagerduty}
      - {type: sms, address: "+71111111111", delay: )" +
                    p.alice_sms_delay + R"(}
  bob:
    contact_methods: [{type: sms, address: "+72222222222"}]
  carol:
    contact_methods: [{type: sms, address: "+73333333333"}]
escalation_policies:
  primary:
    repeat: )" + std::to_string(p.repeat) +
                    (p.ack_timeout.empty() ? "" : "\n    ack_timeout: " + p.ack_timeout) + R"(
    levels:
      - {delay: )" + p.level_delay +
                    R"(, targets: [)" + (p.nobody ? "{schedule: later}" : "{person: alice}") + R"(]}
      - {delay: )" + p.level_delay +
                    R"(, targets: [{person: bob}]}
)";
    if (p.carol) y += "      - {delay: " + p.level_delay + ", targets: [{person: carol}]}\n";
    y += R"(schedules:
  later:   # its rotation starts in 2100: nobody is on call
    time_zone: UTC
    layers: [{rotation: daily, handoff: "09:00", start: 2100-01-04, participants: [carol]}]
)";
    y += "incidents:\n  ack_link_secret_env: BPMC_TEST_ACK_SECRET\n  poll_interval: 200ms\n"
         "  public_url: http://127.0.0.1:" +
         std::to_string(port) + "\n";
    return y;
  }

  // Starts an in-process receiver; returns its HTTP client.
  httplib::Client& Start(const Policy& p) {
    const int port = bpmc::testing::FreePort();
    webhook_receiver::ReceiverConfig config;
    auto e = webhook_receiver::LoadConfigYaml(Yaml(p, port), &config);
    EXPECT_FALSE(e) << e->ToString();
    config.listen = "127.0.0.1:" + std::to_string(port);
    config.database_url = url_;
    config.http_threads = 4;
    std::string error;
    services_.push_back(webhook_receiver::Service::Start(config, {}, &error));
    EXPECT_TRUE(services_.back()) << error;
    clients_.push_back(std::make_unique<httplib::Client>("127.0.0.1", port));
    clients_.back()->set_read_timeout(30, 0);
    return *clients_.back();
  }

  void PostAlert(httplib::Client& c, const std::string& status) {
    auto r = c.Post("/v1/alertmanager", AlertPayload(status), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }

  int64_t WaitIncident() {
    EXPECT_TRUE(WaitFor([&] { return Count(url_, "SELECT count(*) FROM incidents") > 0; }, 10s));
    return Count(url_, "SELECT max(id) FROM incidents");
  }

  void CreateUsers() {
    pqxx::connection conn(url_);
    // The receiver's schema modules, identity (users, audit_log) among them.
    ApplySchema(conn, webhook_receiver::DatabaseSchema());
    pqxx::work txn(conn);
    const std::tuple<const char*, const char*, const char*, std::string> users[] = {
        {"root", "admin", nullptr, kAdminToken},
        {"sam", "support", nullptr, kSupportToken},
        {"cust", "user", "c1", kUserToken}};
    for (const auto& [name, role, customer, token] : users)
      txn.exec_params(
          "INSERT INTO users (name, role, customer_id, token_hash) VALUES ($1, $2, $3, $4)", name,
          role, customer ? std::optional<std::string>(customer) : std::nullopt,
          pqxx::binarystring(Sha256(token)));
    txn.commit();
  }

  std::string url_;
  std::unique_ptr<HttpRecorder> slack_, sms_, pd_;
  std::vector<std::unique_ptr<webhook_receiver::Service>> services_;
  std::vector<std::unique_ptr<httplib::Client>> clients_;
};

httplib::Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

TEST_F(IncidentsTest, EscalatesOnTimeAndResolvesToEveryonePaged) {
  // alice at 0 (sms +1s), bob at +2s; each page within 2.5 s of its due time (a loaded
  // 2-core CI machine; the engine wakes at the due time, the Deliverer right after).
  httplib::Client& c = Start(Policy{});
  const auto t0 = SteadyClock::now();
  PostAlert(c, "firing");
  const int64_t id = WaitIncident();
  ASSERT_TRUE(WaitFor([&] { return With(*sms_, "+72222222222").size() == 1; }, 15s));
  const auto alice_sms = With(*sms_, "+71111111111");
  const auto bob_sms = With(*sms_, "+72222222222");
  ASSERT_EQ(alice_sms.size(), 1u);
  ASSERT_EQ(slack_->AcceptedCount(), 1u);
  ASSERT_EQ(pd_->AcceptedCount(), 1u);
  EXPECT_LT(SecondsAfter(t0, slack_->Accepted()[0]), 2.5);
  EXPECT_GE(SecondsAfter(t0, alice_sms[0]), 0.95);
  EXPECT_LT(SecondsAfter(t0, alice_sms[0]), 3.5);
  EXPECT_GE(SecondsAfter(t0, bob_sms[0]), 1.95);
  EXPECT_LT(SecondsAfter(t0, bob_sms[0]), 4.5);
  // Every page carries the incident and a signed link (SMS text included).
  // Slack: the short subject in bold, the ack link as a button, not in the text.
  const auto slack = nlohmann::json::parse(slack_->Accepted()[0].body);
  // (alice has no locale: Russian, the default; the connector has no display name: its id)
  EXPECT_EQ(slack["text"],
            "*[BPMC #" + std::to_string(id) + "] critical: ConnectorDown на stripe*");
  const std::string actions = slack["attachments"][0]["blocks"].back().dump();
  EXPECT_NE(actions.find("/ack/" + std::to_string(id) + "/"), std::string::npos) << actions;
  EXPECT_NE(actions.find("/console/#/incidents/" + std::to_string(id) + "\""), std::string::npos)
      << actions;
  EXPECT_EQ(slack["attachments"][0]["blocks"][0].dump().find("/ack/"), std::string::npos);
  // SMS: the link first.
  EXPECT_EQ(nlohmann::json::parse(bob_sms[0].body)["text"].get<std::string>().rfind(
                "BPMC #" + std::to_string(id) + " ack: http://", 0),
            0u)
      << bob_sms[0].body;
  EXPECT_NE(bob_sms[0].body.find("/ack/" + std::to_string(id) + "/"), std::string::npos)
      << bob_sms[0].body;
  EXPECT_NE(bob_sms[0].body.find("/bob/"), std::string::npos) << "bob's own link";
  EXPECT_EQ(nlohmann::json::parse(pd_->Accepted()[0].body)["dedup_key"],
            "incident-" + std::to_string(id));

  // The policy is over (repeat 0): nothing more, even after its end.
  std::this_thread::sleep_for(1500ms);  // a negative check needs a wait
  EXPECT_EQ(sms_->AcceptedCount(), 2u);
  EXPECT_EQ(Scalar(url_, "SELECT next_due_at FROM incidents"), "");

  PostAlert(c, "resolved");
  ASSERT_TRUE(WaitFor(
      [&] {
        return sms_->AcceptedCount() == 4 && slack_->AcceptedCount() == 2 &&
               pd_->AcceptedCount() == 2;
      },
      15s));
  EXPECT_EQ(nlohmann::json::parse(pd_->Accepted()[1].body)["event_action"], "resolve");
  EXPECT_EQ(Scalar(url_, "SELECT status || '/' || resolved_by FROM incidents"),
            "resolved/alertmanager");
  const std::string kinds =
      Scalar(url_, "SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) FROM incident_timeline");
  EXPECT_EQ(kinds, "alert_resolved,classified,detected,escalated,notified,resolved");
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM escalation_steps"), 4);  // slack, pd, 2 sms

  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("bpmc_receiver_incident_time_to_resolve_seconds_count 1"),
            std::string::npos);
  EXPECT_NE(m->body.find("bpmc_receiver_escalation_steps_total{kind=\"contact\"} 4"),
            std::string::npos);
  EXPECT_NE(m->body.find("bpmc_receiver_incidents_total{muted=\"false\",severity=\"critical\"} 1"),
            std::string::npos);
}

TEST_F(IncidentsTest, AckByLinkStopsEscalationAndIsEchoedToPagerDuty) {
  CreateUsers();
  Policy p;
  p.alice_sms_delay = "30s";
  httplib::Client& c = Start(p);
  PostAlert(c, "firing");
  const int64_t id = WaitIncident();
  ASSERT_TRUE(slack_->WaitAccepted(1, 15s));
  std::smatch m;
  const std::string body = slack_->Accepted()[0].body;
  ASSERT_TRUE(std::regex_search(
      body, m,
      std::regex(R"(http://127\.0\.0\.1:\d+(/ack/[0-9]+/[0-9]+/alice/[A-Za-z0-9_-]{22}))")))
      << body;
  const std::string path = m[1];
  auto page = c.Get(path);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<form method=\"post\">"), std::string::npos);
  // The page cannot be framed (clickjacking the button), sniffed or given scripts.
  auto expect_hardened = [](const httplib::Response& r) {
    EXPECT_EQ(r.get_header_value("X-Frame-Options"), "DENY");
    EXPECT_EQ(r.get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(r.get_header_value("Content-Security-Policy"),
              "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    EXPECT_EQ(r.get_header_value("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(r.get_header_value("Cache-Control"), "no-store");
  };
  expect_hardened(*page);
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "triggered") << "a GET does not ack";
  auto ack = c.Post(path, "", "application/x-www-form-urlencoded");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status, 200);
  EXPECT_NE(ack->body.find("Acknowledged"), std::string::npos);
  expect_hardened(*ack);
  EXPECT_EQ(Scalar(url_, "SELECT status || '/' || acknowledged_by FROM incidents"),
            "acknowledged/alice");
  // PagerDuty hears the acknowledgement with the trigger's dedup key.
  ASSERT_TRUE(pd_->WaitAccepted(2, 15s));
  const auto ack_event = nlohmann::json::parse(pd_->Accepted()[1].body);
  EXPECT_EQ(ack_event["event_action"], "acknowledge");
  EXPECT_EQ(ack_event["dedup_key"], "incident-" + std::to_string(id));
  // Bob's level (due at +2s) never comes.
  std::this_thread::sleep_for(3s);  // a negative check needs a wait
  EXPECT_EQ(sms_->AcceptedCount(), 0u);
  // Slack hears the acknowledgement (who and when; no ack button), and nothing else.
  ASSERT_TRUE(slack_->WaitAccepted(2, 15s));
  EXPECT_EQ(slack_->AcceptedCount(), 2u);
  EXPECT_EQ(slack_->Accepted()[1].body.find("/ack/"), std::string::npos);
  EXPECT_NE(slack_->Accepted()[1].body.find("(alice)"), std::string::npos)
      << slack_->Accepted()[1].body;

  // A second use, a forged link.
  auto again = c.Post(path, "", "application/x-www-form-urlencoded");
  ASSERT_TRUE(again);
  EXPECT_NE(again->body.find("Already"), std::string::npos);
  std::string forged = path;
  forged[forged.size() - 1] = forged.back() == 'A' ? 'B' : 'A';
  auto refused = c.Post(forged, "", "text/plain");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 404);
  expect_hardened(*refused);

  // The API: who may do what.
  const std::string base = "/api/v1/incidents/" + std::to_string(id);
  EXPECT_EQ(c.Get("/api/v1/incidents")->status, 401);
  EXPECT_EQ(c.Get("/api/v1/incidents", Bearer(kUserToken))->status, 403);
  EXPECT_EQ(c.Post(base + "/ack", Bearer(kAdminToken), "", "text/plain")->status, 409);
  auto note = c.Post(base + "/notes", Bearer(kSupportToken), R"({"text":"stripe API is down"})",
                     "application/json");
  ASSERT_TRUE(note);
  EXPECT_EQ(note->status, 200) << note->body;
  EXPECT_EQ(c.Post(base + "/notes", Bearer(kSupportToken), "{}", "application/json")->status, 400);
  auto list = c.Get("/api/v1/incidents?status=acknowledged", Bearer(kAdminToken));
  ASSERT_EQ(list->status, 200);
  EXPECT_EQ(nlohmann::json::parse(list->body)["incidents"][0]["id"], id);
  EXPECT_EQ(nlohmann::json::parse(list->body)["incidents"][0]["connector"], "stripe");
  auto one = c.Get(base, Bearer(kAdminToken));
  ASSERT_EQ(one->status, 200);
  const auto j = nlohmann::json::parse(one->body);
  bool delivered_slack = false;
  for (const auto& t : j["timeline"])
    if (t["kind"] == "notified" && t["channel"] == "ops-slack" && t["person"] == "alice")
      delivered_slack = t["result"] == "delivered";
  EXPECT_TRUE(delivered_slack) << one->body;
  EXPECT_EQ(c.Get("/api/v1/incidents/999999", Bearer(kAdminToken))->status, 404);
  auto oncall = c.Get("/api/v1/oncall", Bearer(kAdminToken));
  ASSERT_EQ(oncall->status, 200);
  EXPECT_TRUE(nlohmann::json::parse(oncall->body)["schedules"].is_array());

  auto resolve = c.Post(base + "/resolve", Bearer(kAdminToken), "", "text/plain");
  ASSERT_EQ(resolve->status, 200) << resolve->body;
  // The resolution goes to everyone paged: alice on Slack and PagerDuty.
  ASSERT_TRUE(
      WaitFor([&] { return slack_->AcceptedCount() == 3 && pd_->AcceptedCount() == 3; }, 15s));
  auto report = c.Get(base + "/report", Bearer(kAdminToken));
  ASSERT_EQ(report->status, 200);
  EXPECT_NE(report->body.find("| Acknowledged | "), std::string::npos);
  EXPECT_NE(report->body.find(" by alice |"), std::string::npos) << report->body;
  EXPECT_NE(report->body.find("sam: stripe API is down"), std::string::npos) << report->body;
  EXPECT_NE(report->body.find("| Time to resolve | "), std::string::npos);
}

// GET /api/v1/incidents?connector= lists one connector's incidents only (an exact
// match, with any status filter), validated like the other parameters.
TEST_F(IncidentsTest, ListByConnector) {
  CreateUsers();
  Policy p;
  p.level_delay = "60s";
  p.alice_sms_delay = "60s";
  httplib::Client& c = Start(p);
  for (const auto& [name, connector] :
       {std::pair{"ConnectorDown", "stripe"}, std::pair{"Latency", "sber"},
        std::pair{"Errors", "stripe"}}) {
    auto r = c.Post("/v1/alertmanager", GroupPayload({Alert{name, connector}}), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  ASSERT_TRUE(WaitFor([&] { return Count(url_, "SELECT count(*) FROM incidents") == 3; }, 15s));
  auto listed = [&](const std::string& query) {
    auto r = c.Get("/api/v1/incidents" + query, Bearer(kSupportToken));
    std::vector<std::string> out;
    EXPECT_TRUE(r);
    if (!r) return out;
    EXPECT_EQ(r->status, 200) << r->body;
    const nlohmann::json body = nlohmann::json::parse(r->body);
    for (const auto& i : body["incidents"])
      out.push_back(i["connector"].get<std::string>() + "/" + i["status"].get<std::string>());
    return out;
  };
  EXPECT_EQ(listed("?connector=stripe"),
            (std::vector<std::string>{"stripe/triggered", "stripe/triggered"}));
  EXPECT_EQ(listed("?connector=sber&status=triggered"),
            (std::vector<std::string>{"sber/triggered"}));
  EXPECT_EQ(listed("?connector=stripe&limit=1").size(), 1u);
  EXPECT_TRUE(listed("?connector=stripe&status=resolved").empty());
  EXPECT_TRUE(listed("?connector=strip").empty()) << "an exact match, not a prefix";
  EXPECT_TRUE(listed("?connector=%25").empty()) << "no pattern characters";
  const int64_t sber = Count(url_, "SELECT id FROM incidents WHERE connector = 'sber'");
  ASSERT_EQ(c.Post("/api/v1/incidents/" + std::to_string(sber) + "/ack", Bearer(kAdminToken), "",
                   "text/plain")
                ->status,
            200);
  EXPECT_EQ(listed("?connector=sber&status=acknowledged"),
            (std::vector<std::string>{"sber/acknowledged"}));
  EXPECT_TRUE(listed("?connector=sber&status=triggered").empty());
  for (const std::string& bad :
       {std::string("?connector="), std::string("?connector"),
        "?connector=" + std::string(101, 'x'), "?connector=" + std::string(10000, 'x'),
        std::string("?status=triggered&connector=")}) {
    auto r = c.Get("/api/v1/incidents" + bad, Bearer(kAdminToken));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_EQ(nlohmann::json::parse(r->body)["field"], "connector") << r->body;
  }
  EXPECT_EQ(
      c.Get("/api/v1/incidents?connector=" + std::string(100, 'x'), Bearer(kAdminToken))->status,
      200);
}

// GET /api/v1/oncall/policies answers the loaded escalation policies with the
// names of what each level pages, for the roles that read /api/v1/oncall.
TEST_F(IncidentsTest, EscalationPoliciesRoute) {
  CreateUsers();
  Policy p;
  p.level_delay = "60s";
  p.ack_timeout = "10m";
  httplib::Client& c = Start(p);
  EXPECT_EQ(c.Get("/api/v1/oncall/policies")->status, 401);
  EXPECT_EQ(c.Get("/api/v1/oncall/policies", Bearer(kUserToken))->status, 403);
  EXPECT_EQ(
      c.Post("/api/v1/oncall/policies", Bearer(kAdminToken), "{}", "application/json")->status,
      405);
  auto policies = c.Get("/api/v1/oncall/policies", Bearer(kSupportToken));
  ASSERT_TRUE(policies);
  ASSERT_EQ(policies->status, 200) << policies->body;
  EXPECT_EQ(policies->get_header_value("Content-Type").rfind("application/json", 0), 0u);
  const auto expected = nlohmann::json::parse(R"({"policies": [
    {"id": "primary", "name": "primary", "repeat": 0, "ack_timeout_seconds": 600,
     "levels": [
       {"level": 0, "delay_seconds": 60,
        "targets": [{"type": "person", "id": "alice", "name": "alice"}]},
       {"level": 1, "delay_seconds": 60,
        "targets": [{"type": "person", "id": "bob", "name": "bob"}]}]}]})");
  EXPECT_EQ(nlohmann::json::parse(policies->body), expected) << policies->body;
  EXPECT_EQ(policies->body.find("+7"), std::string::npos) << "no contact addresses";
}

TEST_F(IncidentsTest, TwoReceiversOnOneDatabaseNeverPageTwice) {
  Policy p;
  p.level_delay = "1s";
  p.alice_sms_delay = "1s";
  p.repeat = 1;
  p.carol = true;
  httplib::Client& a = Start(p);
  httplib::Client& b = Start(p);
  // An HA pair delivers the same group to both.
  PostAlert(a, "firing");
  PostAlert(b, "firing");
  // Round 0: alice slack+pd at 0, alice sms and bob at 1s, carol at 2s; round 1 from 3s.
  ASSERT_TRUE(WaitFor([&] { return With(*sms_, "+73333333333").size() >= 2; }, 20s));
  std::this_thread::sleep_for(1500ms);  // a negative check needs a wait
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incidents"), 1);
  EXPECT_EQ(With(*sms_, "+71111111111").size(), 2u);
  EXPECT_EQ(With(*sms_, "+72222222222").size(), 2u);
  EXPECT_EQ(With(*sms_, "+73333333333").size(), 2u);
  EXPECT_EQ(slack_->AcceptedCount(), 2u);
  EXPECT_EQ(pd_->AcceptedCount(), 1u) << "PagerDuty keeps one incident per dedup key";
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM escalation_steps"), 10);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'escalated'"), 4);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'repeated'"), 1);
}

TEST_F(IncidentsTest, KillNineMidEscalationThenTheNextLevelOnTimeOnce) {
  Policy p;
  p.level_delay = "3s";
  p.alice_sms_delay = "30s";
  const bpmc::testing::TempDir tmp("bpmc-incidents");
  const std::string& dir = tmp.path();
  const std::string bin = bpmc::testing::BinPath("bpmc-receiver");
  const std::vector<std::string> env = {"BPMC_TEST_PD_KEY=" + kPdKey,
                                        "BPMC_TEST_ACK_SECRET=incident-test-secret-0123456789"};
  auto run = [&](int port) {
    std::ofstream(dir + "/receiver.yaml") << Yaml(p, port);
    auto proc = std::make_unique<bpmc::testing::Process>(
        std::vector<std::string>{bin, "serve", "--config", dir + "/receiver.yaml", "--listen",
                                 "127.0.0.1:" + std::to_string(port), "--database-url", url_},
        env);
    httplib::Client probe("127.0.0.1", port);
    EXPECT_TRUE(WaitFor(
        [&] {
          auto r = probe.Get("/readyz");
          return r && r->status == 200;
        },
        30s))
        << proc->Stderr();
    return proc;
  };
  const int port1 = bpmc::testing::FreePort();
  auto first = run(port1);
  httplib::Client c1("127.0.0.1", port1);
  const auto t0 = SteadyClock::now();
  PostAlert(c1, "firing");
  ASSERT_TRUE(slack_->WaitAccepted(1, 15s));
  // Killed after the first level's pages were recorded as delivered (a kill between a
  // send and its record resends it: the outbox's at-least-once edge, not escalation's).
  ASSERT_TRUE(WaitFor(
      [&] {
        return Count(url_, "SELECT count(*) FROM notification_outbox WHERE state = 'delivered'") ==
               2;
      },
      15s));
  first->Signal(SIGKILL);
  EXPECT_EQ(first->Wait(10s), 128 + SIGKILL);
  auto second = run(bpmc::testing::FreePort());
  ASSERT_TRUE(WaitFor([&] { return With(*sms_, "+72222222222").size() == 1; }, 15s))
      << second->Stderr();
  const double at = SecondsAfter(t0, With(*sms_, "+72222222222")[0]);
  EXPECT_GE(at, 2.95);
  EXPECT_LT(at, 5.5) << "bob's level is due 3 s after the incident started";
  std::this_thread::sleep_for(1500ms);  // a negative check needs a wait
  EXPECT_EQ(With(*sms_, "+72222222222").size(), 1u);
  EXPECT_EQ(slack_->AcceptedCount(), 1u) << "alice's page is not repeated after the restart";
  EXPECT_EQ(pd_->AcceptedCount(), 1u);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'escalated'"), 1);
  second->Signal(SIGTERM);
  second->Wait(20s);
}

// The engine alone (no HTTP): webhooks stored as the intake stores them, passes run by hand.
// The acknowledgement timeout (escalation_policies.primary.ack_timeout): an
// acknowledged incident not resolved in time goes back to triggered, the level
// in progress is paged again at once, and a new acknowledgement and the
// resolution stop it as before.
TEST_F(IncidentsTest, AckTimeoutTriggersAgainAndResumesTheEscalation) {
  CreateUsers();
  Policy p;
  p.level_delay = "60s";
  p.alice_sms_delay = "60s";
  p.ack_timeout = "2s";
  httplib::Client& c = Start(p);
  PostAlert(c, "firing");
  const int64_t id = WaitIncident();
  ASSERT_TRUE(slack_->WaitAccepted(1, 15s));
  const std::string base = "/api/v1/incidents/" + std::to_string(id);
  // Taken before the request: the acknowledgement's time is inside it (the answer may
  // take a while, it enqueues the acknowledgement's notices).
  const auto acked = SteadyClock::now();
  auto ack = c.Post(base + "/ack", Bearer(kSupportToken), "", "text/plain");
  ASSERT_EQ(ack->status, 200) << ack->body;
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "acknowledged");
  // Not before the timeout...
  std::this_thread::sleep_for(1500ms);  // a negative check needs a wait
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "acknowledged");
  EXPECT_EQ(With(*slack_, "/ack/").size(), 1u);  // the page; the other is the ack's notice
  // ...then triggered again, and alice (level 0, still in progress) paged again.
  ASSERT_TRUE(WaitFor([&] { return With(*slack_, "/ack/").size() == 2; }, 15s));
  EXPECT_GE(SecondsAfter(acked, With(*slack_, "/ack/")[1]), 1.9);
  EXPECT_EQ(Scalar(url_, "SELECT status || '/' || coalesce(acknowledged_by, '-') FROM incidents"),
            "triggered/-");
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'ack_timeout'"), 1);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM escalation_steps"
                  " WHERE step_key = 'primary/a1/r0/l0/person:alice/slack'"),
            1);
  EXPECT_EQ(Scalar(url_, "SELECT jsonb_array_length(ack_resumptions) FROM incidents"), "1");
  // Acknowledged again and resolved: nothing more.
  ASSERT_EQ(c.Post(base + "/ack", Bearer(kSupportToken), "", "text/plain")->status, 200);
  ASSERT_EQ(c.Post(base + "/resolve", Bearer(kSupportToken), "", "text/plain")->status, 200);
  std::this_thread::sleep_for(2500ms);  // past a second timeout: none, it is resolved
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'ack_timeout'"), 1);
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "resolved");
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("bpmc_receiver_incident_ack_timeouts_total 1"), std::string::npos);
}

// "Escalate now" (POST /api/v1/incidents/{id}/escalate): the next level is paged at
// once instead of after its delay, also for an acknowledged incident (back to triggered).
TEST_F(IncidentsTest, EscalateNowPagesTheNextLevelAtOnce) {
  CreateUsers();
  Policy p;
  p.level_delay = "60s";
  p.alice_sms_delay = "60s";
  httplib::Client& c = Start(p);
  PostAlert(c, "firing");
  const int64_t id = WaitIncident();
  ASSERT_TRUE(slack_->WaitAccepted(1, 15s));  // level 0: alice
  const std::string base = "/api/v1/incidents/" + std::to_string(id);
  ASSERT_EQ(c.Post(base + "/ack", Bearer(kSupportToken), "", "text/plain")->status, 200);
  EXPECT_EQ(c.Post(base + "/escalate", Bearer(kUserToken), "", "text/plain")->status, 403);
  const auto asked = SteadyClock::now();
  auto r = c.Post(base + "/escalate", Bearer(kSupportToken), "", "text/plain");
  ASSERT_EQ(r->status, 200) << r->body;
  // bob (level 1, due at +60 s) is paged now.
  ASSERT_TRUE(WaitFor([&] { return With(*sms_, "+72222222222").size() == 1; }, 15s));
  EXPECT_LT(SecondsAfter(asked, With(*sms_, "+72222222222")[0]), 10.0);
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "triggered");
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM incident_timeline WHERE kind = 'escalated'"
                  " AND actor = 'sam' AND detail->>'manual' = 'true'"),
            1);
  ASSERT_EQ(c.Post(base + "/resolve", Bearer(kSupportToken), "", "text/plain")->status, 200);
  auto late = c.Post(base + "/escalate", Bearer(kSupportToken), "", "text/plain");
  EXPECT_EQ(late->status, 409);
  EXPECT_EQ(
      c.Post("/api/v1/incidents/999999/escalate", Bearer(kSupportToken), "", "text/plain")->status,
      404);
}

// Snooze (POST .../snooze): the acknowledged incident stays quiet until the end,
// which survives kill -9 (it is in PostgreSQL), then goes back to triggered,
// pages the acknowledger (bob, not at the level in progress) and resumes the
// escalation where it stopped (alice's level 0 again).
TEST_F(IncidentsTest, SnoozeRepagesTheAcknowledgerAtTheEnd) {
  CreateUsers();
  const std::string bob_token = "bpmcu_" + std::string(43, 'b');
  {
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    txn.exec_params("INSERT INTO users (name, role, token_hash) VALUES ('bob', 'support', $1)",
                    pqxx::binarystring(Sha256(bob_token)));
    txn.commit();
  }
  Policy p;
  p.level_delay = "60s";
  p.alice_sms_delay = "60s";
  // The receiver binary, so that it can be killed with SIGKILL during the snooze.
  const bpmc::testing::TempDir tmp("bpmc-snooze");
  const std::vector<std::string> env = {"BPMC_TEST_PD_KEY=" + kPdKey,
                                        "BPMC_TEST_ACK_SECRET=incident-test-secret-0123456789"};
  auto run = [&](int port) {
    std::ofstream(tmp.path() + "/receiver.yaml") << Yaml(p, port);
    auto proc = std::make_unique<bpmc::testing::Process>(
        std::vector<std::string>{bpmc::testing::BinPath("bpmc-receiver"), "serve", "--config",
                                 tmp.path() + "/receiver.yaml", "--listen",
                                 "127.0.0.1:" + std::to_string(port), "--database-url", url_},
        env);
    httplib::Client probe("127.0.0.1", port);
    EXPECT_TRUE(WaitFor(
        [&] {
          auto r = probe.Get("/readyz");
          return r && r->status == 200;
        },
        30s))
        << proc->Stderr();
    return proc;
  };
  const int port1 = bpmc::testing::FreePort();
  auto first = run(port1);
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port1);
  c->set_read_timeout(30, 0);
  PostAlert(*c, "firing");
  const int64_t id = WaitIncident();
  ASSERT_TRUE(slack_->WaitAccepted(1, 15s));
  const std::string base = "/api/v1/incidents/" + std::to_string(id);
  // Only an acknowledged incident can be snoozed.
  auto early =
      c->Post(base + "/snooze", Bearer(bob_token), R"({"duration":"30m"})", "application/json");
  EXPECT_EQ(early->status, 409) << early->body;
  ASSERT_EQ(c->Post(base + "/ack", Bearer(bob_token), "", "text/plain")->status, 200);
  auto snooze =
      c->Post(base + "/snooze", Bearer(bob_token), R"({"duration":"30m"})", "application/json");
  ASSERT_EQ(snooze->status, 200) << snooze->body;
  EXPECT_EQ(Scalar(url_,
                   "SELECT status || '/' || snoozed_by || '/' ||"
                   " (snoozed_until BETWEEN now() + interval '29 minutes'"
                   "  AND now() + interval '31 minutes')::text ||"
                   " '/' || (next_due_at = snoozed_until)::text FROM incidents"),
            "acknowledged/bob/true/true");
  auto one = nlohmann::json::parse(c->Get(base, Bearer(kAdminToken))->body);
  EXPECT_EQ(one["snoozed_by"], "bob");
  EXPECT_TRUE(one["snoozed_until"].is_string());
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM incident_timeline WHERE kind = 'snoozed'"
                  " AND actor = 'bob' AND (detail->>'duration_seconds')::int = 1800"),
            1);

  // kill -9 in between: the snooze is in the database.
  first->Signal(SIGKILL);
  EXPECT_EQ(first->Wait(10s), 128 + SIGKILL);
  const int port2 = bpmc::testing::FreePort();
  auto second = run(port2);
  c = std::make_unique<httplib::Client>("127.0.0.1", port2);
  // Thirty minutes pass (the stored end moves instead of the test waiting).
  {
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    txn.exec(
        "UPDATE incidents SET snoozed_until = now() + interval '2 seconds',"
        " next_due_at = now() + interval '2 seconds'");
    txn.commit();
  }
  std::this_thread::sleep_for(1s);  // a negative check needs a wait
  EXPECT_TRUE(With(*sms_, "+72222222222").empty());
  ASSERT_TRUE(WaitFor([&] { return With(*sms_, "+72222222222").size() == 1; }, 15s));
  EXPECT_NE(With(*sms_, "+72222222222")[0].body.find("BPMC #" + std::to_string(id) + " ack: http"),
            std::string::npos)
      << With(*sms_, "+72222222222")[0].body;
  EXPECT_EQ(
      Scalar(url_, "SELECT status || '/' || coalesce(snoozed_until::text, '-') FROM incidents"),
      "triggered/-");
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'snooze_ended'"), 1);
  // The escalation resumed: alice's level 0 again (a second page with an ack link).
  ASSERT_TRUE(WaitFor([&] { return With(*slack_, "/ack/").size() == 2; }, 15s));
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM escalation_steps"
                  " WHERE step_key = 'primary/a1/r0/l0/person:alice/slack'"),
            1);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'ack_timeout'"), 0);
  auto m = c->Get("/metrics");
  EXPECT_NE(m->body.find("bpmc_receiver_incident_actions_total{action=\"snooze_ended\"} 1"),
            std::string::npos);
  second->Signal(SIGTERM);
  second->Wait(20s);
}

// Reassign (POST .../reassign): the new person is paged at once, the incident is
// triggered, and the escalation continues one level delay later.
TEST_F(IncidentsTest, ReassignPagesTheNewPersonNow) {
  CreateUsers();
  {
    // The connector's display name (identity's view connector_names) goes into the pages.
    pqxx::connection conn(url_);
    pqxx::work txn(conn);
    txn.exec("INSERT INTO connectors (id, name) VALUES ('stripe', 'Stripe Payments')");
    txn.commit();
  }
  Policy p;
  p.level_delay = "60s";
  p.alice_sms_delay = "60s";
  p.carol = true;
  httplib::Client& c = Start(p);
  PostAlert(c, "firing");
  const int64_t id = WaitIncident();
  ASSERT_TRUE(slack_->WaitAccepted(1, 15s));
  const std::string base = "/api/v1/incidents/" + std::to_string(id);
  ASSERT_EQ(c.Post(base + "/ack", Bearer(kSupportToken), "", "text/plain")->status, 200);
  EXPECT_EQ(
      c.Post(base + "/reassign", Bearer(kUserToken), R"({"person":"carol"})", "application/json")
          ->status,
      403);
  const auto asked = SteadyClock::now();
  auto r = c.Post(base + "/reassign", Bearer(kSupportToken), R"({"person":"carol"})",
                  "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(nlohmann::json::parse(r->body)["incident_status"], "triggered");
  ASSERT_TRUE(WaitFor([&] { return With(*sms_, "+73333333333").size() == 1; }, 15s));
  EXPECT_LT(SecondsAfter(asked, With(*sms_, "+73333333333")[0]), 10.0);
  const std::string sms =
      nlohmann::json::parse(With(*sms_, "+73333333333")[0].body)["text"].get<std::string>();
  EXPECT_EQ(sms.rfind("BPMC #" + std::to_string(id) + " ack: http://", 0), 0u) << sms;
  EXPECT_NE(sms.find("/carol/"), std::string::npos) << "carol's own link: " << sms;
  EXPECT_EQ(sms.substr(sms.find(" crit ")), " crit ConnectorDown on Stripe Payments") << sms;
  EXPECT_EQ(Scalar(url_, "SELECT status || '/' || coalesce(acknowledged_by, '-') FROM incidents"),
            "triggered/-");
  // The next level (bob) one level delay after the reassignment, not now.
  EXPECT_EQ(Scalar(url_,
                   "SELECT (next_due_at BETWEEN now() + interval '50 seconds'"
                   " AND now() + interval '61 seconds')::text FROM incidents"),
            "true");
  EXPECT_TRUE(With(*sms_, "+72222222222").empty());
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM incident_timeline WHERE kind = 'reassigned'"
                  " AND actor = 'sam' AND detail->>'person' = 'carol'"),
            1);
  // A schedule with nobody on call: recorded, the escalation still goes on.
  auto nobody = c.Post(base + "/reassign", Bearer(kSupportToken), R"({"schedule":"later"})",
                       "application/json");
  EXPECT_EQ(nobody->status, 200) << nobody->body;
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM incident_timeline WHERE kind = 'nobody_on_call'"
                  " AND detail->>'reassigned' = 'true'"),
            1);
  ASSERT_EQ(c.Post(base + "/resolve", Bearer(kSupportToken), "", "text/plain")->status, 200);
  EXPECT_EQ(
      c.Post(base + "/reassign", Bearer(kSupportToken), R"({"person":"bob"})", "application/json")
          ->status,
      409);
  EXPECT_EQ(c.Post("/api/v1/incidents/999999/reassign", Bearer(kSupportToken),
                   R"({"person":"bob"})", "application/json")
                ->status,
            404);
}

// Hostile input on the new routes: refused with a JSON error naming the field, a
// 4xx, and nothing stored.
TEST_F(IncidentsTest, SnoozeAndReassignRefuseHostileInput) {
  CreateUsers();
  Policy p;
  p.level_delay = "60s";
  p.alice_sms_delay = "60s";
  httplib::Client& c = Start(p);
  PostAlert(c, "firing");
  const int64_t id = WaitIncident();
  ASSERT_TRUE(slack_->WaitAccepted(1, 15s));
  const std::string base = "/api/v1/incidents/" + std::to_string(id);
  ASSERT_EQ(c.Post(base + "/ack", Bearer(kSupportToken), "", "text/plain")->status, 200);
  const int64_t timeline = Count(url_, "SELECT count(*) FROM incident_timeline");
  const std::string state_sql =
      "SELECT status || '/' || coalesce(snoozed_until::text, '-') FROM incidents";
  const std::string state = Scalar(url_, state_sql);
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  const std::string deep_object = [] {
    std::string s;
    for (int i = 0; i < 5000; ++i) s += "{\"duration\":";
    s += "1";
    for (int i = 0; i < 5000; ++i) s += "}";
    return s;
  }();
  std::string deep_path;  // FindTooDeep names the member that opens level 33
  std::string deep_array_path;
  for (int i = 0; i < 32; ++i) {
    deep_path += (i ? ".duration" : "duration");
    deep_array_path += "[0]";
  }
  const std::string long_text(10000, 'x');
  struct Case {
    std::string route, body, field;
    int status;
  };
  const Case cases[] = {
      {"snooze", deep, deep_array_path, 400},
      {"snooze", deep_object, deep_path, 400},
      {"snooze", R"({"duration":")" + long_text + R"("})", "duration", 400},
      {"snooze", R"({")" + long_text + R"(":"30m"})", long_text.substr(0, 64), 400},
      {"snooze", R"({"duration":"1s"})", "duration", 400},
      {"snooze", "", "", 400},
      {"reassign", deep, deep_array_path, 400},
      {"reassign", R"({"person":")" + long_text + R"("})", "person", 400},
      {"reassign", R"({"schedule":")" + long_text + R"("})", "schedule", 400},
      {"reassign", R"({"person":"carol","schedule":"later"})", "person", 400},
  };
  for (const Case& k : cases) {
    auto r = c.Post(base + "/" + k.route, Bearer(kSupportToken), k.body, "application/json");
    ASSERT_TRUE(r) << k.route;
    EXPECT_EQ(r->status, k.status) << k.route << " " << k.body.substr(0, 40) << " " << r->body;
    const auto j = nlohmann::json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_EQ(j.value("field", "?"), k.field) << k.route << " " << k.body.substr(0, 40);
    EXPECT_TRUE(j.contains("error") && j.contains("message")) << r->body;
    EXPECT_LT(r->body.size(), 1000u) << "the answer does not echo the input";
  }
  // Without credentials; a 10 MB body.
  for (const char* route : {"snooze", "reassign"}) {
    auto anon =
        c.Post(base + "/" + route, R"({"duration":"30m","person":"bob"})", "application/json");
    EXPECT_EQ(anon->status, 401) << route;
    auto big =
        c.Post(base + "/" + route, Bearer(kSupportToken),
               R"({"person":")" + std::string(10 * 1024 * 1024, 'x') + R"("})", "application/json");
    ASSERT_TRUE(big) << route;
    EXPECT_EQ(big->status, 413) << route;
  }
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline"), timeline);
  EXPECT_EQ(Scalar(url_, state_sql), state);
  EXPECT_TRUE(With(*sms_, "+73333333333").empty());
  // And the receiver still answers.
  EXPECT_EQ(
      c.Post(base + "/snooze", Bearer(kSupportToken), R"({"duration":"30m"})", "application/json")
          ->status,
      200);
}

// An override made through the API changes who is paged: the first level pages
// the schedule `later`, where nobody is on call, until an override puts bob on it.
TEST_F(IncidentsTest, AnOverrideFromTheApiChangesWhoIsPaged) {
  CreateUsers();
  Policy p;
  p.nobody = true;
  p.level_delay = "60s";
  httplib::Client& c = Start(p);
  const int64_t now = SystemClock::Get().NowMicros();
  const nlohmann::json cover = {{"schedule", "later"},
                                {"person", "bob"},
                                {"from", FormatRfc3339Micros(now - 60'000'000)},
                                {"to", FormatRfc3339Micros(now + 3'600'000'000)},
                                {"reason", "covers the night"}};
  auto post = [&](const std::string& token, const nlohmann::json& body) {
    return c.Post("/api/v1/overrides", Bearer(token), body.dump(), "application/json");
  };
  EXPECT_EQ(post(kUserToken, cover)->status, 403);
  nlohmann::json unknown = cover;
  unknown["person"] = "zoe";
  auto refused = post(kSupportToken, unknown);
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(nlohmann::json::parse(refused->body)["field"], "person");
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM oncall_overrides"), 0);
  auto made = post(kSupportToken, cover);
  ASSERT_EQ(made->status, 201) << made->body;
  const int64_t id = nlohmann::json::parse(made->body)["override"]["id"].get<int64_t>();
  // GET /api/v1/oncall sees it.
  auto oncall = c.Get("/api/v1/oncall?schedule=later", Bearer(kAdminToken));
  ASSERT_EQ(oncall->status, 200);
  const auto who = nlohmann::json::parse(oncall->body)["schedules"][0]["on_call"];
  ASSERT_TRUE(who.is_object()) << oncall->body;
  EXPECT_EQ(who["person"]["id"], "bob");
  EXPECT_EQ(who["override"], true);
  // The alert's first level pages bob, not "nobody on call".
  PostAlert(c, "firing");
  WaitIncident();
  ASSERT_TRUE(WaitFor([&] { return With(*sms_, "+72222222222").size() == 1; }, 15s));
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'nobody_on_call'"), 0);
  // Cancelled: listed as such, no longer in the active list, nobody on call again.
  auto cancelled = c.Delete("/api/v1/overrides/" + std::to_string(id), Bearer(kSupportToken));
  ASSERT_EQ(cancelled->status, 200) << cancelled->body;
  EXPECT_EQ(nlohmann::json::parse(cancelled->body)["override"]["cancelled_by"], "sam");
  EXPECT_EQ(c.Delete("/api/v1/overrides/999999", Bearer(kSupportToken))->status, 404);
  auto active = c.Get("/api/v1/overrides", Bearer(kAdminToken));
  ASSERT_EQ(active->status, 200);
  EXPECT_TRUE(nlohmann::json::parse(active->body)["overrides"].empty());
  auto all = c.Get("/api/v1/overrides?all=1", Bearer(kAdminToken));
  EXPECT_EQ(nlohmann::json::parse(all->body)["overrides"].size(), 1u);
  oncall = c.Get("/api/v1/oncall?schedule=later", Bearer(kAdminToken));
  EXPECT_TRUE(nlohmann::json::parse(oncall->body)["schedules"][0]["on_call"].is_null());
  EXPECT_GE(Count(url_, "SELECT count(*) FROM audit_log WHERE endpoint LIKE '/api/v1/overrides%'"),
            7);
}

// Silences (webhook_receiver/silences.h): who may make them, what they refuse, a
// silenced Sentry alert stored but paging nobody and opening no incident, the
// silence ending on time, and DELETE ending one early. Audited like every API.
TEST_F(IncidentsTest, ASilenceMutesASentryAlertAndStopsAtItsEnd) {
  CreateUsers();
  Policy p;
  p.alice_sms_delay = "30s";
  httplib::Client& c = Start(p);
  auto sentry = [&](const std::string& id, const std::string& project) {
    const nlohmann::json body = {{"id", id},
                                 {"project", project},
                                 {"level", "error"},
                                 {"message", "boom " + id},
                                 {"url", "https://sentry.example/" + id}};
    auto r = c.Post("/v1/sentry", body.dump(), "application/json");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r ? nlohmann::json::parse(r->body)["alerts"] : nlohmann::json();
  };
  auto post = [&](const std::string& token, const nlohmann::json& body) {
    return c.Post("/api/v1/silences", Bearer(token), body.dump(), "application/json");
  };
  const int64_t now = SystemClock::Get().NowMicros();
  const nlohmann::json silence = {{"matchers", {"project=\"billing-api\""}},
                                  {"ends_at", FormatRfc3339Micros(now + 4'000'000)},
                                  {"comment", "deploying billing-api"}};
  EXPECT_EQ(post(kUserToken, silence)->status, 403);
  EXPECT_EQ(c.Get("/api/v1/silences", Bearer(kUserToken))->status, 403);
  EXPECT_EQ(c.Get("/api/v1/silences")->status, 401);
  // Refused with the field named, nothing stored.
  const std::pair<nlohmann::json, std::string> bad[] = {
      {{{"matchers", {"project=~\".*\""}}, {"ends_at", silence["ends_at"]}, {"comment", "x"}},
       "matchers"},
      {{{"matchers", {"project=~\"(\""}}, {"ends_at", silence["ends_at"]}, {"comment", "x"}},
       "matchers[0]"},
      {{{"matchers", {"project=\"a\""}}, {"ends_at", "2020-01-01T00:00:00Z"}, {"comment", "x"}},
       "ends_at"},
      {{{"matchers", {"project=\"a\""}}, {"ends_at", silence["ends_at"]}}, "comment"},
      {{{"matchers", {"project=\"a\""}},
        {"ends_at", silence["ends_at"]},
        {"comment", "x"},
        {"creator", "me"}},
       "creator"},
  };
  for (const auto& [body, field] : bad) {
    auto r = post(kSupportToken, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body.dump();
    EXPECT_EQ(nlohmann::json::parse(r->body)["field"], field) << r->body;
  }
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM silences"), 0);

  auto created = post(kSupportToken, silence);
  ASSERT_EQ(created->status, 201) << created->body;
  const nlohmann::json s = nlohmann::json::parse(created->body)["silence"];
  EXPECT_EQ(s["state"], "active");
  EXPECT_EQ(s["created_by"], "sam");
  auto listed = c.Get("/api/v1/silences", Bearer(kAdminToken));
  ASSERT_EQ(listed->status, 200);
  EXPECT_EQ(nlohmann::json::parse(listed->body)["silences"][0]["id"], s["id"]);

  // The silenced issue is stored and pages nobody; another project's pages (its route
  // names only an escalation policy, no channel: "unrouted" for the receiver, an incident
  // for the engine).
  const nlohmann::json paged = {{"unrouted", 1}};
  EXPECT_EQ(sentry("issue-1", "billing-api"), (nlohmann::json{{"silenced", 1}}));
  EXPECT_EQ(sentry("issue-2", "shop"), paged);
  ASSERT_TRUE(slack_->WaitAccepted(1, 15s));
  std::this_thread::sleep_for(1s);  // a negative check needs a wait
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incidents"), 1);
  EXPECT_EQ(
      Count(url_, "SELECT count(*) FROM notification_outbox WHERE dedup_key LIKE '%issue-1%'"), 0);
  EXPECT_EQ(slack_->AcceptedCount(), 1u);

  // It ends on time: the silenced issue, still firing, pages then (as Alertmanager
  // notifies once a silence is gone), and an issue after ends_at pages at once.
  while (SystemClock::Get().NowMicros() < now + 4'100'000) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(WaitFor([&] { return Count(url_, "SELECT count(*) FROM incidents") == 2; }, 10s));
  EXPECT_EQ(Scalar(url_,
                   "SELECT outcome FROM receiver_alert_events WHERE dedup_key LIKE "
                   "'%issue-1%'"),
            "unrouted");  // released: routed as now (to the escalation policy only)
  EXPECT_EQ(sentry("issue-3", "billing-api"), paged);
  ASSERT_TRUE(WaitFor([&] { return Count(url_, "SELECT count(*) FROM incidents") == 3; }, 10s));

  // DELETE ends one early (support may; idempotent).
  nlohmann::json shop = silence;
  shop["matchers"] = {"project=~\"sho.\"", "alertname!=\"Heartbeat\""};
  shop["ends_at"] = FormatRfc3339Micros(now + 3'600'000'000);
  created = post(kAdminToken, shop);
  ASSERT_EQ(created->status, 201) << created->body;
  const std::string id =
      std::to_string(nlohmann::json::parse(created->body)["silence"]["id"].get<int64_t>());
  EXPECT_EQ(sentry("issue-4", "shop"), (nlohmann::json{{"silenced", 1}}));
  std::this_thread::sleep_for(1500ms);  // a negative check: the release loop leaves it alone
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incidents"), 3);
  EXPECT_EQ(c.Delete("/api/v1/silences/" + id, Bearer(kUserToken))->status, 403);
  for (int i = 0; i < 2; ++i) {
    auto ended = c.Delete("/api/v1/silences/" + id, Bearer(kSupportToken));
    ASSERT_EQ(ended->status, 200) << ended->body;
    EXPECT_EQ(nlohmann::json::parse(ended->body)["silence"]["state"], "expired");
    EXPECT_EQ(nlohmann::json::parse(ended->body)["silence"]["expired_by"], "sam");
  }
  EXPECT_EQ(c.Delete("/api/v1/silences/999999", Bearer(kSupportToken))->status, 404);
  EXPECT_EQ(c.Delete("/api/v1/silences/abc", Bearer(kSupportToken))->status, 404);
  // Ended early, issue-4 (still firing) pages too; issue-5 at once.
  ASSERT_TRUE(WaitFor([&] { return Count(url_, "SELECT count(*) FROM incidents") == 4; }, 10s));
  EXPECT_EQ(sentry("issue-5", "shop"), paged);
  ASSERT_TRUE(WaitFor([&] { return Count(url_, "SELECT count(*) FROM incidents") == 5; }, 10s));
  auto expired = c.Get("/api/v1/silences?state=expired", Bearer(kAdminToken));
  ASSERT_EQ(expired->status, 200);
  EXPECT_EQ(nlohmann::json::parse(expired->body)["silences"].size(), 2u);
  EXPECT_EQ(c.Get("/api/v1/silences?state=bogus", Bearer(kAdminToken))->status, 400);

  // Both silenced firings were released when their silences ended.
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM receiver_alert_events WHERE outcome = 'silenced'"),
            0);
  EXPECT_GE(Count(url_, "SELECT count(*) FROM audit_log WHERE endpoint LIKE '/api/v1/silences%'"),
            15);
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("bpmc_receiver_alerts_total{outcome=\"silenced\",source=\"sentry\"} 2"),
            std::string::npos);
}

class EngineTest : public IncidentsTest {
 protected:
  void SetUp() override {
    IncidentsTest::SetUp();
    Configure(Policy{});
    pqxx::connection conn(url_);
    ApplySchema(conn, webhook_receiver::DatabaseSchema());
  }

  void Configure(const Policy& p) {
    config_ = webhook_receiver::ReceiverConfig();
    auto e = webhook_receiver::LoadConfigYaml(Yaml(p, 1), &config_);
    ASSERT_FALSE(e) << e->ToString();
  }

  void Store(const std::string& body) {
    pqxx::connection conn(url_);
    auto parsed = webhook_receiver::ParseWebhook(webhook_receiver::Source::kAlertmanager, body);
    const auto& webhook = std::get<webhook_receiver::Webhook>(parsed);
    std::vector<webhook_receiver::PlannedAlert> planned;
    for (const auto& a : webhook.alerts)
      planned.push_back(
          webhook_receiver::PlanAlert(a, config_.routes, config_.notifier, "warning"));
    webhook_receiver::StoreWebhook(conn, webhook, body, planned, 1,
                                   [](const std::string&) { return true; });
  }

  std::unique_ptr<Engine> NewEngine(MuteHook is_muted = nullptr) {
    Engine::Options o;
    o.database_url = url_;
    o.config = config_.incidents;
    o.oncall = config_.oncall;
    o.channels = config_.notifier;
    o.is_muted = std::move(is_muted);
    return std::make_unique<Engine>(std::move(o), registry_);
  }

  webhook_receiver::ReceiverConfig config_;
  prometheus::Registry registry_;
};

TEST_F(EngineTest, OneIncidentPerGroupResolvedWhenAllItsAlertsAre) {
  auto engine = NewEngine();
  Store(GroupPayload({{"ConnectorDown", "stripe"}, {"ConnectorDown", "stripe-eu"}}));
  Store(GroupPayload({{"Latency", "stripe"}}));  // another group
  EXPECT_GE(engine->RunOnce(), 3);               // 3 events, then the first escalation steps
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incidents"), 2);
  EXPECT_EQ(Scalar(url_, "SELECT connector FROM incidents WHERE title LIKE 'Latency%'"), "stripe");
  EXPECT_EQ(Scalar(url_, "SELECT connector FROM incidents WHERE title LIKE 'ConnectorDown%'"), "")
      << "two connectors: none in common";
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_alerts"), 3);
  // The first alert is the incident's 'detected', the second joins it.
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'detected'"), 2);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'alert_added'"), 1);
  // One of the two resolves: still open; both: resolved by Alertmanager.
  Store(GroupPayload({{"ConnectorDown", "stripe", "resolved"}}));
  engine->RunOnce();
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents WHERE title LIKE 'ConnectorDown%'"),
            "triggered");
  Store(GroupPayload({{"ConnectorDown", "stripe-eu", "resolved"}}));
  engine->RunOnce();
  EXPECT_EQ(Scalar(url_,
                   "SELECT status || '/' || resolved_by FROM incidents"
                   " WHERE title LIKE 'ConnectorDown%'"),
            "resolved/alertmanager");
  EXPECT_EQ(Scalar(url_, "SELECT next_due_at FROM incidents WHERE title LIKE 'ConnectorDown%'"),
            "");
}

TEST_F(EngineTest, AMutedIncidentIsRecordedButPagesNobody) {
  int calls = 0;
  auto engine =
      NewEngine([&](pqxx::work&, const std::map<std::string, std::string>& labels, int64_t) {
        ++calls;
        return labels.count("connector") && labels.at("connector") == "stripe";
      });
  Store(AlertPayload("firing"));
  EXPECT_EQ(engine->RunOnce(), 1);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(Scalar(url_, "SELECT muted::text || '/' || connector FROM incidents"), "true/stripe");
  EXPECT_EQ(Scalar(url_, "SELECT next_due_at FROM incidents"), "");
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'muted'"), 1);
  EXPECT_EQ(engine->RunOnce(), 0);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM notification_outbox"), 0);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM escalation_steps"), 0);
}

TEST_F(EngineTest, NobodyOnCallIsRecordedAndCounted) {
  Policy p;
  p.nobody = true;
  Configure(p);
  auto engine = NewEngine();
  Store(AlertPayload("firing"));
  engine->RunOnce();
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'nobody_on_call'"), 1);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM notification_outbox"), 0);
  EXPECT_EQ(Scalar(url_, "SELECT step_key FROM escalation_steps"),
            "primary/r0/l0/schedule:later/nobody");
  EXPECT_NE(Scalar(url_, "SELECT next_due_at FROM incidents"), "")
      << "bob's level is still to come";
  const std::string text = prometheus::TextSerializer().Serialize(registry_.Collect());
  EXPECT_NE(text.find("bpmc_receiver_nobody_on_call_total 1"), std::string::npos) << text;
  EXPECT_NE(text.find("bpmc_receiver_escalation_steps_total{kind=\"nobody_on_call\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace bpmc::incidents
