// What each channel sends, built without a network (notifier/channels.h).
#include "notifier/channels.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "notifier/sms.h"
#include "recorders/smtp_recorder.h"
#include "test_util.h"

namespace bpmc::notifier {
namespace {

using test::MakeAlert;
using test::MustParse;
using Json = nlohmann::json;

class ChannelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::SetTestSecrets();
    config_ = MustParse(R"(
slack: {type: slack, url: "http://127.0.0.1:1/hook"}
pd: {type: pagerduty, url: "http://127.0.0.1:1/v2/enqueue", routing_key_env: BPMC_TEST_PD_KEY,
     severity_map: {info: warning}, component: connectors}
hook: {type: webhook, url: "http://127.0.0.1:1/in", secret_env: BPMC_TEST_HOOK_SECRET,
       headers: {X-Team: ops}}
sms: {type: sms, url: "http://127.0.0.1:1/sms", to: ["+15550001"], max_parts: 2,
      auth: {username: bpmc, password_env: BPMC_TEST_SMS_USER_PASSWORD}}
sms-form: {type: sms, url: "http://127.0.0.1:1/sms", to: ["+15550001"],
           content_type: application/x-www-form-urlencoded}
mail: {type: email, smtp: {url: "smtp://127.0.0.1:1", starttls: none}, from: "BPMC <a@b.example>",
       to: [oncall@b.example]}
)");
  }
  const ChannelConfig& Ch(const std::string& name) { return config_.channels.at(name); }
  Message Msg(const std::string& channel, std::vector<AlertView> alerts,
              const std::string& destination = "") {
    return Message{channel, destination, std::move(alerts), "mid-0123"};
  }
  NotifierConfig config_;
};

TEST_F(ChannelsTest, SlackSingleAlert) {
  const auto requests = BuildHttpRequests(Ch("slack"), Msg("slack", {MakeAlert("HighErrorRate")}));
  ASSERT_EQ(requests.size(), 1u);
  const HttpRequest& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "http://127.0.0.1:1/hook");
  const Json j = Json::parse(r.body);
  EXPECT_EQ(j["text"], "*FIRING* [critical] *HighErrorRate*: HighErrorRate summary");
  EXPECT_FALSE(j.contains("blocks"));  // a single alert needs no bundle header
  ASSERT_EQ(j["attachments"].size(), 1u);
  const Json& att = j["attachments"][0];
  EXPECT_EQ(att["color"], "#E01E5A");
  EXPECT_EQ(att["blocks"][0]["type"], "section");
  EXPECT_EQ(att["blocks"][0]["text"]["type"], "mrkdwn");
  EXPECT_NE(att["blocks"][0]["text"]["text"].get<std::string>().find("HighErrorRate description"),
            std::string::npos);
  const std::string context = att["blocks"][1]["elements"][0]["text"];
  EXPECT_NE(context.find("<https://runbooks.example/HighErrorRate|Runbook>"), std::string::npos);
  EXPECT_NE(context.find("<http://prometheus.example/graph?g0.expr=HighErrorRate|Source>"),
            std::string::npos);
}

TEST_F(ChannelsTest, SlackColoursBySeverityAndResolution) {
  EXPECT_EQ(SlackColor(MakeAlert("a", "firing", "critical")), "#E01E5A");
  EXPECT_EQ(SlackColor(MakeAlert("a", "firing", "warning")), "#ECB22E");
  EXPECT_EQ(SlackColor(MakeAlert("a", "firing", "info")), "#36C5F0");
  EXPECT_EQ(SlackColor(MakeAlert("a", "resolved", "critical")), "#2EB67D");
}

TEST_F(ChannelsTest, SlackBundleListsEveryAlertInTheFallback) {
  std::vector<AlertView> alerts;
  for (int i = 0; i < 30; ++i)
    alerts.push_back(MakeAlert("A" + std::to_string(i), i % 3 ? "firing" : "resolved"));
  const Json j = Json::parse(BuildHttpRequests(Ch("slack"), Msg("slack", alerts))[0].body);
  const std::string text = j["text"];
  EXPECT_EQ(text.rfind("*30 alerts* (20 firing, 10 resolved)", 0), 0u) << text;
  for (int i = 0; i < 30; ++i) {
    EXPECT_NE(text.find("*A" + std::to_string(i) + "*:"), std::string::npos) << i;
  }
  EXPECT_EQ(j["blocks"].size(), 1u);
  EXPECT_EQ(j["attachments"].size(), 21u);  // 20 shown + "and 10 more"
}

