// Table tests of the webhook parsers: Alertmanager v4, generic JSON, Sentry,
// Datadog, New Relic.
#include "webhook_receiver/intake.h"

#include <gtest/gtest.h>

#include "common/time_format.h"

namespace bpmc::webhook_receiver {
namespace {

// An Alertmanager 0.25 webhook as it arrives (see ../shared/REFERENCE.md):
// escaped receiver, zero endsAt on the firing alert, unknown keys.
constexpr const char* kAlertmanagerPayload = R"({
  "version": "4",
  "groupKey": "{}/{severity=\"critical\"}:{alertname=\"HighErrorRate\"}",
  "truncatedAlerts": 2,
  "status": "firing",
  "receiver": "bpmc\\.critical",
  "groupLabels": {"alertname": "HighErrorRate"},
  "commonLabels": {},
  "commonAnnotations": {},
  "externalURL": "http://am:9093",
  "notification_reason": "new",
  "alerts": [
    {"status": "firing",
     "labels": {"alertname": "HighErrorRate", "severity": "critical", "connector": "crm"},
     "annotations": {"summary": "High error rate detected", "description": "above 5%",
                     "runbook_url": "https://runbooks/high-error-rate"},
     "startsAt": "2026-11-25T10:00:00.123456789Z",
     "endsAt": "0001-01-01T00:00:00Z",
     "generatorURL": "http://prom:9090/graph?g0.expr=x",
     "fingerprint": "c0ffee0123456789",
     "unknown": {"nested": true}},
    {"status": "resolved",
     "labels": {"alertname": "ConnectorDown"},
     "annotations": {},
     "startsAt": "2026-11-25T09:00:00Z",
     "endsAt": "2026-11-25T09:30:00Z",
     "generatorURL": "",
     "fingerprint": "feedface00000001"}
  ]
})";

// The webhook (a copy), or an empty one after reporting the error.
Webhook Ok(const IntakeResult& r) {
  if (auto* e = std::get_if<IntakeError>(&r)) ADD_FAILURE() << e->field << ": " << e->message;
  return std::holds_alternative<Webhook>(r) ? std::get<Webhook>(r) : Webhook();
}

TEST(AlertmanagerIntakeTest, ParsesVersion4) {
  const IntakeResult r = ParseAlertmanager(kAlertmanagerPayload);
  const Webhook& w = Ok(r);
  ASSERT_EQ(w.alerts.size(), 2u);
  EXPECT_EQ(w.truncated_alerts, 2);
  EXPECT_EQ(w.group_key, "{}/{severity=\"critical\"}:{alertname=\"HighErrorRate\"}");
  const IncomingAlert& a = w.alerts[0];
  EXPECT_EQ(a.view.status, "firing");
  EXPECT_EQ(a.view.source, "alertmanager");
  EXPECT_EQ(a.view.dedup_key, "c0ffee0123456789");
  EXPECT_EQ(a.view.alertname, "HighErrorRate");
  EXPECT_EQ(a.view.summary, "High error rate detected");
  EXPECT_EQ(a.view.description, "above 5%");
  EXPECT_EQ(a.view.runbook_url, "https://runbooks/high-error-rate");
  EXPECT_EQ(a.view.generator_url, "http://prom:9090/graph?g0.expr=x");
  EXPECT_EQ(a.raw_severity, "critical");
  EXPECT_EQ(a.view.labels.at("connector"), "crm");
  ASSERT_TRUE(a.starts_at_us.has_value());
  EXPECT_EQ(*a.starts_at_us, *ParseRfc3339Micros("2026-11-25T10:00:00.123456Z"));
  EXPECT_FALSE(a.ends_at_us.has_value()) << "the zero endsAt of a firing alert is no end";
  const IncomingAlert& b = w.alerts[1];
  EXPECT_EQ(b.view.status, "resolved");
  EXPECT_EQ(b.view.summary, "ConnectorDown") << "summary falls back to the alert name";
  EXPECT_EQ(*b.ends_at_us, *ParseRfc3339Micros("2026-11-25T09:30:00Z"));
  EXPECT_EQ(b.raw_severity, "");
}

