// The Telegram channel (docs/RECEIVER.md "Telegram") against a loopback Bot API
// stand-in and a real PostgreSQL: a critical alert becomes a message with buttons,
// a press acknowledges the incident as the bound person (message edited, PagerDuty
// acknowledged, escalation stopped), /start <code> binds a chat, an unmapped user's
// press is refused and audited, a 429's retry_after is honoured, alert text arrives
// HTML-escaped; plus the pure parts and the poller's lease.
#include "notifier/telegram.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "common/ids.h"
#include "common/migrate.h"
#include "notifier/config.h"
#include "receiver/telegram_bot_api.h"
#include "recorders/http_recorder.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"
#include "webhook_receiver/config.h"
#include "webhook_receiver/service.h"
#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::BotApi;
using bpmc::testing::WaitFor;
using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

const std::string kToken = "123456:TEST-token_abc";
const std::string kAdminToken = "bpmcu_" + std::string(43, 'a');

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

std::string AlertPayload(const std::string& summary) {
  return Json{{"version", "4"},
              {"groupKey", "{}:{alertname=\"GatewayDown\"}"},
              {"truncatedAlerts", 0},
              {"status", "firing"},
              {"receiver", "bpmc"},
              {"groupLabels", {{"alertname", "GatewayDown"}}},
              {"commonLabels", Json::object()},
              {"commonAnnotations", Json::object()},
              {"externalURL", "http://127.0.0.1:9093"},
              {"alerts",
               {{{"status", "firing"},
                 {"labels", {{"alertname", "GatewayDown"}, {"severity", "critical"}}},
                 {"annotations", {{"summary", summary}}},
                 {"startsAt", "2026-12-07T10:00:00Z"},
                 {"endsAt", "0001-01-01T00:00:00Z"},
                 {"generatorURL", "http://127.0.0.1:9090/graph"},
                 {"fingerprint", "fp-gw"}}}}}
      .dump();
}

Json Press(int64_t user, const std::string& data, int64_t message_id) {
  return {
      {"callback_query",
       {{"id", "cq-" + std::to_string(user) + "-" + data},
        {"from", {{"id", user}, {"is_bot", false}, {"first_name", "X"}}},
        {"message", {{"message_id", message_id}, {"chat", {{"id", 1001}, {"type", "private"}}}}},
        {"data", data}}}};
}

Json StartMessage(int64_t user, int64_t chat, const std::string& text) {
  return {{"message",
           {{"message_id", 1},
            {"from", {{"id", user}, {"is_bot", false}, {"first_name", "Ivan"}}},
            {"chat", {{"id", chat}, {"type", "private"}}},
            {"text", text}}}};
}

class TelegramTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
    pd_ = recorders::HttpRecorder::PagerDuty();
    setenv("BPMC_TEST_TG_TOKEN", kToken.c_str(), 1);
    setenv("BPMC_TEST_PD_KEY", std::string(32, 'k').c_str(), 1);
    pqxx::connection conn(url_);
    ApplySchema(conn, DatabaseSchema());
    pqxx::work txn(conn);
    txn.exec_params("INSERT INTO users (name, role, token_hash) VALUES ('root', 'admin', $1)",
                    pqxx::binarystring(Sha256(kAdminToken)));
    txn.commit();
  }
  void TearDown() override {
    if (service_) service_->Shutdown();
  }

  httplib::Client& Start() {
    const int port = bpmc::testing::FreePort();
    const std::string yaml = R"(
auth: {insecure_no_auth: true}
channels:
  tg: {type: telegram, bot_token_env: BPMC_TEST_TG_TOKEN, api_url: )" +
                             api_.Url() + R"(, poll_timeout_seconds: 1}
  pagerduty: {type: pagerduty, url: )" +
                             pd_->Url("/v2/enqueue") +
                             R"(, routing_key_env: BPMC_TEST_PD_KEY, rate_limit: none}
delivery: {initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2}
routes:
  - match: {severity: critical}
    escalation_policy: primary
people:
  ivan:
    name: Ivan
    locale: en
    contact_methods:
      - {type: telegram}
      - {type: pagerduty, channel: pagerduty}
  petr:
    contact_methods: [{type: telegram, chat_id: "2002"}]
escalation_policies:
  primary:
    levels:
      - {delay: 5s, targets: [{person: ivan}]}
      - {delay: 5s, targets: [{person: petr}]}
incidents: {poll_interval: 200ms}
)";
    ReceiverConfig config;
    auto e = LoadConfigYaml(yaml, &config);
    EXPECT_FALSE(e) << e->ToString();
    config.listen = "127.0.0.1:" + std::to_string(port);
    config.database_url = url_;
    config.http_threads = 4;
    std::string error;
    service_ = Service::Start(config, {}, &error);
    EXPECT_TRUE(service_) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port);
    client_->set_read_timeout(30, 0);
    return *client_;
  }

  // Binds Telegram user `user` (private chat `chat`) to ivan through the API and /start.
  void BindIvan(httplib::Client& c, int64_t user, int64_t chat) {
    auto r = c.Post("/api/v1/telegram/link-codes", {{"Authorization", "Bearer " + kAdminToken}},
                    R"({"person": "ivan"})", "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    const Json code = Json::parse(r->body);
    EXPECT_EQ(code["person"], "ivan");
    api_.PushUpdate(StartMessage(user, chat, code["command"].get<std::string>()));
    ASSERT_TRUE(
        WaitFor([&] { return Count(url_, "SELECT count(*) FROM telegram_bindings") == 1; }, 10s));
    EXPECT_EQ(
        Scalar(url_, "SELECT person || '/' || user_id || '/' || chat_id FROM telegram_bindings"),
        "ivan/" + std::to_string(user) + "/" + std::to_string(chat));
    ASSERT_TRUE(WaitFor([&] { return !api_.Calls("sendMessage").empty(); }, 5s));
    EXPECT_NE(api_.Calls("sendMessage")[0].body["text"].get<std::string>().find("Linked"),
              std::string::npos);
    // The code is single-use: the same /start again is refused.
    api_.PushUpdate(StartMessage(user + 1, chat + 1, code["command"].get<std::string>()));
    ASSERT_TRUE(WaitFor([&] { return api_.Calls("sendMessage").size() == 2; }, 5s));
    EXPECT_NE(api_.Calls("sendMessage")[1].body["text"].get<std::string>().find("unknown, used"),
              std::string::npos);
    EXPECT_EQ(Count(url_, "SELECT count(*) FROM telegram_bindings"), 1);
  }

  int64_t WaitIncident() {
    EXPECT_TRUE(WaitFor([&] { return Count(url_, "SELECT count(*) FROM incidents") > 0; }, 10s));
    return Count(url_, "SELECT max(id) FROM incidents");
  }

  std::vector<BotApi::Call> PagesTo(const std::string& chat) {
    std::vector<BotApi::Call> out;
    for (auto& c : api_.Calls("sendMessage"))
      if (c.body["chat_id"] == chat && c.status == 200) out.push_back(c);
    return out;
  }

  std::string Metrics() {
    auto m = client_->Get("/metrics");
    return m ? m->body : "";
  }

  BotApi api_{kToken};
  std::unique_ptr<recorders::HttpRecorder> pd_;
  std::string url_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(TelegramTest, APressAcknowledgesEditsTheMessageEchoesToPagerDutyAndStopsEscalation) {
  httplib::Client& c = Start();
  BindIvan(c, 501, 1001);
  const auto t0 = SteadyClock::now();
  auto r =
      c.Post("/v1/alertmanager", AlertPayload("Gateway <b>down</b> & \"out\""), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const int64_t id = WaitIncident();

  // The page: to ivan's bound chat, HTML-escaped, with the three buttons.
  ASSERT_TRUE(WaitFor([&] { return PagesTo("1001").size() == 1; }, 10s));
  const Json page = PagesTo("1001")[0].body;
  const std::string text = page["text"];
  EXPECT_EQ(page["parse_mode"], "HTML");
  EXPECT_NE(text.find("Gateway &lt;b&gt;down&lt;/b&gt; &amp; &quot;out&quot;"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("<b>down</b>"), std::string::npos) << text;
  EXPECT_NE(text.find("[BPMC #" + std::to_string(id) + "] critical: "), std::string::npos) << text;
  EXPECT_NE(text.find("Triggered at "), std::string::npos) << "ivan reads English: " << text;
  const Json& row = page["reply_markup"]["inline_keyboard"][0];
  ASSERT_EQ(row.size(), 3u) << page.dump();
  EXPECT_EQ(row[0]["text"], "Acknowledge");
  EXPECT_EQ(row[0]["callback_data"], "a:" + std::to_string(id));
  EXPECT_EQ(row[1]["callback_data"], "r:" + std::to_string(id));
  EXPECT_EQ(row[2]["callback_data"], "e:" + std::to_string(id));
  ASSERT_TRUE(pd_->WaitAccepted(1, 10s));
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM telegram_messages"), 1);
  const int64_t message_id = Count(url_, "SELECT message_id FROM telegram_messages");

  // Ivan presses Acknowledge.
  api_.PushUpdate(Press(501, "a:" + std::to_string(id), message_id));
  ASSERT_TRUE(WaitFor([&] { return !api_.Calls("answerCallbackQuery").empty(); }, 10s));
  EXPECT_EQ(Scalar(url_, "SELECT status || '/' || acknowledged_by FROM incidents"),
            "acknowledged/ivan");
  EXPECT_NE(
      api_.Calls("answerCallbackQuery")[0].body["text"].get<std::string>().find("Acknowledged"),
      std::string::npos);
  // The message is edited, not sent anew, and loses the Acknowledge button.
  ASSERT_TRUE(WaitFor([&] { return !api_.Calls("editMessageText").empty(); }, 10s));
  const Json edit = api_.Calls("editMessageText")[0].body;
  EXPECT_EQ(edit["message_id"], message_id);
  EXPECT_EQ(edit["chat_id"], "1001");
  EXPECT_NE(edit["text"].get<std::string>().find("Acknowledged by ivan at "), std::string::npos)
      << edit.dump();
  // Its keyboard: Resolve, Snooze 1h (ivan reads English), Escalate now.
  const Json& acked_row = edit["reply_markup"]["inline_keyboard"][0];
  ASSERT_EQ(acked_row.size(), 3u) << edit.dump();
  EXPECT_EQ(acked_row[0]["callback_data"], "r:" + std::to_string(id));
  EXPECT_EQ(acked_row[1]["text"], "Snooze 1h");
  EXPECT_EQ(acked_row[1]["callback_data"], "s:" + std::to_string(id));
  EXPECT_EQ(acked_row[2]["callback_data"], "e:" + std::to_string(id));
  // PagerDuty hears the acknowledgement.
  ASSERT_TRUE(pd_->WaitAccepted(2, 10s));
  EXPECT_EQ(Json::parse(pd_->Accepted()[1].body)["event_action"], "acknowledge");

  // The same press again (a replay) is harmless.
  api_.PushUpdate(Press(501, "a:" + std::to_string(id), message_id));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("answerCallbackQuery").size() == 2; }, 10s));
  EXPECT_NE(api_.Calls("answerCallbackQuery")[1].body["text"].get<std::string>().find(
                "already acknowledged"),
            std::string::npos);

  // Snooze 1h: a stranger's press is refused and changes nothing; ivan's snoozes.
  api_.PushUpdate(Press(999, "s:" + std::to_string(id), message_id));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("answerCallbackQuery").size() == 3; }, 10s));
  EXPECT_NE(api_.Calls("answerCallbackQuery")[2].body["text"].get<std::string>().find("Refused"),
            std::string::npos);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incidents WHERE snoozed_until IS NOT NULL"), 0);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = 'telegram:button'"
                  " AND NOT allowed AND status = 403 AND params->>'action' = 'snooze'"),
            1);
  api_.PushUpdate(Press(501, "s:" + std::to_string(id), message_id));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("answerCallbackQuery").size() == 4; }, 10s));
  EXPECT_EQ(api_.Calls("answerCallbackQuery")[3].body["text"],
            "Snoozed for 1 hour (incident #" + std::to_string(id) + ")");
  EXPECT_EQ(
      Scalar(url_,
             "SELECT status || '/' || snoozed_by || '/' ||"
             " (snoozed_until - now() BETWEEN interval '55 minutes' AND interval '61 minutes')"
             " FROM incidents"),
      "acknowledged/ivan/true");
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM incident_timeline WHERE kind = 'snoozed'"
                  " AND actor = 'ivan'"),
            1);

  // Escalation stopped: petr's level (due at +5 s) never comes.
  std::this_thread::sleep_until(t0 + 6500ms);  // a negative check needs a wait
  EXPECT_TRUE(PagesTo("2002").empty());
  EXPECT_EQ(PagesTo("1001").size(), 1u);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM notification_outbox WHERE destination = '2002'"), 0);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = 'telegram:button' AND allowed"
                  " AND user_name = 'ivan'"),
            3);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM audit_log WHERE endpoint = 'telegram:start'"), 2);
  // The offset is stored: a restart would not replay the presses.
  EXPECT_GE(Count(url_, "SELECT update_offset FROM telegram_pollers"), 1004);

  // Resolve from Telegram: the message is edited again and loses its buttons.
  api_.PushUpdate(Press(501, "r:" + std::to_string(id), message_id));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("editMessageText").size() == 2; }, 10s));
  const Json resolved = api_.Calls("editMessageText")[1].body;
  EXPECT_NE(resolved["text"].get<std::string>().find("Resolved by ivan"), std::string::npos)
      << resolved.dump();
  EXPECT_FALSE(resolved.contains("reply_markup"));
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "resolved");
  // Nothing in the logs or labels names the token.
  EXPECT_EQ(Metrics().find(kToken), std::string::npos);
}