TEST_F(ChannelsTest, SlackEscapesMrkdwnControlCharacters) {
  AlertView a = MakeAlert("X");
  a.summary = "<!channel> & friends";
  const Json j = Json::parse(BuildHttpRequests(Ch("slack"), Msg("slack", {a}))[0].body);
  EXPECT_NE(j["text"].get<std::string>().find("&lt;!channel&gt; &amp; friends"), std::string::npos);
}

TEST_F(ChannelsTest, PagerDutyTrigger) {
  const HttpRequest r =
      BuildHttpRequests(Ch("pd"), Msg("pd", {MakeAlert("Down", "firing", "info")}))[0];
  EXPECT_EQ(r.url, "http://127.0.0.1:1/v2/enqueue");
  const Json j = Json::parse(r.body);
  EXPECT_EQ(j["routing_key"], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(j["event_action"], "trigger");
  EXPECT_EQ(j["dedup_key"], "fp-Down");
  EXPECT_EQ(j["payload"]["summary"], "[info] Down: Down summary");
  EXPECT_EQ(j["payload"]["severity"], "warning");   // mapped by severity_map
  EXPECT_EQ(j["payload"]["source"], "crm-1:9100");  // the instance label
  EXPECT_EQ(j["payload"]["timestamp"], "2026-11-25T10:00:00Z");
  EXPECT_EQ(j["payload"]["component"], "connectors");
  EXPECT_EQ(j["payload"]["class"], "Down");
  EXPECT_EQ(j["payload"]["custom_details"]["labels"]["instance"], "crm-1:9100");
  EXPECT_EQ(j["payload"]["custom_details"]["description"], "Down description");
  ASSERT_EQ(j["links"].size(), 2u);
  EXPECT_EQ(j["links"][0]["href"], "http://prometheus.example/graph?g0.expr=Down");
  EXPECT_EQ(j["links"][1]["text"], "Runbook");
}

TEST_F(ChannelsTest, PagerDutyResolveReusesTheKey) {
  const Json j =
      Json::parse(BuildHttpRequests(Ch("pd"), Msg("pd", {MakeAlert("Down", "resolved")}))[0].body);
  EXPECT_EQ(j["event_action"], "resolve");
  EXPECT_EQ(j["dedup_key"], "fp-Down");
  EXPECT_FALSE(j.contains("payload"));
}

TEST_F(ChannelsTest, PagerDutyLimits) {
  AlertView a = MakeAlert("Long");
  a.dedup_key = std::string(300, 'k');
  a.summary = std::string(2000, 's');
  const Json j = Json::parse(BuildHttpRequests(Ch("pd"), Msg("pd", {a}))[0].body);
  EXPECT_EQ(j["dedup_key"], HexEncode(Sha256(a.dedup_key)));  // stable, 64 chars
  EXPECT_LE(j["payload"]["summary"].get<std::string>().size(), 1024u);
  EXPECT_EQ(PagerDutySeverity(Ch("pd").pagerduty, "critical"), "critical");
  EXPECT_EQ(PagerDutySeverity(Ch("pd").pagerduty, "bogus"), "info");
  EXPECT_FALSE(CanBundle(Ch("pd")));
  EXPECT_TRUE(CanBundle(Ch("slack")));
}

TEST_F(ChannelsTest, WebhookSignsTheBody) {
  const HttpRequest r =
      BuildHttpRequests(Ch("hook"), Msg("hook", {MakeAlert("A"), MakeAlert("B", "resolved")}))[0];
  const Json j = Json::parse(r.body);
  EXPECT_EQ(j["version"], "1");
  EXPECT_EQ(j["message_id"], "mid-0123");
  EXPECT_EQ(j["status"], "firing");
  EXPECT_EQ(j["count"], 2);
  EXPECT_EQ(AlertViewFromJson(j["alerts"][1]).status, "resolved");
  EXPECT_EQ(AlertViewFromJson(j["alerts"][0]).labels.at("instance"), "crm-1:9100");
  std::string signature, team, key;
  for (const auto& [k, v] : r.headers) {
    if (k == "X-BPMC-Signature") signature = v;
    if (k == "X-Team") team = v;
    if (k == "Idempotency-Key") key = v;
  }
  EXPECT_EQ(signature, "sha256=" + HexEncode(HmacSha256("s3cret", r.body)));
  EXPECT_EQ(team, "ops");
  EXPECT_EQ(key, "mid-0123");
}

TEST_F(ChannelsTest, SmsJsonBodyAndParts) {
  AlertView a = MakeAlert("VeryLongAlert");
  a.summary = std::string(200, 'x');
  const auto requests = BuildHttpRequests(Ch("sms"), Msg("sms", {a}, "+15550001"));
  ASSERT_EQ(requests.size(), 2u);  // max_parts: 2
  std::string joined;
  for (const auto& r : requests) {
    const Json j = Json::parse(r.body);
    EXPECT_EQ(j["to"], "+15550001");
    joined += j["text"].get<std::string>();
    EXPECT_LE(MeasureSms(j["text"].get<std::string>()).units, 153);
    bool basic = false;
    for (const auto& [k, v] : r.headers)
      basic = basic || (k == "Authorization" && v == "Basic YnBtYzpwdw==");
    EXPECT_TRUE(basic);
  }
  EXPECT_EQ(joined.rfind("FIRING critical VeryLongAlert: xxx", 0), 0u);
}

TEST_F(ChannelsTest, SmsFormBody) {
  const auto requests =
      BuildHttpRequests(Ch("sms-form"), Msg("sms-form", {MakeAlert("Down")}, "+15550001"));
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].body, "to=%2B15550001&text=FIRING+critical+Down%3A+Down+summary");
}