TEST(AlertmanagerIntakeTest, FingerprintlessAlertsGetAStableLabelHash) {
  const char* a = R"({"version":"4","alerts":[{"status":"firing","labels":{"b":"2","a":"1"},
                     "startsAt":"2026-01-01T00:00:00Z"}]})";
  const char* b = R"({"version":"4","alerts":[{"status":"resolved","labels":{"a":"1","b":"2"},
                     "startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T01:00:00Z"}]})";
  const std::string ka = Ok(ParseAlertmanager(a)).alerts.at(0).view.dedup_key;
  const std::string kb = Ok(ParseAlertmanager(b)).alerts.at(0).view.dedup_key;
  EXPECT_EQ(ka.size(), 16u);
  EXPECT_EQ(ka, kb);
}

struct BadCase {
  const char* name;
  const char* body;
  const char* field;
};

TEST(AlertmanagerIntakeTest, RefusesMalformedPayloads) {
  const BadCase cases[] = {
      {"not json", "{", ""},
      {"not an object", "[]", ""},
      {"invalid utf-8", "{\"version\":\"4\",\"alerts\":[],\"x\":\"\xff\"}", ""},
      {"wrong version", R"({"version":"3","alerts":[]})", "version"},
      {"no version", R"({"alerts":[]})", "version"},
      {"alerts not an array", R"({"version":"4","alerts":{}})", "alerts"},
      {"alert not an object", R"({"version":"4","alerts":[1]})", "alerts[0]"},
      {"bad status",
       R"({"version":"4","alerts":[{"status":"pending","labels":{},"startsAt":"2026-01-01T00:00:00Z"}]})",
       "alerts[0].status"},
      {"no labels",
       R"({"version":"4","alerts":[{"status":"firing","startsAt":"2026-01-01T00:00:00Z"}]})",
       "alerts[0].labels"},
      {"label not a string",
       R"({"version":"4","alerts":[{"status":"firing","labels":{"a":1},"startsAt":"2026-01-01T00:00:00Z"}]})",
       "alerts[0].labels.a"},
      {"no startsAt", R"({"version":"4","alerts":[{"status":"firing","labels":{}}]})",
       "alerts[0].startsAt"},
      {"bad startsAt",
       R"({"version":"4","alerts":[{"status":"firing","labels":{},"startsAt":"yesterday"}]})",
       "alerts[0].startsAt"},
      {"second alert bad",
       R"({"version":"4","alerts":[{"status":"firing","labels":{},"startsAt":"2026-01-01T00:00:00Z"},{"status":"firing","labels":{},"startsAt":"2026-01-01T00:00:00Z","annotations":[]}]})",
       "alerts[1].annotations"},
      {"fingerprint too long",
       R"({"version":"4","alerts":[{"status":"firing","labels":{},"startsAt":"2026-01-01T00:00:00Z","fingerprint":")"
       "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890"
       "123456789"
       "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890"
       "123456789"
       "0123456789012345678901234567890123456789012345678901234567890123456789"
       R"("}]})",
       "alerts[0].fingerprint"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    const IntakeResult r = ParseAlertmanager(c.body);
    ASSERT_TRUE(std::holds_alternative<IntakeError>(r));
    EXPECT_EQ(std::get<IntakeError>(r).field, c.field) << std::get<IntakeError>(r).message;
    EXPECT_FALSE(std::get<IntakeError>(r).message.empty());
  }
}

TEST(AlertmanagerIntakeTest, EmptyAlertListIsAcceptedAndIgnored) {
  const Webhook& w = Ok(ParseAlertmanager(R"({"version":"4","alerts":[]})"));
  EXPECT_TRUE(w.alerts.empty());
  EXPECT_FALSE(w.ignored_reason.empty());
}

TEST(AlertmanagerIntakeTest, NulCharactersAreDropped) {
  const Webhook& w = Ok(ParseAlertmanager(
      R"({"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A\u0000B"},"startsAt":"2026-01-01T00:00:00Z"}]})"));
  EXPECT_EQ(w.alerts.at(0).view.alertname, "AB");
}