TEST_F(TelegramTest, AReassignPressListsTargetsPagesTheNewPersonAndRecordsTheTimeline) {
  httplib::Client& c = Start();
  BindIvan(c, 501, 1001);
  auto r = c.Post("/v1/alertmanager", AlertPayload("Gateway down"), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const int64_t id = WaitIncident();
  const std::string n = std::to_string(id);
  ASSERT_TRUE(WaitFor([&] { return PagesTo("1001").size() == 1; }, 10s));
  const Json page = PagesTo("1001")[0].body;
  // The second row: Reassign (ivan reads English).
  ASSERT_EQ(page["reply_markup"]["inline_keyboard"].size(), 2u) << page.dump();
  EXPECT_EQ(page["reply_markup"]["inline_keyboard"][1][0]["text"], "Reassign");
  EXPECT_EQ(page["reply_markup"]["inline_keyboard"][1][0]["callback_data"], "g:" + n);
  const int64_t message_id = Count(url_, "SELECT message_id FROM telegram_messages");

  // Reassign opens the list of targets on the same message: people by id, then Back.
  api_.PushUpdate(Press(501, "g:" + n, message_id));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("editMessageReplyMarkup").size() == 1; }, 10s));
  const Json menu = api_.Calls("editMessageReplyMarkup")[0].body;
  EXPECT_EQ(menu["message_id"], message_id);
  EXPECT_EQ(menu["chat_id"], 1001);
  const Json& rows = menu["reply_markup"]["inline_keyboard"];
  ASSERT_EQ(rows.size(), 3u) << menu.dump();
  EXPECT_EQ(rows[0][0]["text"], "Ivan");
  EXPECT_EQ(rows[0][0]["callback_data"], "p:" + n + ":ivan");
  EXPECT_EQ(rows[1][0]["text"], "petr");
  EXPECT_EQ(rows[1][0]["callback_data"], "p:" + n + ":petr");
  EXPECT_EQ(rows[2][0]["text"], "Back");
  EXPECT_EQ(rows[2][0]["callback_data"], "b:" + n);
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "triggered");
  // Ivan acknowledges: the escalation stops, so only a reassign can page petr now.
  api_.PushUpdate(Press(501, "a:" + n, message_id));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("answerCallbackQuery").size() == 2; }, 10s));
  ASSERT_EQ(Scalar(url_, "SELECT status FROM incidents"), "acknowledged");

  // A stranger's reassign is refused and audited; nobody is paged.
  api_.PushUpdate(Press(999, "p:" + n + ":petr", message_id));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("answerCallbackQuery").size() == 3; }, 10s));
  EXPECT_NE(api_.Calls("answerCallbackQuery")[2].body["text"].get<std::string>().find("Refused"),
            std::string::npos);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = 'telegram:button'"
                  " AND NOT allowed AND status = 403 AND params->>'action' = 'reassign'"
                  " AND params->>'target' = 'person:petr'"),
            1);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'reassigned'"), 0);

  // An unknown person: 404 semantics, nothing stored.
  api_.PushUpdate(Press(501, "p:" + n + ":nobody", message_id));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("answerCallbackQuery").size() == 4; }, 10s));
  EXPECT_EQ(api_.Calls("answerCallbackQuery")[3].body["text"],
            "No such incident, person or schedule");
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = 'telegram:button'"
                  " AND status = 404 AND params->>'target' = 'person:nobody'"),
            1);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'reassigned'"), 0);

  // Ivan reassigns to petr: petr is paged at once, the incident is triggered again.
  EXPECT_TRUE(PagesTo("2002").empty());
  const auto pressed = SteadyClock::now();
  api_.PushUpdate(Press(501, "p:" + n + ":petr", message_id));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("answerCallbackQuery").size() == 5; }, 10s));
  EXPECT_EQ(api_.Calls("answerCallbackQuery")[4].body["text"],
            "Reassigned: the new target is paged now (incident #" + n + ")");
  ASSERT_TRUE(WaitFor([&] { return PagesTo("2002").size() == 1; }, 10s));
  EXPECT_LT(SteadyClock::now() - pressed, 4s);
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "triggered");
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM incident_timeline WHERE kind = 'reassigned'"
                  " AND actor = 'ivan'"),
            1);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = 'telegram:button' AND allowed"
                  " AND status = 200 AND user_name = 'ivan' AND params->>'action' = 'reassign'"
                  " AND params->>'target' = 'person:petr'"),
            1);

  // Back: the incident's own buttons again.
  api_.PushUpdate(Press(501, "b:" + n, message_id));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("editMessageReplyMarkup").size() == 2; }, 10s));
  const Json back = api_.Calls("editMessageReplyMarkup")[1].body["reply_markup"];
  ASSERT_EQ(back["inline_keyboard"].size(), 2u) << back.dump();
  EXPECT_EQ(back["inline_keyboard"][0][0]["callback_data"], "a:" + n);
  EXPECT_EQ(back["inline_keyboard"][0][0]["text"], "Acknowledge");
}

