#include "oncall/api.h"

#include <gtest/gtest.h>

#include "oncall_test_util.h"

namespace bpmc::oncall {
namespace {

using test::MustParse;
using test::T;

const char* kYaml = R"(
people:
  ann: {name: Ann Petrova, contact_methods: [{type: email, address: ann@example.com}]}
  bob: {name: Bob, contact_methods: [{type: email, address: bob@example.com}]}
schedules:
  primary:
    name: Primary On-Call
    time_zone: Europe/Berlin
    layers:
      - {name: days, rotation: daily, handoff: "09:00", start: 2026-03-27, participants: [ann, bob]}
  later:
    time_zone: Europe/Moscow
    layers: [{rotation: weekly, handoff: "09:00", start: 2027-01-04, participants: [bob]}]
overrides:
  - {schedule: primary, person: bob, from: "2026-03-27T12:00:00Z", to: "2026-03-27T12:30:00.5Z"}
)";

TEST(OnCallJsonTest, EverySchedule) {
  const OnCallConfig config = MustParse(kYaml);
  // bob's turn across the spring-forward night: 23 hours, 09:00 local at both ends.
  const nlohmann::json body = OnCallJson(config, T("2026-03-28T12:00:00Z"));
  const nlohmann::json expected = nlohmann::json::parse(R"({
    "at": "2026-03-28T12:00:00.000000Z",
    "schedules": [
      {"id": "later", "name": "later", "time_zone": "Europe/Moscow", "on_call": null},
      {"id": "primary", "name": "Primary On-Call", "time_zone": "Europe/Berlin",
       "on_call": {"person": {"id": "bob", "name": "Bob"}, "layer": 0, "layer_name": "days",
                   "override": false,
                   "start": "2026-03-28T08:00:00.000000Z", "end": "2026-03-29T07:00:00.000000Z",
                   "start_local": "2026-03-28T09:00:00+01:00",
                   "end_local": "2026-03-29T09:00:00+02:00"}}
    ]})");
  EXPECT_EQ(body, expected) << body.dump(2);
}

TEST(OnCallJsonTest, OverrideAndOneSchedule) {
  const OnCallConfig config = MustParse(kYaml);
  const nlohmann::json body = OnCallJson(config, T("2026-03-27T12:15:00Z"), "primary");
  ASSERT_EQ(body["schedules"].size(), 1u);
  const nlohmann::json& on_call = body["schedules"][0]["on_call"];
  EXPECT_EQ(on_call["person"]["id"], "bob");
  EXPECT_EQ(on_call["override"], true);
  EXPECT_EQ(on_call["layer"], nullptr);
  EXPECT_EQ(on_call["layer_name"], nullptr);
  EXPECT_EQ(on_call["end"], "2026-03-27T12:30:00.500000Z");
  EXPECT_EQ(on_call["end_local"], "2026-03-27T13:30:00.500000+01:00");
}

TEST(AnswerOnCallRequestTest, StatusAndInstant) {
  const OnCallConfig config = MustParse(kYaml);
  const Clock& clock = SystemClock::Get();

  auto ok = AnswerOnCallRequest(config, std::string("2026-03-28T13:00:00+01:00"),
                                std::string("primary"), clock);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body["at"], "2026-03-28T12:00:00.000000Z");
  EXPECT_EQ(ok.body["schedules"][0]["on_call"]["person"]["name"], "Bob");

  auto bad = AnswerOnCallRequest(config, std::string("yesterday"), std::nullopt, clock);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body["error"].get<std::string>().find("at:"), std::string::npos);

  auto unknown = AnswerOnCallRequest(config, std::nullopt, std::string("nope"), clock);
  EXPECT_EQ(unknown.status, 404);

  // Without `at` the instant comes from the clock.
  const int64_t before = clock.NowMicros();
  auto now = AnswerOnCallRequest(config, std::nullopt, std::nullopt, clock);
  const int64_t after = clock.NowMicros();
  EXPECT_EQ(now.status, 200);
  const auto at = ParseRfc3339Micros(now.body["at"].get<std::string>());
  ASSERT_TRUE(at.has_value());
  EXPECT_GE(*at, before);
  EXPECT_LE(*at, after);
  EXPECT_EQ(now.body["schedules"].size(), 2u);
}

TEST(PoliciesJsonTest, EveryPolicyWithLevelsAndNamedTargets) {
  const OnCallConfig config = MustParse(std::string(kYaml) + R"(
escalation_policies:
  primary:
    name: Primary Escalation Policy
    repeat: 2
    ack_timeout: 1h30m
    levels:
      - {delay: 30m, targets: [{schedule: primary}, {channel: ops-slack}]}
      - {delay: 1500ms, targets: [{person: ann}, {person: bob}]}
  backup:
    levels: [{delay: 0, targets: [{schedule: later}]}]
)");
  const nlohmann::json body = PoliciesJson(config);
  const nlohmann::json expected = nlohmann::json::parse(R"({"policies": [
    {"id": "backup", "name": "backup", "repeat": 0, "ack_timeout_seconds": null,
     "levels": [{"level": 0, "delay_seconds": 0,
                 "targets": [{"type": "schedule", "id": "later", "name": "later"}]}]},
    {"id": "primary", "name": "Primary Escalation Policy", "repeat": 2,
     "ack_timeout_seconds": 5400,
     "levels": [
       {"level": 0, "delay_seconds": 1800,
        "targets": [{"type": "schedule", "id": "primary", "name": "Primary On-Call"},
                    {"type": "channel", "id": "ops-slack", "name": "ops-slack"}]},
       {"level": 1, "delay_seconds": 1.5,
        "targets": [{"type": "person", "id": "ann", "name": "Ann Petrova"},
                    {"type": "person", "id": "bob", "name": "Bob"}]}]}
  ]})");
  EXPECT_EQ(body, expected) << body.dump(2);
  // No contact addresses leave through this answer.
  EXPECT_EQ(body.dump().find("example.com"), std::string::npos);
}

TEST(PoliciesJsonTest, NoPolicies) {
  EXPECT_EQ(PoliciesJson(MustParse(kYaml)), nlohmann::json::parse(R"({"policies": []})"));
}

TEST(FormatLocalRfc3339Test, Offsets) {
  EXPECT_EQ(FormatLocalRfc3339("Europe/Moscow", T("2026-01-05T06:00:00Z")),
            "2026-01-05T09:00:00+03:00");
  EXPECT_EQ(FormatLocalRfc3339("America/New_York", T("2026-11-01T05:30:00Z")),
            "2026-11-01T01:30:00-04:00");
  EXPECT_EQ(FormatLocalRfc3339("America/New_York", T("2026-11-01T06:30:00Z")),
            "2026-11-01T01:30:00-05:00");
  EXPECT_EQ(FormatLocalRfc3339("Asia/Kolkata", T("2026-01-01T00:00:00Z")),
            "2026-01-01T05:30:00+05:30");
  EXPECT_EQ(FormatLocalRfc3339("Nowhere/Nothing", 0), std::nullopt);
}

}  // namespace
}  // namespace bpmc::oncall
