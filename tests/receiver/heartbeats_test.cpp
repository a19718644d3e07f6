// Table tests of heartbeats: the missed decision, the alert it fires, and the
// `heartbeats:` config with its errors named by key.
#include "webhook_receiver/heartbeats.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "webhook_receiver/config.h"
#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver {
namespace {

constexpr int64_t kS = 1000000;  // one second in microseconds

HeartbeatConfig Beat(int64_t interval_s, int64_t grace_s) {
  HeartbeatConfig h;
  h.name = "nightly-backup";
  h.interval_us = interval_s * kS;
  h.grace_us = grace_s * kS;
  return h;
}

TEST(HeartbeatDecisionTest, Table) {
  const int64_t t0 = 1'800'000'000 * kS;
  const struct {
    const char* name;
    HeartbeatConfig h;
    HeartbeatRow row;
    int64_t now;
    HeartbeatState want;
  } cases[] = {
      {"never checked in, within interval",
       Beat(60, 120),
       {std::nullopt, t0, std::nullopt},
       t0 + 59 * kS,
       HeartbeatState::kHealthy},
      {"never checked in, within grace",
       Beat(60, 120),
       {std::nullopt, t0, std::nullopt},
       t0 + 179 * kS,
       HeartbeatState::kHealthy},
      {"never checked in, exactly at the deadline",
       Beat(60, 120),
       {std::nullopt, t0, std::nullopt},
       t0 + 180 * kS,
       HeartbeatState::kHealthy},
      {"never checked in, past the deadline",
       Beat(60, 120),
       {std::nullopt, t0, std::nullopt},
       t0 + 180 * kS + 1,
       HeartbeatState::kDue},
      {"the last check-in is the clock, not watched_since",
       Beat(60, 120),
       {t0 + 100 * kS, t0, std::nullopt},
       t0 + 200 * kS,
       HeartbeatState::kHealthy},
      {"late after the last check-in",
       Beat(60, 120),
       {t0 + 100 * kS, t0, std::nullopt},
       t0 + 281 * kS,
       HeartbeatState::kDue},
      {"no grace", Beat(60, 0), {t0, t0, std::nullopt}, t0 + 60 * kS + 1, HeartbeatState::kDue},
      {"already missed: not fired twice",
       Beat(60, 120),
       {t0, t0, t0 + 180 * kS},
       t0 + 1000 * kS,
       HeartbeatState::kMissed},
      {"missed stays missed even if the clock looks fine",
       Beat(60, 120),
       {t0, t0, t0 + 180 * kS},
       t0 + 1,
       HeartbeatState::kMissed},
      {"a clock in the future (skew) is healthy",
       Beat(60, 120),
       {t0 + 500 * kS, t0, std::nullopt},
       t0,
       HeartbeatState::kHealthy},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(DecideHeartbeat(c.h, c.row, c.now), c.want);
  }
  EXPECT_EQ(HeartbeatDeadline(Beat(60, 120), {t0 + 5 * kS, t0, std::nullopt}), t0 + 185 * kS);
  EXPECT_EQ(HeartbeatDeadline(Beat(60, 120), {std::nullopt, t0, std::nullopt}), t0 + 180 * kS);
}

TEST(HeartbeatAlertTest, FiringAndResolved) {
  HeartbeatConfig h = Beat(60, 120);
  h.labels = {{"team", "platform"}};
  const int64_t t0 = 1'800'000'000 * kS;
  const IncomingAlert a = HeartbeatAlert(h, {t0, t0 - 10 * kS, std::nullopt}, true, t0 + 181 * kS);
  EXPECT_EQ(a.view.source, "heartbeat");
  EXPECT_EQ(a.view.status, "firing");
  EXPECT_EQ(a.view.dedup_key, "heartbeat/nightly-backup");
  EXPECT_EQ(a.view.alertname, "HeartbeatMissed");
  const std::map<std::string, std::string> labels = {{"alertname", "HeartbeatMissed"},
                                                     {"heartbeat", "nightly-backup"},
                                                     {"severity", "critical"},
                                                     {"team", "platform"}};
  EXPECT_EQ(a.view.labels, labels);
  EXPECT_EQ(a.raw_severity, "critical");
  EXPECT_EQ(a.view.summary, "No check-in from nightly-backup since " + FormatAlertTime(t0));
  EXPECT_FALSE(a.starts_at_us);  // the store opens the episode at the job's now_us
  EXPECT_FALSE(a.ends_at_us);
  EXPECT_NE(a.view.runbook_url.find("#heartbeatmissed"), std::string::npos);

  const IncomingAlert r =
      HeartbeatAlert(h, {t0 + 300 * kS, t0, std::nullopt}, false, t0 + 300 * kS);
  EXPECT_EQ(r.view.status, "resolved");
  EXPECT_EQ(r.view.dedup_key, a.view.dedup_key);
  EXPECT_EQ(r.ends_at_us, t0 + 300 * kS);

  // Configured labels override the severity; the configured summary wins.
  h.labels["severity"] = "warning";
  h.summary = "The nightly backup did not report";
  const IncomingAlert w = HeartbeatAlert(h, {std::nullopt, t0, std::nullopt}, true, t0);
  EXPECT_EQ(w.raw_severity, "warning");
  EXPECT_EQ(w.view.summary, "The nightly backup did not report");
  EXPECT_NE(w.view.description.find("never checked in"), std::string::npos) << w.view.description;
}

// A minimal config; `heartbeats` is appended as the `heartbeats:` section.
std::string Yaml(const std::string& heartbeats) {
  return "auth: {insecure_no_auth: true}\nheartbeats:\n" + heartbeats;
}

class HeartbeatConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv("BPMC_TEST_HEARTBEAT_TOKEN", "beat-token", 1); }
  void TearDown() override { unsetenv("BPMC_TEST_HEARTBEAT_TOKEN"); }
};