TEST_F(TelegramTest, AnUnmappedPressIsRefusedAndAuditedAndA429RetryAfterIsHonoured) {
  httplib::Client& c = Start();
  api_.Throttle(1, 2);  // the first page gets 429, retry_after 2
  auto r = c.Post("/v1/alertmanager", AlertPayload("Gateway down"), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const int64_t id = WaitIncident();
  // ivan has no bound chat: his Telegram page fails for good ("no_chat"); nothing is sent.
  // petr's page (level 2, +5 s) is throttled once and retried no sooner than 2 s later.
  ASSERT_TRUE(WaitFor([&] { return PagesTo("2002").size() == 1; }, 20s));
  const auto calls = api_.Calls("sendMessage");
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].status, 429);
  EXPECT_GE(calls[1].at - calls[0].at, 2s);
  EXPECT_EQ(Scalar(url_,
                   "SELECT state || ' ' || split_part(last_error, ' ', 1) FROM notification_outbox"
                   " WHERE destination = 'person:ivan'"),
            "failed no_chat");

  // A stranger presses Acknowledge: refused, audited, counted; the incident stays triggered.
  api_.PushUpdate(Press(999, "a:" + std::to_string(id), 77));
  ASSERT_TRUE(WaitFor([&] { return !api_.Calls("answerCallbackQuery").empty(); }, 10s));
  const Json answer = api_.Calls("answerCallbackQuery")[0].body;
  EXPECT_NE(answer["text"].get<std::string>().find("Refused"), std::string::npos);
  EXPECT_EQ(answer["show_alert"], true);
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "triggered");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Count(url_,
                     "SELECT count(*) FROM audit_log WHERE endpoint = 'telegram:button'"
                     " AND NOT allowed AND status = 403") == 1;
      },
      5s));
  // The audit row names the press, and the user only by a hash.
  const std::string params = Scalar(url_, "SELECT params::text FROM audit_log WHERE NOT allowed");
  EXPECT_NE(params.find("\"action\": \"acknowledge\""), std::string::npos) << params;
  EXPECT_NE(params.find("sha256:"), std::string::npos) << params;
  EXPECT_EQ(params.find("999"), std::string::npos) << params;
  EXPECT_NE(Metrics().find("bpmc_receiver_failures_total{reason=\"telegram_unmapped_user\"} 1"),
            std::string::npos);
}