TEST(GenericIntakeTest, SingleObject) {
  const Webhook& w = Ok(ParseGeneric(R"({
    "summary": "Payment gateway errors", "severity": "error", "source": "billing-job",
    "dedup_key": "billing/gateway", "status": "firing", "description": "3 failures",
    "details": {"gateway": "acme", "count": 3}, "runbook_url": "https://rb", "link": "https://l",
    "labels": {"team": "payments"}})"));
  ASSERT_EQ(w.alerts.size(), 1u);
  const IncomingAlert& a = w.alerts[0];
  EXPECT_EQ(a.view.source, "generic");
  EXPECT_EQ(a.view.status, "firing");
  EXPECT_EQ(a.view.dedup_key, "billing/gateway");
  EXPECT_EQ(a.view.summary, "Payment gateway errors");
  EXPECT_EQ(a.view.alertname, "Payment gateway errors");
  EXPECT_EQ(a.view.labels.at("alertname"), "Payment gateway errors");
  EXPECT_EQ(a.view.labels.at("source"), "billing-job");
  EXPECT_EQ(a.view.labels.at("team"), "payments");
  EXPECT_EQ(a.view.annotations.at("gateway"), "acme");
  EXPECT_EQ(a.view.annotations.at("count"), "3");
  EXPECT_EQ(a.view.runbook_url, "https://rb");
  EXPECT_EQ(a.view.generator_url, "https://l");
  EXPECT_EQ(a.raw_severity, "error");
  EXPECT_FALSE(a.starts_at_us.has_value()) << "no starts_at: tracked by dedup_key";
}