TEST_F(HeartbeatConfigTest, LoadsTheDocumentedFormat) {
  ReceiverConfig c;
  auto e = LoadConfigYaml(Yaml(R"(
  zeta: {interval: 1h, token_env: BPMC_TEST_HEARTBEAT_TOKEN}
  alertmanager-watchdog:
    interval: 1m
    grace: 2m
    token_env: BPMC_TEST_HEARTBEAT_TOKEN
    labels: {severity: critical, team: platform}
    summary: Alertmanager's Watchdog stopped arriving
)"),
                          &c);
  ASSERT_FALSE(e) << e->ToString();
  ASSERT_EQ(c.heartbeats.size(), 2u);
  const HeartbeatConfig& w = c.heartbeats[0];  // sorted by name
  EXPECT_EQ(w.name, "alertmanager-watchdog");
  EXPECT_EQ(w.interval_us, 60 * kS);
  EXPECT_EQ(w.grace_us, 120 * kS);
  EXPECT_EQ(w.token, "beat-token");
  EXPECT_EQ(w.labels.at("team"), "platform");
  EXPECT_EQ(w.summary, "Alertmanager's Watchdog stopped arriving");
  EXPECT_EQ(c.heartbeats[1].name, "zeta");
  EXPECT_EQ(c.heartbeats[1].grace_us, 3600 * kS);  // grace defaults to the interval
}

TEST_F(HeartbeatConfigTest, ErrorsNameTheKey) {
  const std::string tok = ", token_env: BPMC_TEST_HEARTBEAT_TOKEN}\n";
  const struct {
    const char* name;
    std::string yaml;
    std::string key;
  } cases[] = {
      {"not a mapping", Yaml("  - a\n"), "heartbeats"},
      {"bad name", Yaml("  Night-Job: {interval: 1m" + tok), "heartbeats.Night-Job"},
      {"name too long", Yaml("  " + std::string(65, 'a') + ": {interval: 1m" + tok),
       "heartbeats." + std::string(65, 'a')},
      {"entry not a mapping", Yaml("  a: 1m\n"), "heartbeats.a"},
      {"unknown key", Yaml("  a: {interval: 1m, every: 1m" + tok), "heartbeats.a.every"},
      {"interval missing", Yaml("  a: {grace: 1m" + tok), "heartbeats.a.interval"},
      {"interval malformed", Yaml("  a: {interval: soon" + tok), "heartbeats.a.interval"},
      {"interval too short", Yaml("  a: {interval: 500ms" + tok), "heartbeats.a.interval"},
      {"interval too long", Yaml("  a: {interval: 31d" + tok), "heartbeats.a.interval"},
      {"grace malformed", Yaml("  a: {interval: 1m, grace: -1m" + tok), "heartbeats.a.grace"},
      {"token missing", Yaml("  a: {interval: 1m}\n"), "heartbeats.a"},
      {"token env unset", Yaml("  a: {interval: 1m, token_env: BPMC_TEST_UNSET_VARIABLE}\n"),
       "heartbeats.a.token_env"},
      {"token in the yaml", Yaml("  a: {interval: 1m, token: plain}\n"), "heartbeats.a.token"},
      {"labels not a mapping", Yaml("  a: {interval: 1m, labels: [x]" + tok),
       "heartbeats.a.labels"},
      {"bad label name", Yaml("  a: {interval: 1m, labels: {a-b: x}" + tok),
       "heartbeats.a.labels.a-b"},
      {"alertname is the receiver's", Yaml("  a: {interval: 1m, labels: {alertname: X}" + tok),
       "heartbeats.a.labels.alertname"},
      {"summary not a scalar", Yaml("  a: {interval: 1m, summary: [x]" + tok),
       "heartbeats.a.summary"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ReceiverConfig config;
    auto e = LoadConfigYaml(c.yaml, &config);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->key, c.key) << e->message;
    EXPECT_FALSE(e->message.empty());
    EXPECT_EQ(e->ToString().find("beat-token"), std::string::npos) << "a secret in an error";
  }
}

}  // namespace
}  // namespace bpmc::webhook_receiver
