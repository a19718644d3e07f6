// The Slack channel in its app form (docs/RECEIVER.md "Slack app") against a loopback
// Slack Web API stand-in and a real PostgreSQL: a critical alert is posted with
// chat.postMessage and Acknowledge / Resolve / Escalate now buttons; a signed
// interaction from the mapped member acknowledges the incident and the message is
// updated with chat.update (Resolve / Snooze 1h / Escalate now); Snooze 1h and
// Escalate now act as the member's person; bad and stale signatures are refused (401) and an
// unmapped member is refused and audited. The signature check and the config by table.
#include "notifier/slack_app.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "common/ids.h"
#include "common/migrate.h"
#include "notifier/config.h"
#include "testing/pg_cluster.h"
#include "testing/process.h"
#include "webhook_receiver/config.h"
#include "webhook_receiver/service.h"
#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver {
namespace {

using namespace std::chrono_literals;
using bpmc::testing::WaitFor;
using Json = nlohmann::json;

const std::string kBotToken = "xoxb-test-token";
const std::string kSigningSecret = "8f742231b10e8888abcd99yyyzzz85a5";

// chat.postMessage and chat.update under /api/, recorded; answers like Slack.
class SlackApi {
 public:
  struct Call {
    std::string method, authorization;
    Json body;
  };
  SlackApi() {
    server_.Post(R"(/api/([\w.]+))", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string method = req.matches[1];
      Json body = Json::parse(req.body, nullptr, false);
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back({method, req.get_header_value("Authorization"), body});
      Json out;
      if (req.get_header_value("Authorization") != "Bearer " + kBotToken) {
        out = {{"ok", false}, {"error", "invalid_auth"}};
      } else if (method == "chat.postMessage") {
        std::string channel = body.value("channel", "");
        if (!channel.empty() && channel[0] == 'U') channel = "D" + channel.substr(1);  // a DM
        out = {{"ok", true}, {"channel", channel}, {"ts", "1700000000." + std::to_string(++ts_)}};
      } else if (method == "chat.update") {
        out = {{"ok", true}, {"channel", body["channel"]}, {"ts", body["ts"]}};
      } else {
        out = {{"ok", false}, {"error", "unknown_method"}};
      }
      res.set_content(out.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~SlackApi() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/api"; }
  std::vector<Call> Calls(const std::string& method) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Call> out;
    for (const Call& c : calls_)
      if (c.method == method) out.push_back(c);
    return out;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<Call> calls_;
  int ts_ = 0;
};

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

std::string AlertPayload() {
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
                 {"annotations", {{"summary", "Gateway <!channel> down"}}},
                 {"startsAt", "2026-12-07T10:00:00Z"},
                 {"endsAt", "0001-01-01T00:00:00Z"},
                 {"generatorURL", "http://127.0.0.1:9090/graph"},
                 {"fingerprint", "fp-gw"}}}}}
      .dump();
}

// A block_actions interaction as Slack posts it (form-encoded payload=).
std::string Interaction(const std::string& member, const std::string& value) {
  const Json payload = {
      {"type", "block_actions"},
      {"user", {{"id", member}, {"username", "someone"}}},
      {"actions", {{{"action_id", "bpmc_ack"}, {"block_id", "bpmc_incident"}, {"value", value}}}}};
  return "payload=" + httplib::detail::encode_query_param(payload.dump());
}

// The "Reassign to…" static_select's interaction: selected_option.value, no value.
std::string SelectInteraction(const std::string& member, const std::string& value) {
  const Json payload = {
      {"type", "block_actions"},
      {"user", {{"id", member}, {"username", "someone"}}},
      {"actions",
       {{{"action_id", "bpmc_reassign"},
         {"block_id", "bpmc_incident"},
         {"type", "static_select"},
         {"selected_option",
          {{"text", {{"type", "plain_text"}, {"text", "x"}}}, {"value", value}}}}}}};
  return "payload=" + httplib::detail::encode_query_param(payload.dump());
}

class SlackAppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
    setenv("BPMC_TEST_SLACK_BOT_TOKEN", kBotToken.c_str(), 1);
    setenv("BPMC_TEST_SLACK_SIGNING_SECRET", kSigningSecret.c_str(), 1);
    const int port = bpmc::testing::FreePort();
    const std::string yaml = R"(
auth: {insecure_no_auth: true}
channels:
  ops-slack: {type: slack, bot_token_env: BPMC_TEST_SLACK_BOT_TOKEN, channel: C0OPS,
              signing_secret_env: BPMC_TEST_SLACK_SIGNING_SECRET, api_url: )" +
                             api_.Url() + R"(, rate_limit: none}
delivery: {initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2}
routes:
  - match: {severity: critical}
    escalation_policy: primary
people:
  ivan:
    locale: en
    contact_methods: [{type: slack, address: U0IVAN}]
  petr:
    contact_methods: [{type: slack, address: U0PETR}]
escalation_policies:
  primary:
    levels:
      - {delay: 10s, targets: [{person: ivan}, {channel: ops-slack}]}
      - {delay: 10s, targets: [{person: petr}]}
incidents: {poll_interval: 200ms}
)";
    ReceiverConfig config;
    auto e = LoadConfigYaml(yaml, &config);
    ASSERT_FALSE(e) << e->ToString();
    config.listen = "127.0.0.1:" + std::to_string(port);
    config.database_url = url_;
    config.http_threads = 4;
    std::string error;
    service_ = Service::Start(config, {}, &error);
    ASSERT_TRUE(service_) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port);
    client_->set_read_timeout(30, 0);
  }
  void TearDown() override {
    if (service_) service_->Shutdown();
  }

  httplib::Result PostSigned(const std::string& body, int64_t ts_offset_s = 0,
                             const std::string& secret = kSigningSecret) {
    const std::string ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count() +
                                          ts_offset_s);
    last_signed_ = {{"X-Slack-Request-Timestamp", ts},
                    {"X-Slack-Signature", notifier::SlackSignatureFor(secret, ts, body)}};
    last_body_ = body;
    return Resend();
  }
  // The last signed request again, byte for byte (a replay).
  httplib::Result Resend() {
    return client_->Post("/v1/slack/interactions", last_signed_, last_body_,
                         "application/x-www-form-urlencoded");
  }
  httplib::Headers last_signed_;
  std::string last_body_;

  SlackApi api_;
  std::string url_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(SlackAppTest, AButtonAcknowledgesAndTheMessageIsUpdated) {
  auto r = client_->Post("/v1/alertmanager", AlertPayload(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(WaitFor([&] { return Count(url_, "SELECT count(*) FROM incidents") == 1; }, 10s));
  const int64_t id = Count(url_, "SELECT id FROM incidents");
  // Ivan by DM (his member id) and the channel C0OPS, with buttons, Slack-escaped.
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("chat.postMessage").size() == 2; }, 10s));
  std::map<std::string, Json> posted;
  for (const auto& c : api_.Calls("chat.postMessage")) posted[c.body["channel"]] = c.body;
  ASSERT_EQ(posted.count("U0IVAN"), 1u);
  ASSERT_EQ(posted.count("C0OPS"), 1u);
  const Json& blocks = posted["U0IVAN"]["blocks"];
  EXPECT_NE(blocks[0]["text"]["text"].get<std::string>().find("&lt;!channel&gt;"),
            std::string::npos)
      << blocks.dump();
  ASSERT_EQ(blocks[1]["type"], "actions");
  EXPECT_EQ(blocks[1]["elements"][0]["text"]["text"], "Acknowledge");
  EXPECT_EQ(posted["C0OPS"]["blocks"][1]["elements"][0]["text"]["text"], "Подтвердить");
  EXPECT_EQ(blocks[1]["elements"][0]["value"], "a:" + std::to_string(id));
  EXPECT_EQ(blocks[1]["elements"][1]["value"], "r:" + std::to_string(id));
  ASSERT_EQ(blocks[1]["elements"].size(), 4u) << "no Snooze while firing; the select last";
  EXPECT_EQ(blocks[1]["elements"][3]["type"], "static_select");
  EXPECT_EQ(blocks[1]["elements"][2]["text"]["text"], "Escalate now");
  EXPECT_EQ(blocks[1]["elements"][2]["value"], "e:" + std::to_string(id));

  // Refused: no signature, a wrong one, a stale one (6 minutes old); nothing happens.
  auto none = client_->Post("/v1/slack/interactions", Interaction("U0IVAN", "a:1"),
                            "application/x-www-form-urlencoded");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  auto wrong = PostSigned(Interaction("U0IVAN", "a:" + std::to_string(id)), 0, "other-secret");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_NE(wrong->body.find("X-Slack-Signature"), std::string::npos);
  auto stale = PostSigned(Interaction("U0IVAN", "a:" + std::to_string(id)), -360);
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 401);
  EXPECT_NE(stale->body.find("X-Slack-Request-Timestamp"), std::string::npos);
  // An unmapped member: refused and audited.
  auto stranger = PostSigned(Interaction("U0NOBODY", "a:" + std::to_string(id)));
  ASSERT_TRUE(stranger);
  EXPECT_EQ(stranger->status, 200);
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "triggered");
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = '/v1/slack/interactions'"
                  " AND NOT allowed AND status = 403"),
            1);

  // Ivan presses Acknowledge: the incident is his, both messages are updated in place.
  auto ack = PostSigned(Interaction("U0IVAN", "a:" + std::to_string(id)));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status, 200) << ack->body;
  EXPECT_EQ(Scalar(url_, "SELECT status || '/' || acknowledged_by FROM incidents"),
            "acknowledged/ivan");
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("chat.update").size() == 2; }, 10s));
  std::map<std::string, Json> updated;
  for (const auto& c : api_.Calls("chat.update")) updated[c.body["channel"]] = c.body;
  ASSERT_EQ(updated.count("D0IVAN"), 1u) << "the DM's channel from chat.postMessage's answer";
  ASSERT_EQ(updated.count("C0OPS"), 1u);
  EXPECT_EQ(updated["C0OPS"]["ts"].get<std::string>().rfind("1700000000.", 0), 0u);
  // The channel has no reader: Russian and Moscow time; ivan reads English.
  const std::string text = updated["C0OPS"]["blocks"][0]["text"]["text"];
  EXPECT_NE(text.find(":white_check_mark: *[BPMC #" + std::to_string(id) + "]"), std::string::npos)
      << text;
  EXPECT_NE(text.find("Подтверждён в "), std::string::npos) << text;
  EXPECT_NE(text.find(" МСК (ivan)"), std::string::npos) << text;
  const std::string dm = updated["D0IVAN"]["blocks"][0]["text"]["text"];
  EXPECT_NE(dm.find("Acknowledged by ivan at "), std::string::npos) << dm;
  // Acknowledged: Resolve, Snooze 1h, Escalate now, in each reader's language.
  const Json& acked = updated["C0OPS"]["blocks"][1]["elements"];
  ASSERT_EQ(acked.size(), 4u) << acked.dump();
  EXPECT_EQ(acked[3]["placeholder"]["text"], "Переназначить…");
  EXPECT_EQ(acked[0]["value"], "r:" + std::to_string(id));
  EXPECT_EQ(acked[1]["text"]["text"], "Отложить на 1 ч");
  EXPECT_EQ(acked[1]["value"], "s:" + std::to_string(id));
  EXPECT_EQ(acked[2]["text"]["text"], "Эскалировать");
  EXPECT_EQ(acked[2]["value"], "e:" + std::to_string(id));
  EXPECT_EQ(updated["D0IVAN"]["blocks"][1]["elements"][1]["text"]["text"], "Snooze 1h");
  EXPECT_EQ(api_.Calls("chat.postMessage").size(), 2u);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = '/v1/slack/interactions'"
                  " AND allowed AND user_name = 'ivan'"),
            1);

  // Snooze 1h: an unmapped member is refused and changes nothing; ivan snoozes.
  auto stranger_snooze = PostSigned(Interaction("U0NOBODY", "s:" + std::to_string(id)));
  ASSERT_TRUE(stranger_snooze);
  EXPECT_EQ(stranger_snooze->status, 200);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incidents WHERE snoozed_until IS NOT NULL"), 0);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = '/v1/slack/interactions'"
                  " AND NOT allowed AND status = 403 AND params->>'action' = 'snooze'"),
            1);
  auto snooze = PostSigned(Interaction("U0IVAN", "s:" + std::to_string(id)));
  ASSERT_TRUE(snooze);
  EXPECT_EQ(snooze->status, 200) << snooze->body;
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

  // Escalate now from Slack: the next level (petr, by DM) is paged at once.
  auto escalate = PostSigned(Interaction("U0IVAN", "e:" + std::to_string(id)));
  ASSERT_TRUE(escalate);
  EXPECT_EQ(escalate->status, 200) << escalate->body;
  EXPECT_EQ(Scalar(url_, "SELECT status FROM incidents"), "triggered");
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& c : api_.Calls("chat.postMessage"))
          if (c.body["channel"] == "U0PETR") return true;
        return false;
      },
      10s));
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = '/v1/slack/interactions'"
                  " AND allowed AND user_name = 'ivan' AND status = 200"),
            3);

  // The same signed request resent within Slack's 5-minute window: answered, not acted on
  // (Escalate now is not idempotent), audited as a replay and counted.
  const int64_t escalations = Count(
      url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'escalated' AND actor = 'ivan'");
  ASSERT_EQ(escalations, 1);
  auto replay = Resend();
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 200) << replay->body;
  EXPECT_EQ(
      Count(url_,
            "SELECT count(*) FROM incident_timeline WHERE kind = 'escalated' AND actor = 'ivan'"),
      escalations);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = '/v1/slack/interactions'"
                  " AND user_name = 'ivan' AND status = 409"),
            1);
}