TEST(GenericIntakeTest, TableOfForms) {
  struct Case {
    const char* name;
    const char* body;
    size_t alerts;
    const char* status;      // of the first alert
    const char* key_prefix;  // of the first alert's dedup key
  };
  const Case cases[] = {
      {"status defaults to firing", R"({"summary":"x"})", 1, "firing", "generic:"},
      {"resolve alias", R"({"dedup_key":"k","status":"resolve"})", 1, "resolved", "k"},
      {"trigger alias", R"({"summary":"s","status":"trigger","dedup_key":"k"})", 1, "firing", "k"},
      {"array", R"([{"summary":"a"},{"summary":"b","status":"resolved"}])", 2, "firing",
       "generic:"},
      {"details as text", R"({"summary":"s","details":"plain"})", 1, "firing", "generic:"},
      {"explicit start", R"({"summary":"s","starts_at":"2026-01-01T00:00:00Z"})", 1, "firing",
       "generic:"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const IntakeResult r = ParseGeneric(c.body);
    const Webhook& w = Ok(r);
    ASSERT_EQ(w.alerts.size(), c.alerts);
    EXPECT_EQ(w.alerts[0].view.status, c.status);
    EXPECT_EQ(w.alerts[0].view.dedup_key.rfind(c.key_prefix, 0), 0u) << w.alerts[0].view.dedup_key;
  }
  // The derived key is stable for one (source, summary).
  EXPECT_EQ(Ok(ParseGeneric(R"({"summary":"x","source":"a"})")).alerts[0].view.dedup_key,
            Ok(ParseGeneric(R"({"summary":"x","source":"a","status":"resolved"})"))
                .alerts[0]
                .view.dedup_key);
  EXPECT_NE(Ok(ParseGeneric(R"({"summary":"x","source":"a"})")).alerts[0].view.dedup_key,
            Ok(ParseGeneric(R"({"summary":"x","source":"b"})")).alerts[0].view.dedup_key);
}

TEST(GenericIntakeTest, RefusesMalformed) {
  const BadCase cases[] = {
      {"no summary when firing", R"({"dedup_key":"k"})", "summary"},
      {"resolved without key or summary", R"({"status":"resolved"})", "dedup_key"},
      {"bad status", R"({"summary":"s","status":"maybe"})", "status"},
      {"summary not string", R"({"summary":5})", "summary"},
      {"labels not strings", R"({"summary":"s","labels":{"a":[]}})", "labels.a"},
      {"empty array", "[]", ""},
      {"bad item in array", R"([{"summary":"a"},{"status":"firing"}])", "[1].summary"},
      {"non-object item", R"([{"summary":"a"},7])", "[1]"},
      {"bad starts_at", R"({"summary":"s","starts_at":"x"})", "starts_at"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    const IntakeResult r = ParseGeneric(c.body);
    ASSERT_TRUE(std::holds_alternative<IntakeError>(r));
    EXPECT_EQ(std::get<IntakeError>(r).field, c.field) << std::get<IntakeError>(r).message;
  }
}

TEST(SentryIntakeTest, LegacyPluginPayload) {
  const Webhook& w = Ok(ParseSentry(R"({
    "id": "27379932", "project": "connectors", "project_name": "Connectors", "level": "error",
    "culprit": "crm.sync in run", "message": "TypeError: x is undefined",
    "url": "https://sentry.io/organizations/bpmc/issues/27379932/",
    "triggering_rules": ["errors"],
    "event": {"event_id": "abc", "level": "error", "title": "TypeError: x is undefined",
              "tags": [["environment", "prod"], ["server.name", "web-1"]]}})"));
  ASSERT_EQ(w.alerts.size(), 1u);
  const IncomingAlert& a = w.alerts[0];
  EXPECT_EQ(a.view.source, "sentry");
  EXPECT_EQ(a.view.status, "firing");
  EXPECT_EQ(a.view.dedup_key, "sentry:27379932");
  EXPECT_EQ(a.view.summary, "TypeError: x is undefined");
  EXPECT_EQ(a.view.description, "crm.sync in run");
  EXPECT_EQ(a.view.generator_url, "https://sentry.io/organizations/bpmc/issues/27379932/");
  EXPECT_EQ(a.raw_severity, "error");
  EXPECT_EQ(a.view.labels.at("project"), "connectors");
  EXPECT_EQ(a.view.labels.at("environment"), "prod");
  EXPECT_EQ(a.view.labels.at("server_name"), "web-1");
  EXPECT_FALSE(a.starts_at_us.has_value());
}

TEST(SentryIntakeTest, IntegrationPlatformResources) {
  const Webhook& alert = Ok(ParseSentry(R"({"action":"triggered","data":{
    "event":{"issue_id":"1170820242","title":"Error: boom","level":"fatal",
             "web_url":"https://sentry.io/i/1170820242/","tags":[{"key":"env","value":"stage"}]},
    "triggered_rule":"Very Important"}})"));
  ASSERT_EQ(alert.alerts.size(), 1u);
  EXPECT_EQ(alert.alerts[0].view.dedup_key, "sentry:1170820242");
  EXPECT_EQ(alert.alerts[0].raw_severity, "fatal");
  EXPECT_EQ(alert.alerts[0].view.labels.at("rule"), "Very Important");
  EXPECT_EQ(alert.alerts[0].view.labels.at("env"), "stage");

  const Webhook& resolved = Ok(ParseSentry(R"({"action":"resolved","data":{"issue":{
    "id":"1170820242","title":"Error: boom","level":"error","web_url":"https://w",
    "project":{"slug":"connectors"}}}})"));
  ASSERT_EQ(resolved.alerts.size(), 1u);
  EXPECT_EQ(resolved.alerts[0].view.status, "resolved");
  EXPECT_EQ(resolved.alerts[0].view.dedup_key, "sentry:1170820242");
  EXPECT_EQ(resolved.alerts[0].view.labels.at("project"), "connectors");

  const Webhook& assigned = Ok(ParseSentry(R"({"action":"assigned","data":{"issue":{"id":"1"}}})"));
  EXPECT_TRUE(assigned.alerts.empty());
  EXPECT_FALSE(assigned.ignored_reason.empty());

  EXPECT_TRUE(std::holds_alternative<IntakeError>(ParseSentry(R"({"data":{}})")));
  EXPECT_TRUE(std::holds_alternative<IntakeError>(ParseSentry(R"({"message":"no id"})")));
}