// --- The poller's lease and the pure parts ---------------------------------------

TEST(TelegramLeaseTest, OneHolderAtATimeAndTheOffsetSurvivesATakeover) {
  auto& cluster = bpmc::testing::SharedCluster();
  const std::string url = cluster.ConnectionString(cluster.CreateDatabase());
  pqxx::connection conn(url);
  ApplySchema(conn, DatabaseSchema());
  auto in_txn = [&](auto fn) {
    pqxx::work txn(conn);
    auto out = fn(txn);
    txn.commit();
    return out;
  };
  using notifier::StoreTelegramOffset;
  using notifier::TakeTelegramPollLease;
  EXPECT_EQ(in_txn([](pqxx::work& t) { return TakeTelegramPollLease(t, "bot", "a", 60000000); }),
            std::optional<int64_t>(0));
  EXPECT_EQ(in_txn([](pqxx::work& t) { return TakeTelegramPollLease(t, "bot", "b", 60000000); }),
            std::nullopt);
  EXPECT_FALSE(in_txn([](pqxx::work& t) { return StoreTelegramOffset(t, "bot", "b", 9); }));
  EXPECT_TRUE(in_txn([](pqxx::work& t) { return StoreTelegramOffset(t, "bot", "a", 42); }));
  // a's lease expires (a crashed): b takes over from the stored offset.
  pqxx::nontransaction(conn).exec("UPDATE telegram_pollers SET expires_at = now() - interval '1s'");
  EXPECT_EQ(in_txn([](pqxx::work& t) { return TakeTelegramPollLease(t, "bot", "b", 60000000); }),
            std::optional<int64_t>(42));
  EXPECT_FALSE(in_txn([](pqxx::work& t) { return StoreTelegramOffset(t, "bot", "a", 50); }));
  // Another bot has its own lease.
  EXPECT_EQ(in_txn([](pqxx::work& t) { return TakeTelegramPollLease(t, "bot2", "a", 60000000); }),
            std::optional<int64_t>(0));
}

TEST(TelegramPureTest, CallbackData) {
  using notifier::ParseTelegramCallbackData;
  using notifier::TelegramAction;
  struct Case {
    std::string data;
    bool ok;
    TelegramAction action;
    int64_t id;
  };
  const Case cases[] = {
      {"a:12", true, TelegramAction::kAcknowledge, 12},
      {"r:1", true, TelegramAction::kResolve, 1},
      {"e:9223372036854775807", true, TelegramAction::kEscalate, 9223372036854775807},
      {"s:5", true, TelegramAction::kSnooze, 5},
      {"s:", false, {}, 0},
      {"S:5", false, {}, 0},
      {"a:0", false, {}, 0},
      {"a:-1", false, {}, 0},
      {"a:", false, {}, 0},
      {"x:1", false, {}, 0},
      {"a1", false, {}, 0},
      {"a:1 ", false, {}, 0},
      {"a:99999999999999999999", false, {}, 0},
      {"", false, {}, 0},
  };
  for (const Case& c : cases) {
    const auto p = ParseTelegramCallbackData(c.data);
    EXPECT_EQ(p.has_value(), c.ok) << c.data;
    if (p && c.ok) {
      EXPECT_EQ(p->action, c.action) << c.data;
      EXPECT_EQ(p->incident_id, c.id) << c.data;
      EXPECT_EQ(notifier::TelegramCallbackData(c.action, c.id), c.data);
      EXPECT_LE(c.data.size(), 64u);
    }
  }
}