TEST_F(SlackAppTest, TheReassignSelectPagesTheNewPersonAndAnUnmappedMemberIsRefused) {
  auto r = client_->Post("/v1/alertmanager", AlertPayload(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(WaitFor([&] { return Count(url_, "SELECT count(*) FROM incidents") == 1; }, 10s));
  const std::string n = std::to_string(Count(url_, "SELECT id FROM incidents"));
  ASSERT_TRUE(WaitFor([&] { return api_.Calls("chat.postMessage").size() == 2; }, 10s));
  Json dm;
  for (const auto& c : api_.Calls("chat.postMessage"))
    if (c.body["channel"] == "U0IVAN") dm = c.body;
  const Json select = dm["blocks"][1]["elements"].back();
  ASSERT_EQ(select["type"], "static_select") << dm.dump();
  EXPECT_EQ(select["action_id"], "bpmc_reassign");
  EXPECT_EQ(select["placeholder"]["text"], "Reassign to…");
  ASSERT_EQ(select["options"].size(), 2u) << select.dump();
  EXPECT_EQ(select["options"][0]["value"], "p:" + n + ":ivan");
  EXPECT_EQ(select["options"][1]["value"], "p:" + n + ":petr");
  auto petr_paged = [&] {
    for (const auto& c : api_.Calls("chat.postMessage"))
      if (c.body["channel"] == "U0PETR") return true;
    return false;
  };

  // Neither value nor selected_option: 400.
  const Json empty = {{"type", "block_actions"},
                      {"user", {{"id", "U0IVAN"}}},
                      {"actions", {{{"action_id", "bpmc_reassign"}}}}};
  auto bad = PostSigned("payload=" + httplib::detail::encode_query_param(empty.dump()));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
  EXPECT_NE(bad->body.find("selected_option"), std::string::npos) << bad->body;

  // An unmapped member: refused and audited, nobody paged.
  auto stranger = PostSigned(SelectInteraction("U0NOBODY", "p:" + n + ":petr"));
  ASSERT_TRUE(stranger);
  EXPECT_EQ(stranger->status, 200);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = '/v1/slack/interactions'"
                  " AND NOT allowed AND status = 403 AND params->>'action' = 'reassign'"
                  " AND params->>'target' = 'person:petr'"),
            1);
  // An unknown person: 404 semantics, nothing stored.
  auto unknown = PostSigned(SelectInteraction("U0IVAN", "p:" + n + ":nobody"));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 200);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = '/v1/slack/interactions'"
                  " AND status = 404 AND params->>'target' = 'person:nobody'"),
            1);
  EXPECT_EQ(Count(url_, "SELECT count(*) FROM incident_timeline WHERE kind = 'reassigned'"), 0);
  EXPECT_FALSE(petr_paged());

  // Ivan reassigns to petr: petr is paged at once (his level is 10 s away).
  const auto pressed = std::chrono::steady_clock::now();
  auto ok = PostSigned(SelectInteraction("U0IVAN", "p:" + n + ":petr"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  ASSERT_TRUE(WaitFor(petr_paged, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - pressed, 5s);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM incident_timeline WHERE kind = 'reassigned'"
                  " AND actor = 'ivan'"),
            1);
  EXPECT_EQ(Count(url_,
                  "SELECT count(*) FROM audit_log WHERE endpoint = '/v1/slack/interactions'"
                  " AND allowed AND status = 200 AND user_name = 'ivan'"
                  " AND params->>'action' = 'reassign' AND params->>'target' = 'person:petr'"),
            1);
}

