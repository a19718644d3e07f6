// Pure parts of the incidents library: signed ack links, grouping, the common
// connector, pages, the post-incident report, and the config sections.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "common/time_format.h"
#include "incidents/api.h"
#include "incidents/config.h"
#include "incidents/links.h"
#include "incidents/model.h"
#include "incidents/overrides.h"
#include "webhook_receiver/config.h"

namespace bpmc::incidents {
namespace {

constexpr const char* kSecret = "0123456789abcdef-secret";

TEST(AckLinkTest, RoundTripsAndRefusesTampering) {
  const AckClaim claim{42, 2000000000, "alice"};
  const std::string token = AckToken(kSecret, claim);
  EXPECT_EQ(token.rfind("42/2000000000/alice/", 0), 0u) << token;
  AckClaim out;
  ASSERT_EQ(VerifyAckToken(kSecret, token, 1999999999, &out), LinkCheck::kOk);
  EXPECT_EQ(out.incident_id, 42);
  EXPECT_EQ(out.person, "alice");

  struct Case {
    std::string name, token;
    int64_t now;
    LinkCheck want;
  };
  const std::string sig = token.substr(token.rfind('/') + 1);
  const Case cases[] = {
      {"expired at the instant", token, 2000000000, LinkCheck::kExpired},
      {"other incident", "43/2000000000/alice/" + sig, 0, LinkCheck::kBadSignature},
      {"longer life", "42/2000000001/alice/" + sig, 0, LinkCheck::kBadSignature},
      {"other person", "42/2000000000/bob/" + sig, 0, LinkCheck::kBadSignature},
      {"no person", "42/2000000000/_/" + sig, 0, LinkCheck::kBadSignature},
      {"short signature", "42/2000000000/alice/" + sig.substr(1), 0, LinkCheck::kMalformed},
      {"extra part", token + "/x", 0, LinkCheck::kMalformed},
      {"missing part", "42/2000000000/" + sig, 0, LinkCheck::kMalformed},
      {"letters in id", "4x/2000000000/alice/" + sig, 0, LinkCheck::kMalformed},
      {"empty", "", 0, LinkCheck::kMalformed},
  };
  for (const Case& c : cases) {
    AckClaim o;
    EXPECT_EQ(VerifyAckToken(kSecret, c.token, c.now, &o), c.want) << c.name;
  }
  EXPECT_EQ(VerifyAckToken("another-secret-0000", token, 0, &out), LinkCheck::kBadSignature);
  EXPECT_EQ(VerifyAckToken("", token, 0, &out), LinkCheck::kBadSignature);
}

TEST(AckLinkTest, ChannelPagesHaveNoPerson) {
  const std::string url = AckUrl("https://alerts.example", kSecret, {7, 100, ""});
  EXPECT_EQ(url.rfind("https://alerts.example/ack/7/100/_/", 0), 0u) << url;
  AckClaim out;
  ASSERT_EQ(VerifyAckToken(kSecret, url.substr(url.find("/ack/") + 5), 99, &out), LinkCheck::kOk);
  EXPECT_EQ(out.person, "");
}

TEST(GroupingTest, OneIncidentPerAlertmanagerGroupElsePerAlert) {
  struct Case {
    const char *source, *group, *dedup, *want;
  };
  const Case cases[] = {
      {"alertmanager", "{}:{alertname=\"X\"}", "fp1", "am:{}:{alertname=\"X\"}"},
      {"alertmanager", "", "fp1", "alertmanager:fp1"},
      {"sentry", "ignored", "issue-9", "sentry:issue-9"},
      {"generic", "", "k", "generic:k"},
  };
  for (const Case& c : cases) EXPECT_EQ(IncidentGroupKey(c.source, c.group, c.dedup), c.want);
}

TEST(GroupingTest, ConnectorIsTheLabelCommonToAllAlerts) {
  struct Case {
    std::string current;
    bool first;
    std::string label, want;
  };
  const Case cases[] = {
      {"", true, "stripe", "stripe"},  {"stripe", false, "stripe", "stripe"},
      {"stripe", false, "paypal", ""}, {"stripe", false, "", ""},
      {"", false, "stripe", ""},       {"", true, "", ""},
  };
  for (const Case& c : cases)
    EXPECT_EQ(MergeConnector(c.current, c.first, c.label), c.want) << c.current << " + " << c.label;
  EXPECT_EQ(MoreSevere("warning", "critical"), "critical");
  EXPECT_EQ(MoreSevere("critical", "info"), "critical");
  EXPECT_EQ(MoreSevere("info", "warning"), "warning");
}

// 2026-12-07 07:05:00 UTC = 10:05 in Moscow.
constexpr int64_t kAt = 1796627100000000;

PageFacts Facts(const std::string& event, const std::string& locale) {
  PageFacts f;
  f.incident_id = 1;
  f.event = event;
  f.locale = locale;
  f.severity = "critical";
  f.alertname = "HighErrorRate";
  f.connector_name = "CRM Connector";
  f.summary = "5% of requests fail";
  f.actor = "Ivan";
  f.at_us = kAt;
  f.ack_url = "https://b.example/ack/1/1796713539/ivan/NqKRmOgnNdTDjm4Hv4gaQc";
  f.incident_url = "https://b.example/console/#/incidents/1";
  return f;
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(PageTextTest, Table) {
  const std::string ack = "https://b.example/ack/1/1796713539/ivan/NqKRmOgnNdTDjm4Hv4gaQc";
  const std::string page = "https://b.example/console/#/incidents/1";
  struct Case {
    std::string event, locale, headline, sms;
    bool asks_ack;
  };
  const Case cases[] = {
      {"firing", "en", "Triggered at 10:05 MSK",
       "BPMC #1 ack: " + ack + " crit HighErrorRate on CRM Connector", true},
      {"firing", "ru", "Сработал в 10:05 МСК",
       "BPMC #1 ack: " + ack + " crit HighErrorRate on CRM Connector", true},
      {"escalated", "en", "Escalated at 10:05 MSK: not acknowledged yet",
       "BPMC #1 ack: " + ack + " crit HighErrorRate on CRM Connector", true},
      {"escalated", "ru", "Эскалирован в 10:05 МСК: никто не подтвердил",
       "BPMC #1 ack: " + ack + " crit HighErrorRate on CRM Connector", true},
      {"acknowledged", "en", "Acknowledged by Ivan at 10:05 MSK",
       "BPMC #1 acked by Ivan: crit HighErrorRate on CRM Connector", false},
      {"acknowledged", "ru", "Подтверждён в 10:05 МСК (Ivan)",
       "BPMC #1 acked by Ivan: crit HighErrorRate on CRM Connector", false},
      {"resolved", "en", "Resolved by Ivan at 10:05 MSK",
       "BPMC #1 resolved: crit HighErrorRate on CRM Connector", false},
      {"resolved", "ru", "Решён в 10:05 МСК (Ivan)",
       "BPMC #1 resolved: crit HighErrorRate on CRM Connector", false},
      {"reassigned", "en", "Reassigned to you by Ivan at 10:05 MSK",
       "BPMC #1 ack: " + ack + " crit HighErrorRate on CRM Connector", true},
      {"snooze_ended", "en", "Snooze ended at 10:05 MSK: the incident is open again",
       "BPMC #1 ack: " + ack + " crit HighErrorRate on CRM Connector", true},
      {"snooze_ended", "ru", "Откладывание закончилось в 10:05 МСК: инцидент снова открыт",
       "BPMC #1 ack: " + ack + " crit HighErrorRate on CRM Connector", true},
  };
  for (const Case& c : cases) {
    const PageText t = RenderPage(Facts(c.event, c.locale));
    const std::string name = c.event + "/" + c.locale;
    // The subject is the same for every event: mail clients thread on it.
    EXPECT_EQ(t.subject, c.locale == "en" ? "[BPMC #1] critical: HighErrorRate on CRM Connector"
                                          : "[BPMC #1] critical: HighErrorRate на CRM Connector")
        << name;
    EXPECT_EQ(t.subject.find("http"), std::string::npos) << name;
    EXPECT_EQ(t.headline, c.headline) << name;
    EXPECT_EQ(t.sms, c.sms) << name;
    // Each link at most once, the ack link only on pages that ask for one.
    EXPECT_EQ(Count(t.text, ack), c.asks_ack ? 1u : 0u) << name << "\n" << t.text;
    EXPECT_EQ(Count(t.text, page), 1u) << name << "\n" << t.text;
    EXPECT_EQ(Count(t.text, "5% of requests fail"), 1u) << name;
    EXPECT_NE(t.text.find(c.headline), std::string::npos) << name;
  }
}

TEST(PageTextTest, SmsFitsOneSegmentWithATypicalLink) {
  const PageText t = RenderPage(Facts("firing", "ru"));
  EXPECT_LE(t.sms.size(), 160u) << t.sms;
  for (unsigned char ch : t.sms) EXPECT_LT(ch, 0x80) << "GSM-7 only: " << t.sms;
}

TEST(PageTextTest, FallsBackWithoutConnectorOrLinks) {
  PageFacts f = Facts("firing", "en");
  f.connector_name = "";
  f.ack_url = "";
  f.incident_url = "";
  f.summary = "HighErrorRate";  // the same as the name: not repeated
  const PageText t = RenderPage(f);
  EXPECT_EQ(t.subject, "[BPMC #1] critical: HighErrorRate");
  EXPECT_EQ(t.sms, "BPMC #1 crit HighErrorRate");
  EXPECT_EQ(Count(t.text, "HighErrorRate"), 1u) << t.text;
  EXPECT_EQ(t.text.find("http"), std::string::npos) << t.text;
}

TEST(PageTextTest, ClockTimeInTheReadersZone) {
  struct Case {
    int offset;
    std::string zone, locale, want;
  };
  const Case cases[] = {
      {3 * 3600, "Europe/Moscow", "en", "10:05 MSK"},
      {3 * 3600, "Europe/Moscow", "ru", "10:05 МСК"},
      {5 * 3600, "Asia/Yekaterinburg", "en", "12:05 UTC+5"},
      {0, "UTC", "en", "07:05 UTC+0"},
      {-(3 * 3600 + 1800), "America/St_Johns", "en", "03:35 UTC-3:30"},
      {-10 * 3600, "Pacific/Honolulu", "ru", "21:05 UTC-10"},  // the day before
  };
  for (const Case& c : cases)
    EXPECT_EQ(ClockTime(kAt, c.offset, c.zone, c.locale), c.want) << c.zone;
}

TEST(PageTest, AlertFieldsStayTheAlertsAndPageTextsTravelInAnnotations) {
  PageInput in;
  in.incident_id = 12;
  in.title = "ConnectorDown: stripe is down";
  in.alertname = "ConnectorDown";
  in.connector_name = "Stripe";
  in.severity = "critical";
  in.dedup_key = "incident-12";
  in.status = "firing";
  in.created_us = 1764150000000000;
  in.first_summary = "stripe is down";
  in.alert_count = 3;
  in.ack_url = "https://a.example/ack/12/1/alice/sig";
  in.incident_url = "https://a.example/console/#/incidents/12";
  in.locale = "en";
  in.at_us = kAt;
  in.first_page = true;
  const notifier::AlertView v = PageView(in);
  EXPECT_EQ(v.alertname, "ConnectorDown");
  EXPECT_EQ(v.summary, "stripe is down");
  EXPECT_EQ(v.summary.find("http"), std::string::npos);
  EXPECT_EQ(v.annotations.at("page_subject"), "[BPMC #12] critical: ConnectorDown on Stripe");
  EXPECT_EQ(v.annotations.at("page_sms").rfind("BPMC #12 ack: https://a.example/ack/", 0), 0u);
  EXPECT_EQ(v.annotations.at("ack_url"), in.ack_url);
  EXPECT_EQ(v.annotations.at("incident_url"), in.incident_url);
  EXPECT_EQ(v.annotations.at("incident_id"), "12");
  EXPECT_EQ(v.annotations.at("mail_thread"), "bpmc-incident-12@bpmc");
  EXPECT_EQ(v.annotations.at("mail_thread_root"), "1");
  EXPECT_EQ(v.description, v.annotations.at("page_text"));
  EXPECT_EQ(v.source, "incident");
  EXPECT_EQ(v.starts_at, FormatRfc3339Micros(in.created_us));

  in.status = "resolved";
  in.event = "resolved";
  in.first_page = false;
  in.ended_us = in.created_us + 60000000;
  const notifier::AlertView r = PageView(in);
  EXPECT_EQ(r.annotations.count("ack_url"), 0u) << "no link once resolved";
  EXPECT_EQ(r.description.find("/ack/"), std::string::npos);
  EXPECT_EQ(r.annotations.count("mail_thread_root"), 0u);
  EXPECT_EQ(r.annotations.at("page_subject"), v.annotations.at("page_subject"));
  EXPECT_FALSE(r.ends_at.empty());
}

// What FindTooDeep names for 5,000 nested arrays: the element that opens level 33.
std::string DeepArrayPath() {
  std::string p;
  for (int i = 0; i < 32; ++i) p += "[0]";
  return p;
}

TEST(ActionRequestTest, Snooze) {
  const std::string kDeepPath = DeepArrayPath();
  struct Case {
    std::string body;
    int64_t want;  // 0 = refused
    std::string field;
  };
  const Case cases[] = {
      {R"({"duration":"30m"})", 30 * 60'000'000LL, ""},
      {R"({"duration":"1h30m"})", 90 * 60'000'000LL, ""},
      {R"({"duration":"1m"})", 60'000'000LL, ""},
      {R"({"duration":"24h"})", 24 * 3600'000'000LL, ""},
      {R"({"duration":"59s"})", 0, "duration"},
      {R"({"duration":"25h"})", 0, "duration"},
      {R"({"duration":"0"})", 0, "duration"},
      {R"({"duration":"-5m"})", 0, "duration"},
      {R"({"duration":30})", 0, "duration"},
      {R"({"duration":")" + std::string(10000, '9') + R"(m"})", 0, "duration"},
      {R"({})", 0, "duration"},
      {R"({"duration":"30m","until":"x"})", 0, "until"},
      {R"([1])", 0, ""},
      {"not json", 0, ""},
      {"", 0, ""},
      {std::string(5000, '[') + std::string(5000, ']'), 0, kDeepPath},
  };
  for (const Case& c : cases) {
    const auto got = ParseSnoozeRequest(c.body);
    if (c.want) {
      ASSERT_TRUE(std::holds_alternative<int64_t>(got)) << c.body;
      EXPECT_EQ(std::get<int64_t>(got), c.want) << c.body;
    } else {
      ASSERT_TRUE(std::holds_alternative<RequestError>(got)) << c.body.substr(0, 80);
      EXPECT_EQ(std::get<RequestError>(got).http_status, 400);
      EXPECT_EQ(std::get<RequestError>(got).field, c.field) << c.body.substr(0, 80);
    }
  }
}

TEST(ActionRequestTest, Reassign) {
  oncall::OnCallConfig config;
  config.people["ivan"].id = "ivan";
  config.schedules["primary"].id = "primary";
  struct Case {
    std::string body;
    std::string field;  // "" = accepted
    oncall::Target::Kind kind;
  };
  const Case cases[] = {
      {R"({"person":"ivan"})", "", oncall::Target::Kind::kPerson},
      {R"({"schedule":"primary"})", "", oncall::Target::Kind::kSchedule},
      {R"({"person":"nobody"})", "person", {}},
      {R"({"schedule":"ivan"})", "schedule", {}},
      {R"({"person":"ivan","schedule":"primary"})", "person", {}},
      {R"({})", "person", {}},
      {R"({"person":7})", "person", {}},
      {R"({"person":")" + std::string(10000, 'x') + R"("})", "person", {}},
      {R"({"team":"x"})", "team", {}},
  };
  for (const Case& c : cases) {
    const auto got = ParseReassignRequest(c.body, config);
    if (c.field.empty()) {
      ASSERT_TRUE(std::holds_alternative<oncall::Target>(got)) << c.body;
      EXPECT_EQ(std::get<oncall::Target>(got).kind, c.kind);
    } else {
      ASSERT_TRUE(std::holds_alternative<RequestError>(got)) << c.body.substr(0, 80);
      EXPECT_EQ(std::get<RequestError>(got).field, c.field) << c.body.substr(0, 80);
      EXPECT_LT(std::get<RequestError>(got).message.size(), 200u);
    }
  }
}

IncidentRecord SampleIncident() {
  IncidentRecord i;
  i.id = 5;
  i.title = "ConnectorDown | stripe";
  i.severity = "critical";
  i.status = "resolved";
  i.connector = "stripe";
  i.escalation_policy = "primary";
  i.created_us = 1764150000000000;
  i.acknowledged_us = i.created_us + 125000000;  // 2m 5s
  i.acknowledged_by = "alice";
  i.resolved_us = i.created_us + 3725000000;  // 1h 2m 5s
  i.resolved_by = "alertmanager";
  i.alerts.push_back({"alertmanager", "fp1", "resolved", "ConnectorDown", i.created_us});
  i.paged.push_back({"alice", "ops-slack", "", i.created_us});
  TimelineEntry note;
  note.at_us = i.created_us + 200000000;
  note.kind = "note";
  note.actor = "alice";
  note.detail = {{"text", "restarted the stripe poller"}};
  TimelineEntry notified;
  notified.at_us = i.created_us;
  notified.kind = "notified";
  notified.channel = "ops-slack";
  notified.person = "alice";
  notified.result = "delivered";
  i.timeline = {notified, note};
  return i;
}

TEST(ReportTest, HasTheAnalysisFacts) {
  const std::string md = ReportMarkdown(SampleIncident());
  for (const char* want :
       {"# Incident #5: ConnectorDown   stripe", "| Time to acknowledge | 2m 5s |",
        "| Time to resolve | 1h 2m 5s |", "by alice", "## Who was paged", "| alice | ops-slack |",
        "| notified |  | ops-slack | alice | delivered |", "## Notes",
        "alice: restarted the stripe poller", "| Connector | stripe |"})
    EXPECT_NE(md.find(want), std::string::npos) << "missing: " << want << "\n" << md;
}

TEST(ReportTest, JsonHasDurationsAndNulls) {
  IncidentRecord i = SampleIncident();
  nlohmann::json j = IncidentJson(i, true);
  EXPECT_DOUBLE_EQ(j["time_to_acknowledge_seconds"].get<double>(), 125.0);
  EXPECT_DOUBLE_EQ(j["time_to_resolve_seconds"].get<double>(), 3725.0);
  EXPECT_EQ(j["timeline"].size(), 2u);
  i.acknowledged_us.reset();
  i.acknowledged_by.clear();
  j = IncidentJson(i, false);
  EXPECT_TRUE(j["time_to_acknowledge_seconds"].is_null());
  EXPECT_TRUE(j["acknowledged_by"].is_null());
  EXPECT_FALSE(j.contains("timeline"));
}

TEST(ReportTest, HumanDurations) {
  EXPECT_EQ(HumanDuration(0), "0s");
  EXPECT_EQ(HumanDuration(59999999), "59s");
  EXPECT_EQ(HumanDuration(60000000), "1m 0s");
  EXPECT_EQ(HumanDuration(3600000000), "1h 0m 0s");
  EXPECT_EQ(HumanDuration(90000000000), "1d 1h 0m 0s");
  EXPECT_EQ(HumanDuration(-5), "0s");
}

TEST(OverrideRequestTest, CheckedLikeTheYamlOnes) {
  oncall::OnCallConfig config;
  config.schedules["primary"] = {};
  config.people["bob"] = {};
  const int64_t now = *ParseRfc3339Micros("2026-12-07T12:00:00Z");
  auto ok = ParseOverrideRequest(
      R"({"schedule":"primary","person":"bob","from":"2026-12-07T18:00:00+03:00",)"
      R"("to":"2026-12-08T09:00:00+03:00","reason":"swap with ann"})",
      config, now);
  ASSERT_TRUE(std::holds_alternative<OverrideRequest>(ok)) << std::get<RequestError>(ok).message;
  const OverrideRequest& r = std::get<OverrideRequest>(ok);
  EXPECT_EQ(r.override.from_micros, *ParseRfc3339Micros("2026-12-07T15:00:00Z"));
  EXPECT_EQ(r.override.to_micros, *ParseRfc3339Micros("2026-12-08T06:00:00Z"));
  EXPECT_EQ(r.reason, "swap with ann");
  std::string deep_path;  // the container past kMaxJsonDepth
  for (int i = 0; i < 32; ++i) deep_path += "[0]";
  const std::string good_times =
      R"("from":"2026-12-07T18:00:00+03:00","to":"2026-12-08T09:00:00+03:00")";
  const std::pair<std::string, std::string> bad[] = {
      {"", ""},
      {"[1]", ""},
      {std::string(40, '[') + std::string(40, ']'), deep_path},
      {R"({"person":"bob",)" + good_times + "}", "schedule"},
      {R"({"schedule":"nope","person":"bob",)" + good_times + "}", "schedule"},
      {R"({"schedule":"primary","person":"zoe",)" + good_times + "}", "person"},
      {R"({"schedule":"primary","person":7,)" + good_times + "}", "person"},
      {R"({"schedule":"primary","person":"bob","to":"2026-12-08T09:00:00+03:00"})", "from"},
      {R"({"schedule":"primary","person":"bob","from":"2026-12-07T18:00:00",)"
       R"("to":"2026-12-08T09:00:00+03:00"})",
       "from"},  // no offset: whose 18:00?
      {R"({"schedule":"primary","person":"bob","from":"2026-12-08T09:00:00+03:00",)"
       R"("to":"2026-12-07T18:00:00+03:00"})",
       "to"},
      {R"({"schedule":"primary","person":"bob","from":"2026-12-01T09:00:00Z",)"
       R"("to":"2026-12-02T09:00:00Z"})",
       "to"},  // already over
      {R"({"schedule":"primary","person":"bob","from":"2026-12-07T09:00:00Z",)"
       R"("to":"2027-06-02T09:00:00Z"})",
       "to"},  // longer than 90 days
      {R"({"schedule":"primary","person":"bob",)" + good_times + R"(,"reason":[]})", "reason"},
      {R"({"schedule":"primary","person":"bob",)" + good_times + R"(,"reason":")" +
           std::string(501, 'r') + "\"}",
       "reason"},
      {R"({"schedule":"primary","person":"bob",)" + good_times + R"(,"who":"me"})", "who"},
  };
  for (const auto& [body, field] : bad) {
    auto r2 = ParseOverrideRequest(body, config, now);
    ASSERT_TRUE(std::holds_alternative<RequestError>(r2)) << body.substr(0, 120);
    EXPECT_EQ(std::get<RequestError>(r2).field, field) << body.substr(0, 120);
    EXPECT_EQ(std::get<RequestError>(r2).http_status, 400);
  }
}

TEST(ApiTest, QueryValuesAndOwnedPaths) {
  EXPECT_EQ(QueryValue("a=1&at=2026-01-01T00%3A00%3A00Z", "at").value(), "2026-01-01T00:00:00Z");
  EXPECT_EQ(QueryValue("schedule=a+b", "schedule").value(), "a b");
  EXPECT_EQ(QueryValue("flag&x=1", "flag").value(), "");
  EXPECT_FALSE(QueryValue("x=1", "at").has_value());
  EXPECT_TRUE(Api::Owns("/api/v1/incidents"));
  EXPECT_TRUE(Api::Owns("/api/v1/incidents/3/ack"));
  EXPECT_TRUE(Api::Owns("/api/v1/oncall"));
  EXPECT_TRUE(Api::Owns("/api/v1/oncall/policies"));
  EXPECT_FALSE(Api::Owns("/api/v1/oncall/"));
  EXPECT_FALSE(Api::Owns("/api/v1/oncall/policies/x"));
  EXPECT_TRUE(Api::Owns("/ack/1/2/_/x"));
  EXPECT_FALSE(Api::Owns("/api/v1/incidentsx"));
  EXPECT_FALSE(Api::Owns("/api/v1/notices"));
}

TEST(ApiTest, IncidentListQuery) {
  struct Case {
    std::string query;
    std::string error_field;  // "" = parses
    IncidentFilter want;
  };
  const std::string c100(100, 'c');
  const std::vector<Case> cases = {
      {"", "", {"", "", 50, 0}},
      {"status=triggered&limit=500&before=7", "", {"triggered", "", 500, 7}},
      {"connector=sber-bank&status=acknowledged", "", {"acknowledged", "sber-bank", 50, 0}},
      {"connector=a%20b%26c", "", {"", "a b&c", 50, 0}},
      {"connector=" + c100, "", {"", c100, 50, 0}},
      {"connector=", "connector", {}},
      {"connector", "connector", {}},
      {"connector=" + c100 + "c", "connector", {}},
      {"status=open", "status", {}},
      {"status=triggered&connector=", "connector", {}},
      {"limit=0", "limit", {}},
      {"limit=501", "limit", {}},
      {"before=-1", "before", {}},
      {"before=x", "before", {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.query);
    const auto got = ParseIncidentListQuery(c.query);
    if (!c.error_field.empty()) {
      ASSERT_TRUE(std::holds_alternative<RequestError>(got));
      EXPECT_EQ(std::get<RequestError>(got).http_status, 400);
      EXPECT_EQ(std::get<RequestError>(got).field, c.error_field);
      continue;
    }
    ASSERT_TRUE(std::holds_alternative<IncidentFilter>(got)) << std::get<RequestError>(got).message;
    const IncidentFilter& f = std::get<IncidentFilter>(got);
    EXPECT_EQ(f.status, c.want.status);
    EXPECT_EQ(f.connector, c.want.connector);
    EXPECT_EQ(f.limit, c.want.limit);
    EXPECT_EQ(f.before, c.want.before);
  }
}

// --- Config -----------------------------------------------------------------

std::string ReceiverYaml(const std::string& extra) {
  return R"(
auth: {insecure_no_auth: true}
channels:
  ops-slack: {type: slack, url: "http://127.0.0.1:1/hook"}
  oncall-sms: {type: sms, url: "http://127.0.0.1:1/sms", to: ["+70000000001"]}
routes:
  - match: {severity: critical}
    notify: [ops-slack]
    escalation_policy: primary
people:
  alice:
    contact_methods:
      - {type: slack, channel: ops-slack}
      - {type: sms, address: "+71111111111", delay: 1m}
escalation_policies:
  primary:
    levels: [{delay: 5m, targets: [{person: alice}, {channel: ops-slack}]}]
)" + extra;
}

TEST(ConfigTest, LoadsOnCallAndIncidentsSections) {
  setenv("BPMC_UNIT_ACK_SECRET", kSecret, 1);
  webhook_receiver::ReceiverConfig c;
  auto e = webhook_receiver::LoadConfigYaml(
      ReceiverYaml("incidents:\n  ack_link_secret_env: BPMC_UNIT_ACK_SECRET\n"
                   "  public_url: https://alerts.example/\n  ack_link_ttl: 2h\n"
                   "  poll_interval: 250ms\n"),
      &c);
  ASSERT_FALSE(e) << e->ToString();
  EXPECT_EQ(c.oncall.escalation_policies.count("primary"), 1u);
  EXPECT_EQ(c.incidents.ack_link_secret, kSecret);
  EXPECT_EQ(c.incidents.public_url, "https://alerts.example");
  EXPECT_EQ(c.incidents.ack_link_ttl_micros, 7200LL * 1000000);
  EXPECT_EQ(c.incidents.poll_interval_micros, 250000);
  EXPECT_EQ(DefaultChannelFor(c.notifier, oncall::ContactType::kSms), "oncall-sms");
  EXPECT_EQ(DefaultChannelFor(c.notifier, oncall::ContactType::kEmail), "");
}

// `text` inserted before the first `before` of `yaml`.
std::string Insert(std::string yaml, const std::string& before, const std::string& text) {
  return yaml.insert(yaml.find(before), text);
}

TEST(ConfigTest, ErrorsNameTheKey) {
  setenv("BPMC_UNIT_SHORT_SECRET", "short", 1);
  unsetenv("BPMC_UNIT_UNSET_SECRET");
  struct Case {
    std::string name, yaml, key;
  };
  const std::string base = ReceiverYaml("");
  const Case cases[] = {
      {"unknown route policy",
       Insert(base, "people:\n", "  - {notify: [ops-slack], escalation_policy: nope}\n"),
       "routes[1].escalation_policy"},
      {"unknown incidents key", ReceiverYaml("incidents: {bogus: 1}\n"), "incidents.bogus"},
      {"secret not set", ReceiverYaml("incidents: {ack_link_secret_env: BPMC_UNIT_UNSET_SECRET}\n"),
       "incidents.ack_link_secret_env"},
      {"secret too short",
       ReceiverYaml("incidents: {ack_link_secret_env: BPMC_UNIT_SHORT_SECRET}\n"),
       "incidents.ack_link_secret_env"},
      {"bad public url", ReceiverYaml("incidents: {public_url: alerts.example}\n"),
       "incidents.public_url"},
      {"bad ttl", ReceiverYaml("incidents: {ack_link_ttl: 10}\n"), "incidents.ack_link_ttl"},
      {"poll too long", ReceiverYaml("incidents: {poll_interval: 2m}\n"),
       "incidents.poll_interval"},
      {"contact channel of another type",
       Insert(base, "escalation_policies:\n",
              "  bob:\n    contact_methods: [{type: sms, channel: ops-slack, address: '+7'}]\n"),
       "people.bob.contact_methods[0].channel"},
      {"no channel of the method's type",
       Insert(base, "      - {type: sms, address", "      - {type: email, address: a@b.c}\n"),
       "people.alice.contact_methods[1].type"},
      {"unknown target channel", Insert(base, "{channel: ops-slack}]", "{channel: ops-slak}, "),
       "escalation_policies.primary.levels[0].targets[1].channel"},
  };
  for (const Case& c : cases) {
    webhook_receiver::ReceiverConfig config;
    auto e = webhook_receiver::LoadConfigYaml(c.yaml, &config);
    ASSERT_TRUE(e) << c.name;
    EXPECT_EQ(e->key, c.key) << c.name << ": " << e->ToString();
  }
}

}  // namespace
}  // namespace bpmc::incidents