TEST(TelegramPureTest, ReassignValues) {
  using notifier::ParseTelegramCallbackData;
  using notifier::TelegramAction;
  using notifier::TelegramReassignData;
  // Building: 64 bytes at most, no empty target, no ':' or control characters.
  EXPECT_EQ(TelegramReassignData(12, false, "ivan"), std::optional<std::string>("p:12:ivan"));
  EXPECT_EQ(TelegramReassignData(12, true, "ops"), std::optional<std::string>("q:12:ops"));
  const std::string fits(64 - 5, 'x'), too_long(64 - 4, 'x');  // "p:12:" is 5 bytes
  EXPECT_EQ(TelegramReassignData(12, false, fits)->size(), 64u);
  EXPECT_FALSE(TelegramReassignData(12, false, too_long));
  EXPECT_FALSE(TelegramReassignData(12, false, ""));
  EXPECT_FALSE(TelegramReassignData(12, false, "a:b"));
  EXPECT_FALSE(TelegramReassignData(12, false, "a\nb"));
  EXPECT_FALSE(TelegramReassignData(0, false, "ivan"));
  // Parsing.
  struct Case {
    std::string data;
    bool ok;
    TelegramAction action;
    int64_t id;
    bool schedule;
    std::string target;
  };
  const Case cases[] = {
      {"g:7", true, TelegramAction::kReassignMenu, 7, false, ""},
      {"b:7", true, TelegramAction::kReassignBack, 7, false, ""},
      {"p:7:ivan", true, TelegramAction::kReassign, 7, false, "ivan"},
      {"q:7:primary-ops", true, TelegramAction::kReassign, 7, true, "primary-ops"},
      {"p:12:" + fits, true, TelegramAction::kReassign, 12, false, fits},
      {"p:12:" + too_long, false, {}, 0, false, ""},
      {"p:7:", false, {}, 0, false, ""},
      {"p:7", false, {}, 0, false, ""},
      {"p::ivan", false, {}, 0, false, ""},
      {"p:0:ivan", false, {}, 0, false, ""},
      {"p:x:ivan", false, {}, 0, false, ""},
      {"p:7:a:b", false, {}, 0, false, ""},
      {"p:7:a\tb", false, {}, 0, false, ""},
      {"g:", false, {}, 0, false, ""},
      {"g:7:ivan", false, {}, 0, false, ""},
  };
  for (const Case& c : cases) {
    const auto p = ParseTelegramCallbackData(c.data);
    EXPECT_EQ(p.has_value(), c.ok) << c.data;
    if (p && c.ok) {
      EXPECT_EQ(p->action, c.action) << c.data;
      EXPECT_EQ(p->incident_id, c.id) << c.data;
      EXPECT_EQ(p->to_schedule, c.schedule) << c.data;
      EXPECT_EQ(p->target, c.target) << c.data;
    }
  }
  // The keyboard: at most 8 targets that fit, in the order given, then Back (localized).
  std::vector<notifier::ReassignChoice> choices;
  choices.push_back({"Long", false, too_long + "xxxxxx"});  // skipped: over 64 bytes
  for (int i = 0; i < 10; ++i)
    choices.push_back({"P" + std::to_string(i), false, "p" + std::to_string(i)});
  choices.push_back({"schedule: Ops", true, "ops"});
  const Json kb = notifier::TelegramReassignKeyboard(12, choices, "ru")["inline_keyboard"];
  ASSERT_EQ(kb.size(), 9u) << kb.dump();
  EXPECT_EQ(kb[0][0]["callback_data"], "p:12:p0");
  EXPECT_EQ(kb[7][0]["callback_data"], "p:12:p7");
  EXPECT_EQ(kb[8][0]["text"], "Назад");
  EXPECT_EQ(kb[8][0]["callback_data"], "b:12");
  const Json few = notifier::TelegramReassignKeyboard(12, {{"schedule: Ops", true, "ops"}}, "en");
  EXPECT_EQ(few["inline_keyboard"][0][0]["callback_data"], "q:12:ops");
  EXPECT_EQ(few["inline_keyboard"][1][0]["text"], "Back");
  // Answers.
  EXPECT_EQ(
      notifier::BotPressAnswer("ru", TelegramAction::kReassign, notifier::BotPressResult::kDone, 3),
      "Переназначено: новый адресат оповещён (инцидент #3)");
  EXPECT_EQ(notifier::BotPressAnswer("en", TelegramAction::kReassign,
                                     notifier::BotPressResult::kAlready, 3),
            "Nothing to do: incident #3 is resolved");
}