TEST(DatadogIntakeTest, TransitionsAndTags) {
  struct Case {
    const char* transition;
    const char* type;
    const char* status;
    const char* severity;
  };
  const Case cases[] = {
      {"Triggered", "error", "firing", "error"},    {"Warn", "warning", "firing", "warning"},
      {"Re-Triggered", "error", "firing", "error"}, {"Recovered", "success", "resolved", "P2"},
      {"No Data", "error", "firing", "error"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.transition);
    const std::string body =
        std::string(R"({"id":"1","alert_id":"12345","alert_transition":")") + c.transition +
        R"(","alert_type":")" + c.type +
        R"(","alert_priority":"P2","alert_scope":"host:web-1","title":"[Triggered] CPU high",)"
        R"("body":"cpu > 90","link":"https://app.datadoghq.com/monitors/12345",)"
        R"("tags":"env:prod, service:api,bare","date":"1700000000000"})";
    const IntakeResult r = ParseDatadog(body);
    const Webhook& w = Ok(r);
    ASSERT_EQ(w.alerts.size(), 1u);
    const IncomingAlert& a = w.alerts[0];
    EXPECT_EQ(a.view.status, c.status);
    EXPECT_EQ(a.raw_severity, c.severity);
    EXPECT_EQ(a.view.dedup_key, "datadog:12345/host:web-1");
    EXPECT_EQ(a.view.labels.at("env"), "prod");
    EXPECT_EQ(a.view.labels.at("service"), "api");
    EXPECT_EQ(a.view.labels.at("scope"), "host:web-1");
    EXPECT_EQ(a.view.labels.count("bare"), 0u);
    EXPECT_EQ(a.view.generator_url, "https://app.datadoghq.com/monitors/12345");
  }
  EXPECT_EQ(Ok(ParseDatadog(R"({"alert_id":"1","aggreg_key":"ab12","title":"t"})"))
                .alerts[0]
                .view.dedup_key,
            "datadog:ab12");
  EXPECT_TRUE(std::holds_alternative<IntakeError>(ParseDatadog(R"({"title":"no id"})")));
}

TEST(NewRelicIntakeTest, WorkflowPayload) {
  const char* body = R"({"id":"a1b2c3","issueUrl":"https://one.newrelic.com/i/a1b2c3",
    "title":"CPU > 90% on web-1","priority":"CRITICAL","impactedEntities":["web-1"],
    "totalIncidents":1,"state":"ACTIVATED","trigger":"STATE_CHANGE","isCorrelated":false,
    "createdAt":1700000000000,"updatedAt":1700000060000,"sources":["newrelic"],
    "alertPolicyNames":["Connectors"],"alertConditionNames":["High CPU"],"workflowName":"ops"})";
  const Webhook& w = Ok(ParseNewRelic(body));
  ASSERT_EQ(w.alerts.size(), 1u);
  const IncomingAlert& a = w.alerts[0];
  EXPECT_EQ(a.view.status, "firing");
  EXPECT_EQ(a.view.dedup_key, "newrelic:a1b2c3");
  EXPECT_EQ(a.view.alertname, "High CPU");
  EXPECT_EQ(a.view.summary, "CPU > 90% on web-1");
  EXPECT_EQ(a.view.labels.at("policy"), "Connectors");
  EXPECT_EQ(a.view.labels.at("entity"), "web-1");
  EXPECT_EQ(a.raw_severity, "CRITICAL");
  ASSERT_TRUE(a.starts_at_us.has_value());
  EXPECT_EQ(*a.starts_at_us, 1700000000000LL * 1000);

  std::string closed = body;
  closed.replace(closed.find("ACTIVATED"), 9, "CLOSED");
  const Webhook& c = Ok(ParseNewRelic(closed));
  EXPECT_EQ(c.alerts.at(0).view.status, "resolved");
  EXPECT_EQ(*c.alerts.at(0).starts_at_us, 1700000000000LL * 1000) << "the episode keeps its start";
  EXPECT_EQ(*c.alerts.at(0).ends_at_us, 1700000060000LL * 1000);
}