TEST(SlackSignatureTest, Table) {
  const std::string body = "payload=%7B%7D";
  const int64_t now_s = 1765100000;
  const std::string ts = std::to_string(now_s);
  const std::string good = notifier::SlackSignatureFor("s3cret", ts, body);
  EXPECT_EQ(good.substr(0, 3), "v0=");
  EXPECT_EQ(good.size(), 3u + 64u);
  struct Case {
    std::string ts, sig, body;
    int64_t now_s;
    notifier::SlackSignature want;
  };
  using S = notifier::SlackSignature;
  const Case cases[] = {
      {ts, good, body, now_s, S::kOk},
      {ts, good, body, now_s + 300, S::kOk},
      {ts, good, body, now_s - 300, S::kOk},
      {ts, good, body, now_s + 301, S::kStale},
      {ts, good, body, now_s - 301, S::kStale},
      {ts, good, body + "x", now_s, S::kBad},
      {ts, "v0=" + std::string(64, '0'), body, now_s, S::kBad},
      {ts, "", body, now_s, S::kMissing},
      {"", good, body, now_s, S::kMissing},
      {"12x", good, body, now_s, S::kBad},
      {std::to_string(now_s + 1), good, body, now_s, S::kBad},  // the signed timestamp counts
  };
  for (const Case& c : cases)
    EXPECT_EQ(
        notifier::VerifySlackSignature({"other", "s3cret"}, c.ts, c.sig, c.body, c.now_s * 1000000),
        c.want)
        << c.ts << " " << c.sig << " " << c.now_s;

  // Config: the app form needs channel and signing secret; url and bot_token exclude each other.
  setenv("BPMC_TEST_SLACK_BOT_TOKEN", kBotToken.c_str(), 1);
  setenv("BPMC_TEST_SLACK_SIGNING_SECRET", kSigningSecret.c_str(), 1);
  for (const auto& [yaml, key] : std::vector<std::pair<std::string, std::string>>{
           {"s: {type: slack, bot_token_env: BPMC_TEST_SLACK_BOT_TOKEN,"
            " signing_secret_env: BPMC_TEST_SLACK_SIGNING_SECRET}",
            "channels.s.channel"},
           {"s: {type: slack, bot_token_env: BPMC_TEST_SLACK_BOT_TOKEN, channel: C1}",
            "channels.s.signing_secret"},
           {"s: {type: slack, bot_token: xoxb-1, channel: C1}", "channels.s.bot_token"},
           {"s: {type: slack, url: 'http://x', channel: C1}", "channels.s.channel"},
           {"s: {type: slack, url: 'http://x', bot_token_env: BPMC_TEST_SLACK_BOT_TOKEN}",
            "channels.s.url"}}) {
    notifier::NotifierConfig c;
    std::string e;
    EXPECT_FALSE(notifier::ParseNotifierConfig(YAML::Load(yaml), YAML::Node(), &c, &e)) << yaml;
    EXPECT_EQ(e.rfind(key + ":", 0), 0u) << e;
  }
}

}  // namespace
}  // namespace bpmc::webhook_receiver