TEST(TelegramPureTest, AnswersInThePersonsLocale) {
  using notifier::BotPressAnswer;
  using notifier::BotPressResult;
  using notifier::TelegramAction;
  struct Case {
    std::string locale;
    TelegramAction action;
    BotPressResult result;
    std::string want;
  };
  const Case cases[] = {
      {"en", TelegramAction::kAcknowledge, BotPressResult::kDone, "Acknowledged (incident #7)"},
      {"ru", TelegramAction::kAcknowledge, BotPressResult::kDone, "Подтверждено (инцидент #7)"},
      {"", TelegramAction::kAcknowledge, BotPressResult::kDone, "Подтверждено (инцидент #7)"},
      {"de", TelegramAction::kResolve, BotPressResult::kDone, "Решено (инцидент #7)"},
      {"en", TelegramAction::kResolve, BotPressResult::kDone, "Resolved (incident #7)"},
      {"en", TelegramAction::kSnooze, BotPressResult::kDone, "Snoozed for 1 hour (incident #7)"},
      {"ru", TelegramAction::kSnooze, BotPressResult::kDone, "Отложено на 1 час (инцидент #7)"},
      {"en", TelegramAction::kEscalate, BotPressResult::kDone,
       "Escalated: the next level is paged now (incident #7)"},
      {"ru", TelegramAction::kEscalate, BotPressResult::kDone,
       "Эскалировано: следующий уровень оповещён (инцидент #7)"},
      {"en", TelegramAction::kAcknowledge, BotPressResult::kAlready,
       "Nothing to do: incident #7 is already acknowledged or resolved"},
      {"ru", TelegramAction::kResolve, BotPressResult::kAlready,
       "Нечего делать: инцидент #7 уже подтверждён или решён"},
      {"en", TelegramAction::kSnooze, BotPressResult::kAlready,
       "Nothing to do: incident #7 is not acknowledged"},
      {"ru", TelegramAction::kSnooze, BotPressResult::kAlready,
       "Нечего делать: инцидент #7 не подтверждён"},
      {"en", TelegramAction::kEscalate, BotPressResult::kAlready,
       "Nothing to do: incident #7 is resolved or has no escalation policy"},
      {"en", TelegramAction::kSnooze, BotPressResult::kNotFound, "No such incident"},
      {"ru", TelegramAction::kSnooze, BotPressResult::kNotFound, "Нет такого инцидента"},
      {"en", TelegramAction::kAcknowledge, BotPressResult::kUnknownButton, "Unknown button"},
      {"ru", TelegramAction::kAcknowledge, BotPressResult::kUnknownButton, "Неизвестная кнопка"},
  };
  for (const Case& c : cases)
    EXPECT_EQ(BotPressAnswer(c.locale, c.action, c.result, 7), c.want)
        << c.locale << " " << static_cast<int>(c.action) << " " << static_cast<int>(c.result);

  using notifier::BotReply;
  using notifier::BotReplyText;
  EXPECT_EQ(BotReplyText("en", BotReply::kLinked, "Ivan"),
            "Linked: this chat now receives pages for Ivan, and your buttons act as Ivan.");
  EXPECT_EQ(BotReplyText("ru", BotReply::kLinked, "Пётр"),
            "Привязано: этот чат получает оповещения для Пётр, а ваши кнопки действуют от имени "
            "Пётр.");
  // Replies to someone not known yet carry both languages, whatever the locale.
  for (BotReply r : {BotReply::kRefusedUnlinked, BotReply::kStartInPrivate, BotReply::kStartHowTo,
                     BotReply::kBadLinkCode}) {
    for (const char* locale : {"en", "ru", ""}) {
      const std::string t = BotReplyText(locale, r);
      EXPECT_EQ(t, BotReplyText("ru", r));
      const size_t nl = t.find('\n');
      ASSERT_NE(nl, std::string::npos) << t;
      EXPECT_GT(static_cast<unsigned char>(t[0]), 0x7F) << "Russian first: " << t;
      EXPECT_LT(static_cast<unsigned char>(t[nl + 1]), 0x80) << "then English: " << t;
    }
  }
  EXPECT_EQ(BotReplyText("", BotReply::kRefusedUnlinked).rfind("Отказано", 0), 0u);
  EXPECT_NE(BotReplyText("", BotReply::kRefusedUnlinked).find("\nRefused: "), std::string::npos);
  EXPECT_NE(BotReplyText("", BotReply::kBadLinkCode).find("unknown, used or expired"),
            std::string::npos);
}