TEST(NewRelicIntakeTest, LegacyPayloadAndErrors) {
  const Webhook& w = Ok(ParseNewRelic(R"({"incident_id":42,"current_state":"closed",
    "severity":"WARNING","condition_name":"Error rate","details":"error rate > 5%",
    "incident_url":"https://alerts.newrelic.com/42","policy_name":"Connectors","timestamp":1700000000000})"));
  ASSERT_EQ(w.alerts.size(), 1u);
  EXPECT_EQ(w.alerts[0].view.status, "resolved");
  EXPECT_EQ(w.alerts[0].view.dedup_key, "newrelic:42");
  EXPECT_EQ(w.alerts[0].view.summary, "error rate > 5%");
  EXPECT_FALSE(w.alerts[0].starts_at_us.has_value());

  const BadCase cases[] = {
      {"neither form", R"({"foo":1})", ""},
      {"bad state", R"({"id":"x","state":"WEIRD"})", "state"},
      {"bad legacy state", R"({"incident_id":1,"current_state":"x"})", "current_state"},
      {"empty id", R"({"id":"","state":"CREATED"})", "id"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    const IntakeResult r = ParseNewRelic(c.body);
    ASSERT_TRUE(std::holds_alternative<IntakeError>(r));
    EXPECT_EQ(std::get<IntakeError>(r).field, c.field);
  }
}

TEST(IntakeTest, FormatAlertTime) {
  EXPECT_EQ(FormatAlertTime(*ParseRfc3339Micros("2026-11-25T10:00:00Z")), "2026-11-25T10:00:00Z");
  EXPECT_EQ(FormatAlertTime(*ParseRfc3339Micros("2026-11-25T10:00:00.5Z")),
            "2026-11-25T10:00:00.500000Z");
}

// The first error of `r`, or a failure when it parsed.
IntakeError Err(const IntakeResult& r) {
  if (std::holds_alternative<Webhook>(r)) {
    ADD_FAILURE() << "parsed, want an error";
    return {};
  }
  return std::get<IntakeError>(r);
}

std::string DeepObject(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"a\":";
  return s + "1" + std::string(static_cast<size_t>(depth), '}');
}

// A 4 KB generic webhook whose `details` nested 2,000 deep crashed the receiver
// (nlohmann's dump recursed per level). Every source refuses deep JSON with 400
// naming where, before building anything.
TEST(IntakeLimitsTest, DeepJsonOnEverySource) {
  const std::string deep = DeepObject(2000);
  const struct {
    Source source;
    std::string body;
    std::string field_prefix;
  } cases[] = {
      {Source::kGeneric, R"({"summary":"s","details":)" + deep + "}", "details.a.a"},
      {Source::kGeneric, std::string("[") + R"({"summary":"s","details":)" + deep + "}]",
       "[0].details.a"},
      {Source::kAlertmanager, R"({"version":"4","alerts":[{"labels":)" + deep + "}]}",
       "alerts[0].labels.a"},
      {Source::kSentry, R"({"data":{"event":)" + deep + "}}", "data.event.a"},
      {Source::kDatadog, R"({"title":"t","body":)" + deep + "}", "body.a"},
      {Source::kNewRelic, R"({"id":"1","state":"CREATED","x":[)" + deep + "]}", "x[0].a"},
  };
  for (const auto& c : cases) {
    const IntakeError e = Err(ParseWebhook(c.source, c.body));
    EXPECT_EQ(e.status, 400) << SourceName(c.source);
    EXPECT_EQ(e.field.rfind(c.field_prefix, 0), 0u) << SourceName(c.source) << ": " << e.field;
    EXPECT_NE(e.message.find("deeper than 32 levels"), std::string::npos) << e.message;
  }
  // 32 levels are accepted (the generic details are kept as text).
  std::string ok = R"({"summary":"s","details":)" + DeepObject(31) + "}";
  const Webhook w = Ok(ParseWebhook(Source::kGeneric, ok));
  ASSERT_EQ(w.alerts.size(), 1u);
}

TEST(IntakeLimitsTest, Table) {
  auto am = [](const std::string& labels, const std::string& annotations = "{}") {
    return R"({"version":"4","alerts":[{"status":"firing","startsAt":"2026-11-25T10:00:00Z",)"
           R"("labels":)" +
           labels + R"(,"annotations":)" + annotations + "}]}";
  };
  auto many = [](size_t n, size_t name_len, size_t value_len) {
    std::string s = "{";
    for (size_t i = 0; i < n; ++i) {
      if (i) s += ",";
      std::string name = "l" + std::to_string(i);
      if (name.size() < name_len) name += std::string(name_len - name.size(), 'n');
      s += "\"" + name + "\":\"" + std::string(value_len, 'v') + "\"";
    }
    return s + "}";
  };
  std::string generic_many = "[";
  for (size_t i = 0; i <= kMaxAlertsPerWebhook; ++i)
    generic_many += (i ? "," : "") + std::string(R"({"summary":"s"})");
  generic_many += "]";
  const struct {
    const char* name;
    Source source;
    std::string body;
    int status;  // 0: accepted
    std::string field;
  } cases[] = {
      {"128 labels", Source::kAlertmanager, am(many(kMaxLabelsPerAlert, 1, 1)), 0, ""},
      {"129 labels", Source::kAlertmanager, am(many(kMaxLabelsPerAlert + 1, 1, 1)), 400,
       "alerts[0].labels"},
      {"129 annotations", Source::kAlertmanager, am("{}", many(kMaxLabelsPerAlert + 1, 1, 1)), 400,
       "alerts[0].annotations"},
      {"name at the limit", Source::kAlertmanager, am(many(1, kMaxLabelNameBytes, 1)), 0, ""},
      {"name too long", Source::kAlertmanager, am(many(1, kMaxLabelNameBytes + 1, 1)), 400,
       "alerts[0].labels"},
      {"value at the limit", Source::kAlertmanager, am(many(1, 1, kMaxLabelValueBytes)), 0, ""},
      {"value too long", Source::kAlertmanager, am(many(1, 1, kMaxLabelValueBytes + 1)), 400,
       "alerts[0].labels.l0"},
      {"annotation may be longer", Source::kAlertmanager,
       am("{}", many(1, 1, kMaxLabelValueBytes + 1)), 0, ""},
      {"annotation too long", Source::kAlertmanager,
       am("{}", many(1, 1, kMaxAnnotationValueBytes + 1)), 400, "alerts[0].annotations.l0"},
      {"generic labels too", Source::kGeneric,
       R"({"summary":"s","labels":)" + many(1, 1, kMaxLabelValueBytes + 1) + "}", 400, "labels.l0"},
      {"generic details are annotations", Source::kGeneric,
       R"({"summary":"s","details":)" + many(kMaxLabelsPerAlert + 1, 1, 1) + "}", 400,
       "annotations"},
      {"too many generic alerts", Source::kGeneric, generic_many, 413, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const IntakeResult r = ParseWebhook(c.source, c.body);
    if (c.status == 0) {
      Ok(r);
      continue;
    }
    const IntakeError e = Err(r);
    EXPECT_EQ(e.status, c.status) << e.message;
    EXPECT_EQ(e.field, c.field) << e.message;
  }
}

TEST(IntakeLimitsTest, TooManyAlertmanagerAlertsIs413) {
  std::string body = R"({"version":"4","alerts":[)";
  for (size_t i = 0; i <= kMaxAlertsPerWebhook; ++i)
    body += std::string(i ? "," : "") +
            R"({"status":"firing","labels":{},"startsAt":"2026-11-25T10:00:00Z"})";
  body += "]}";
  const IntakeError e = Err(ParseWebhook(Source::kAlertmanager, body));
  EXPECT_EQ(e.status, 413);
  EXPECT_EQ(e.field, "alerts");
}

}  // namespace
}  // namespace bpmc::webhook_receiver