TEST_F(ChannelsTest, SmsBundleFitsOneMessage) {
  std::vector<AlertView> alerts;
  for (int i = 0; i < 40; ++i) alerts.push_back(MakeAlert("Alert" + std::to_string(i)));
  const auto requests = BuildHttpRequests(Ch("sms-form"), Msg("sms-form", alerts, "+1"));
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_NE(requests[0].body.find("BPMC+40+alerts"), std::string::npos) << requests[0].body;
}

TEST_F(ChannelsTest, EmailTextAndHtml) {
  std::vector<AlertView> alerts = {MakeAlert("A"), MakeAlert("B", "resolved")};
  alerts[0].description = "<script>x</script>";
  const MailMessage mail = BuildMail(Ch("mail"), Msg("mail", alerts, "oncall@b.example"));
  EXPECT_EQ(mail.from, "BPMC <a@b.example>");
  EXPECT_EQ(mail.to, std::vector<std::string>{"oncall@b.example"});
  EXPECT_EQ(mail.subject, "[BPMC] 2 alerts: 1 firing, 1 resolved");
  EXPECT_NE(mail.text.find("[FIRING] critical A: A summary"), std::string::npos);
  EXPECT_NE(mail.text.find("[RESOLVED] critical B: B summary"), std::string::npos);
  EXPECT_NE(mail.text.find("Runbook: https://runbooks.example/A"), std::string::npos);
  EXPECT_NE(mail.html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(mail.html.find("<script>"), std::string::npos);
  EXPECT_EQ(mail.message_id, "mid-0123@bpmc");
  EXPECT_EQ(BuildMail(Ch("mail"), Msg("mail", {MakeAlert("A")}, "x@y")).subject,
            "[FIRING critical] A: A summary");
}

// A page as incidents/model.h PageView makes it: the alert's own fields plus page_* texts.
AlertView MakePage(bool first) {
  AlertView a = MakeAlert("HighErrorRate");
  a.source = "incident";
  a.dedup_key = "incident-1";
  a.summary = "5% of requests fail";
  a.annotations = {
      {"incident_id", "1"},
      {"ack_url", "https://b.example/ack/1/1796713539/ivan/sig?a=1&b=2"},
      {"incident_url", "https://b.example/console/#/incidents/1"},
      {"page_subject", "[BPMC #1] critical: HighErrorRate on CRM Connector"},
      {"page_headline", "Triggered at 10:05 MSK"},
      {"page_text",
       "Incident #1: HighErrorRate on CRM Connector\nTriggered at 10:05 MSK\n"
       "5% of requests fail\n\nAcknowledge: https://b.example/ack/1/1796713539/ivan/sig?a=1&b=2\n"
       "Open incident: https://b.example/console/#/incidents/1\n"},
      {"page_sms", "BPMC #1 ack: https://b.example/ack/1/x crit HighErrorRate on CRM Connector"},
      {"page_ack_label", "Acknowledge"},
      {"page_open_label", "Open incident"},
      {"mail_thread", "bpmc-incident-1@bpmc"}};
  if (first) a.annotations["mail_thread_root"] = "1";
  a.description = a.annotations["page_text"];
  return a;
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST_F(ChannelsTest, PageMailHasAShortSubjectButtonsAndAThread) {
  const MailMessage first = BuildMail(Ch("mail"), Msg("mail", {MakePage(true)}, "o@b.example"));
  EXPECT_EQ(first.subject, "[BPMC #1] critical: HighErrorRate on CRM Connector");
  EXPECT_EQ(first.message_id, "bpmc-incident-1@bpmc");  // the thread's root
  EXPECT_EQ(first.in_reply_to, "");
  // The text names each link once; the HTML has them as buttons, once each.
  EXPECT_EQ(Count(first.text, "https://b.example/ack/"), 1u) << first.text;
  EXPECT_EQ(Count(first.text, "https://b.example/console/"), 1u) << first.text;
  EXPECT_EQ(Count(first.text, "5% of requests fail"), 1u) << first.text;
  EXPECT_NE(first.text.find("Runbook: https://runbooks.example/HighErrorRate"), std::string::npos);
  EXPECT_EQ(Count(first.html, "href=\"https://b.example/ack/1/1796713539/ivan/sig?a=1&amp;b=2\""),
            1u)
      << first.html;
  EXPECT_EQ(Count(first.html, ">Acknowledge</a>"), 1u) << first.html;
  EXPECT_EQ(Count(first.html, ">Open incident</a>"), 1u) << first.html;
  EXPECT_EQ(Count(first.html, "5% of requests fail"), 1u) << first.html;

  const MailMessage later = BuildMail(Ch("mail"), Msg("mail", {MakePage(false)}, "o@b.example"));
  EXPECT_EQ(later.subject, first.subject);
  EXPECT_EQ(later.message_id, "mid-0123@bpmc");
  EXPECT_EQ(later.in_reply_to, "bpmc-incident-1@bpmc");
  const recorders::ParsedMail parsed = recorders::ParseMail(BuildMimeMessage(later, "d"));
  EXPECT_EQ(parsed.Header("in-reply-to"), "<bpmc-incident-1@bpmc>");
  EXPECT_EQ(parsed.Header("references"), "<bpmc-incident-1@bpmc>");
}

TEST_F(ChannelsTest, ConfiguredTemplatesWinOverThePageTexts) {
  const NotifierConfig config = MustParse(R"(
mail: {type: email, smtp: {url: "smtp://127.0.0.1:1", starttls: none}, from: a@b.example,
       to: [o@b.example], subject_template: "{{alertname}} / {{annotations.page_subject}}"}
)");
  const MailMessage mail =
      BuildMail(config.channels.at("mail"), Msg("mail", {MakePage(false)}, "o@b.example"));
  EXPECT_EQ(mail.subject, "HighErrorRate / [BPMC #1] critical: HighErrorRate on CRM Connector");
  EXPECT_EQ(mail.in_reply_to, "bpmc-incident-1@bpmc");  // threading whatever the template
}

TEST_F(ChannelsTest, PageSlackHasLinkButtonsAndNoRepeatedLinks) {
  const auto requests = BuildHttpRequests(Ch("slack"), Msg("slack", {MakePage(true)}));
  ASSERT_EQ(requests.size(), 1u);
  const Json j = Json::parse(requests[0].body);
  EXPECT_EQ(j["text"], "*[BPMC #1] critical: HighErrorRate on CRM Connector*");
  const Json& blocks = j["attachments"][0]["blocks"];
  const std::string section = blocks[0]["text"]["text"];
  EXPECT_EQ(section.find("https://b.example/"), std::string::npos) << section;
  EXPECT_NE(section.find("Triggered at 10:05 MSK"), std::string::npos) << section;
  ASSERT_EQ(blocks.size(), 3u) << blocks.dump();
  const Json& actions = blocks[2];
  EXPECT_EQ(actions["type"], "actions");
  ASSERT_EQ(actions["elements"].size(), 2u);
  EXPECT_EQ(actions["elements"][0]["url"], "https://b.example/ack/1/1796713539/ivan/sig?a=1&b=2");
  EXPECT_EQ(actions["elements"][0]["text"]["text"], "Acknowledge");
  EXPECT_EQ(actions["elements"][0]["style"], "danger");
  EXPECT_EQ(actions["elements"][1]["url"], "https://b.example/console/#/incidents/1");
  // An unsafe link gets no button; an ordinary alert none at all.
  AlertView evil = MakePage(true);
  evil.annotations["ack_url"] = "javascript:alert(1)";
  const Json e = Json::parse(BuildHttpRequests(Ch("slack"), Msg("slack", {evil}))[0].body);
  EXPECT_EQ(e["attachments"][0]["blocks"][2]["elements"].size(), 1u);
  const Json plain =
      Json::parse(BuildHttpRequests(Ch("slack"), Msg("slack", {MakeAlert("A")}))[0].body);
  EXPECT_EQ(plain["attachments"][0]["blocks"].size(), 2u);
}

TEST_F(ChannelsTest, PageSmsIsThePageSmsText) {
  const auto requests = BuildHttpRequests(Ch("sms"), Msg("sms", {MakePage(true)}, "+1"));
  ASSERT_EQ(requests.size(), 1u);
  const Json j = Json::parse(requests[0].body);
  EXPECT_EQ(j["text"],
            "BPMC #1 ack: https://b.example/ack/1/x crit HighErrorRate on CRM Connector");
}

TEST_F(ChannelsTest, PagePagerDutySummaryIsTheSubject) {
  const auto requests = BuildHttpRequests(Ch("pd"), Msg("pd", {MakePage(true)}));
  const Json j = Json::parse(requests[0].body);
  EXPECT_EQ(j["payload"]["summary"], "[BPMC #1] critical: HighErrorRate on CRM Connector");
}

TEST(MimeTest, RoundTripsThroughAParser) {
  MailMessage m;
  m.from = "BPM Centr <alerts@bpmc.example>";
  m.to = {"a@x.example", "b@x.example"};
  m.subject = "Сервис недоступен: a long Cyrillic subject that needs several encoded words";
  m.text = "plain\r\n.leading dot\nüñí";
  m.html = "<p>html</p>";
  m.message_id = "abc@bpmc";
  const std::string raw = BuildMimeMessage(m, "Wed, 25 Nov 2026 10:00:00 +0000");
  for (size_t pos = 0, eol; (eol = raw.find("\r\n", pos)) != std::string::npos; pos = eol + 2) {
    EXPECT_LE(eol - pos, 78u) << raw.substr(pos, eol - pos);  // RFC 5322 line length
  }
  const recorders::ParsedMail parsed = recorders::ParseMail(raw);
  EXPECT_EQ(parsed.Header("subject"), m.subject);
  EXPECT_EQ(parsed.Header("to"), "a@x.example, b@x.example");
  EXPECT_EQ(parsed.Header("message-id"), "<abc@bpmc>");
  EXPECT_EQ(parsed.Header("date"), "Wed, 25 Nov 2026 10:00:00 +0000");
  EXPECT_EQ(parsed.text, m.text);
  EXPECT_EQ(parsed.html, m.html);

  m.html.clear();
  m.subject = "Injected\r\nBcc: evil@x";
  const recorders::ParsedMail plain = recorders::ParseMail(BuildMimeMessage(m, "d"));
  EXPECT_EQ(plain.text, m.text);
  EXPECT_EQ(plain.Header("bcc"), "");
}

}  // namespace
}  // namespace bpmc::notifier
