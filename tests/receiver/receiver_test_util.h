#pragma once
// Shared helpers of the receiver tests: configs, Alertmanager payloads, database queries.

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/migrate.h"
#include "webhook_receiver/config.h"
#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver::test {

// One alert of an Alertmanager v4 payload.
struct AmAlert {
  std::string name;
  std::string status = "firing";
  std::string fingerprint;  // "" = "fp-" + name
  std::string starts_at = "2026-11-25T10:00:00Z";
  std::string ends_at;  // "" = the zero time
  std::string severity = "critical";
  std::map<std::string, std::string> labels;  // extra labels
};

inline AmAlert Firing(std::string name, std::string severity = "critical",
                      std::string starts_at = "2026-11-25T10:00:00Z") {
  AmAlert a;
  a.name = std::move(name);
  a.severity = std::move(severity);
  a.starts_at = std::move(starts_at);
  return a;
}

inline AmAlert Resolved(std::string name, std::string ends_at = "2026-11-25T10:30:00Z",
                        std::string starts_at = "2026-11-25T10:00:00Z") {
  AmAlert a = Firing(std::move(name), "critical", std::move(starts_at));
  a.status = "resolved";
  a.ends_at = std::move(ends_at);
  return a;
}

inline std::string AmPayload(const std::vector<AmAlert>& alerts) {
  nlohmann::json out = {{"version", "4"},
                        {"groupKey", "{}:{alertname=\"x\"}"},
                        {"truncatedAlerts", 0},
                        {"status", "firing"},
                        {"receiver", "bpmc\\.test"},
                        {"groupLabels", nlohmann::json::object()},
                        {"commonLabels", nlohmann::json::object()},
                        {"commonAnnotations", nlohmann::json::object()},
                        {"externalURL", "http://127.0.0.1:9093"},
                        {"alerts", nlohmann::json::array()}};
  for (const AmAlert& a : alerts) {
    nlohmann::json labels = {{"alertname", a.name}, {"severity", a.severity}};
    for (const auto& [k, v] : a.labels) labels[k] = v;
    out["alerts"].push_back(
        {{"status", a.status},
         {"labels", labels},
         {"annotations",
          {{"summary", a.name + " summary"}, {"runbook_url", "https://rb/" + a.name}}},
         {"startsAt", a.starts_at},
         {"endsAt", a.ends_at.empty() ? "0001-01-01T00:00:00Z" : a.ends_at},
         {"generatorURL", "http://127.0.0.1:9090/graph"},
         {"fingerprint", a.fingerprint.empty() ? "fp-" + a.name : a.fingerprint}});
  }
  return out.dump();
}

// The config of most tests: criticals to Slack and two SMS numbers, warnings
// to Slack, info nowhere.
inline std::string TestConfigYaml(const std::string& slack_url = "http://127.0.0.1:9/slack",
                                  const std::string& sms_url = "http://127.0.0.1:9/sms",
                                  const std::string& extra = "") {
  return R"(
auth:
  bearer_tokens:
    - token_env: BPMC_TEST_RECEIVER_TOKEN
  basic_auth:
    - username: alertmanager
      password_env: BPMC_TEST_RECEIVER_PASSWORD
channels:
  ops-slack:
    type: slack
    url: )" +
         slack_url + R"(
    rate_limit: none
  oncall-sms:
    type: sms
    url: )" +
         sms_url + R"(
    to: ["+70000000001", "+70000000002"]
    rate_limit: none
delivery:
  initial_backoff_seconds: 0.05
  max_backoff_seconds: 0.2
routes:
  - name: critical
    match: {severity: critical}
    notify: [ops-slack, oncall-sms]
    escalation_policy: primary
  - name: warning
    match: {severity: warning}
    notify: [ops-slack]
# Routes' policies must exist. This one pages nobody (its schedule starts in 2100), so
# the incident engine adds no outbox rows to these tests (tests/incidents/ test paging).
escalation_policies:
  primary:
    levels: [{delay: 30m, targets: [{schedule: later}]}]
schedules:
  later:
    time_zone: UTC
    layers: [{rotation: daily, handoff: "09:00", start: 2100-01-04, participants: [idle]}]
people:
  idle:
    contact_methods: [{type: slack, channel: ops-slack}]
)" + extra;
}

inline ReceiverConfig MustLoad(const std::string& yaml) {
  setenv("BPMC_TEST_RECEIVER_TOKEN", "test-token", 1);
  setenv("BPMC_TEST_RECEIVER_PASSWORD", "test-password", 1);
  ReceiverConfig config;
  if (auto e = LoadConfigYaml(yaml, &config)) {
    std::fprintf(stderr, "bad test config: %s\n", e->ToString().c_str());
    std::abort();
  }
  return config;
}

inline void Migrate(const std::string& url) {
  pqxx::connection conn(url);
  ApplySchema(conn, DatabaseSchema());
}

inline int64_t Count(const std::string& url, const std::string& sql) {
  pqxx::connection conn(url);
  pqxx::nontransaction txn(conn);
  return txn.exec(sql)[0][0].as<int64_t>();
}

// "channel|destination|status" of every outbox row, sorted.
inline std::vector<std::string> OutboxRows(const std::string& url) {
  pqxx::connection conn(url);
  pqxx::nontransaction txn(conn);
  std::vector<std::string> out;
  for (const auto& r :
       txn.exec("SELECT channel || '|' || destination || '|' || alert_status || '|' ||"
                " dedup_key FROM notification_outbox ORDER BY 1"))
    out.push_back(r[0].as<std::string>());
  return out;
}

}  // namespace bpmc::webhook_receiver::test