TEST(TelegramPureTest, EscapingTextKeyboardsLimitsAndReplies) {
  EXPECT_EQ(notifier::TelegramEscape("<b>a & \"b\"</b>"),
            "&lt;b&gt;a &amp; &quot;b&quot;&lt;/b&gt;");
  notifier::NotifierConfig config;
  std::string error;
  setenv("BPMC_TEST_TG_TOKEN", kToken.c_str(), 1);
  ASSERT_TRUE(notifier::ParseNotifierConfig(
      YAML::Load("tg: {type: telegram, bot_token_env: BPMC_TEST_TG_TOKEN, chat_ids: ['-100500']}"),
      YAML::Node(), &config, &error))
      << error;
  const notifier::ChannelConfig& ch = config.channels.at("tg");
  EXPECT_EQ(ch.telegram.api_url, "https://api.telegram.org");
  EXPECT_EQ(notifier::Destinations(config, "tg"), std::vector<std::string>{"-100500"});
  EXPECT_EQ(notifier::TelegramRateLimit(ch, "-100500").messages, 20);
  EXPECT_EQ(notifier::TelegramRateLimit(ch, "-100500").per, 60s);
  EXPECT_EQ(notifier::TelegramRateLimit(ch, "42").messages, 1);
  EXPECT_EQ(notifier::TelegramRateLimit(ch, "42").per, 1s);
  EXPECT_EQ(ch.telegram.bot_per_second, 30);

  notifier::AlertView a;
  a.status = "firing";
  a.severity = "critical";
  a.source = "alertmanager";
  a.alertname = "X<y>";
  a.summary = std::string(5000, 'z') + "&";
  const std::string text = notifier::TelegramText(ch, "42", a);
  EXPECT_LE(text.size(), 4096u);
  EXPECT_NE(text.find("<b>X&lt;y&gt;</b>"), std::string::npos) << text.substr(0, 100);
  EXPECT_TRUE(notifier::TelegramKeyboard(a).is_null()) << "not an incident page: no buttons";
  a.source = "incident";
  a.annotations["incident_id"] = "7";
  EXPECT_EQ(notifier::TelegramKeyboard(a)["inline_keyboard"][0].size(), 3u);
  EXPECT_EQ(notifier::TelegramKeyboard(a)["inline_keyboard"][0][0]["text"], "Подтвердить")
      << "Russian unless the page says en";
  a.annotations["page_locale"] = "en";
  EXPECT_EQ(notifier::TelegramKeyboard(a)["inline_keyboard"][0][2]["text"], "Escalate now");
  a.annotations["page_headline"] = "Подтверждён в 10:05 МСК (ivan)";
  a.status = "acknowledged";
  {
    const Json row = notifier::TelegramKeyboard(a)["inline_keyboard"][0];
    ASSERT_EQ(row.size(), 3u) << row.dump();
    EXPECT_EQ(row[0]["callback_data"], "r:7");
    EXPECT_EQ(row[1]["text"], "Snooze 1h");
    EXPECT_EQ(row[1]["callback_data"], "s:7");
    EXPECT_EQ(row[2]["callback_data"], "e:7");
    a.annotations["page_locale"] = "ru";
    EXPECT_EQ(notifier::TelegramKeyboard(a)["inline_keyboard"][0][1]["text"], "Отложить на 1 ч");
    a.annotations["page_locale"] = "en";
  }
  EXPECT_NE(notifier::TelegramText(ch, "42", a).find("<b>Подтверждён в 10:05 МСК (ivan)</b>"),
            std::string::npos)
      << "an incident page's own headline, in the reader's language and zone";
  a.status = "resolved";
  EXPECT_TRUE(notifier::TelegramKeyboard(a).is_null());
  const auto req = notifier::TelegramSendMessage(ch, "42", a);
  EXPECT_EQ(req.url, "https://api.telegram.org/bot" + kToken + "/sendMessage");

  EXPECT_EQ(notifier::TelegramThreadKey("incident-7~3"), "incident-7");
  EXPECT_EQ(notifier::TelegramThreadKey("incident-7"), "incident-7");
  EXPECT_EQ(notifier::TelegramThreadKey("fp~x"), "fp~x");

  const auto throttled = notifier::ParseTelegramReply(
      R"({"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}})");
  EXPECT_FALSE(throttled.ok);
  EXPECT_EQ(throttled.retry_after_s, std::optional<int>(35));
  const auto sent = notifier::ParseTelegramReply(R"({"ok":true,"result":{"message_id":5}})");
  EXPECT_TRUE(sent.ok);
  EXPECT_EQ(sent.message_id, 5);
  EXPECT_TRUE(notifier::TelegramEditImpossible(notifier::ParseTelegramReply(
      R"({"ok":false,"error_code":400,"description":"Bad Request: message to edit not found"})")));
  EXPECT_FALSE(notifier::TelegramEditImpossible(throttled));

  // Config errors name the key; the token is a secret, never plain YAML.
  for (const auto& [yaml, key] : std::vector<std::pair<std::string, std::string>>{
           {"tg: {type: telegram, bot_token: x}", "channels.tg.bot_token"},
           {"tg: {type: telegram}", "channels.tg.bot_token"},
           {"tg: {type: telegram, bot_token_env: BPMC_TEST_TG_TOKEN, chat_ids: [abc]}",
            "channels.tg.chat_ids[0]"},
           {"tg: {type: telegram, bot_token_env: BPMC_TEST_TG_TOKEN, api_url: ftp://x}",
            "channels.tg.api_url"}}) {
    notifier::NotifierConfig c;
    std::string e;
    EXPECT_FALSE(notifier::ParseNotifierConfig(YAML::Load(yaml), YAML::Node(), &c, &e)) << yaml;
    EXPECT_EQ(e.rfind(key + ":", 0), 0u) << e;
  }
}

}  // namespace
}  // namespace bpmc::webhook_receiver
