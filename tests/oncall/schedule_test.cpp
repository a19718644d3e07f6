#include "oncall/schedule.h"

#include <gtest/gtest.h>

#include "oncall/api.h"
#include "oncall_test_util.h"

namespace bpmc::oncall {
namespace {

using test::kHour;
using test::MustParse;
using test::T;

// One daily rotation with a 09:00 handoff from `start`, in `zone`.
std::string DailyYaml(const std::string& zone, const std::string& start,
                      const std::string& extra_layer_keys = "") {
  return R"(
people:
  ann: {contact_methods: [{type: email, address: ann@example.com}]}
  bob: {contact_methods: [{type: email, address: bob@example.com}]}
  carol: {contact_methods: [{type: email, address: carol@example.com}]}
  dave: {contact_methods: [{type: email, address: dave@example.com}]}
  eve: {contact_methods: [{type: email, address: eve@example.com}]}
schedules:
  s:
    time_zone: )" +
         zone + R"(
    layers:
      - rotation: daily
        handoff: "09:00"
        start: )" +
         start + R"(
        participants: [ann, bob, carol]
)" + extra_layer_keys;
}

struct ShiftCase {
  const char* name;
  const char* at;
  const char* person;  // "" = nobody
  const char* start;   // "" = unbounded
  const char* end;
};

void CheckShifts(const OnCallConfig& config, const std::vector<ShiftCase>& cases) {
  const Schedule& schedule = config.schedules.at("s");
  for (const ShiftCase& c : cases) {
    SCOPED_TRACE(c.name);
    const OnCallShift shift = WhoIsOnCall(schedule, config.overrides, T(c.at));
    EXPECT_EQ(shift.person, c.person);
    if (*c.start)
      EXPECT_EQ(shift.start_micros, T(c.start));
    else
      EXPECT_FALSE(shift.start_micros.has_value());
    if (*c.end)
      EXPECT_EQ(shift.end_micros, T(c.end));
    else
      EXPECT_FALSE(shift.end_micros.has_value());
  }
}

TEST(WhoIsOnCallTest, MoscowDailyRotationHasNoDst) {
  const OnCallConfig config = MustParse(DailyYaml("Europe/Moscow", "2026-01-05"));
  CheckShifts(config,
              {
                  {"before the first handoff", "2026-01-05T08:59:59.999999+03:00", "", "",
                   "2026-01-05T09:00:00+03:00"},
                  {"exactly at the first handoff", "2026-01-05T09:00:00+03:00", "ann",
                   "2026-01-05T09:00:00+03:00", "2026-01-06T09:00:00+03:00"},
                  {"one microsecond before the handoff", "2026-01-06T08:59:59.999999+03:00", "ann",
                   "2026-01-05T09:00:00+03:00", "2026-01-06T09:00:00+03:00"},
                  {"exactly at the second handoff", "2026-01-06T09:00:00+03:00", "bob",
                   "2026-01-06T09:00:00+03:00", "2026-01-07T09:00:00+03:00"},
                  {"the rotation wraps", "2026-01-08T10:00:00+03:00", "ann",
                   "2026-01-08T09:00:00+03:00", "2026-01-09T09:00:00+03:00"},
                  // 83 days after the start: turn 83 is carol's. Europe/Berlin changes that night,
                  // Moscow does not (no DST since 2014): still 24 hours, still 06:00Z.
                  {"EU spring-forward night", "2026-03-29T12:00:00+03:00", "carol",
                   "2026-03-29T06:00:00Z", "2026-03-30T06:00:00Z"},
                  {"EU fall-back night", "2026-10-25T08:00:00+03:00", "bob", "2026-10-24T06:00:00Z",
                   "2026-10-25T06:00:00Z"},
              });
}

TEST(WhoIsOnCallTest, BerlinDailyHandoffStaysAtNineAcrossDst) {
  const OnCallConfig config = MustParse(DailyYaml("Europe/Berlin", "2026-03-27"));
  CheckShifts(config,
              {
                  {"turn before the change", "2026-03-27T12:00:00Z", "ann", "2026-03-27T08:00:00Z",
                   "2026-03-28T08:00:00Z"},
                  {"shift across spring forward", "2026-03-29T01:30:00Z", "bob",
                   "2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z"},
                  {"first shift in summer time", "2026-03-29T07:00:00Z", "carol",
                   "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"},
                  {"one microsecond before the summer handoff", "2026-03-29T06:59:59.999999Z",
                   "bob", "2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z"},
                  // 211 days after 2026-03-27: turn 211 % 3 = 1 (bob) from 2026-10-24.
                  {"shift across fall back", "2026-10-25T01:30:00Z", "bob", "2026-10-24T07:00:00Z",
                   "2026-10-25T08:00:00Z"},
                  {"first shift in winter time", "2026-10-25T08:00:00Z", "carol",
                   "2026-10-25T08:00:00Z", "2026-10-26T08:00:00Z"},
              });
  const Schedule& s = config.schedules.at("s");
  const auto spring = WhoIsOnCall(s, {}, T("2026-03-28T12:00:00Z"));
  EXPECT_EQ(*spring.end_micros - *spring.start_micros, 23 * kHour);
  const auto fall = WhoIsOnCall(s, {}, T("2026-10-24T12:00:00Z"));
  EXPECT_EQ(*fall.end_micros - *fall.start_micros, 25 * kHour);
  EXPECT_EQ(FormatLocalRfc3339("Europe/Berlin", *spring.start_micros), "2026-03-28T09:00:00+01:00");
  EXPECT_EQ(FormatLocalRfc3339("Europe/Berlin", *spring.end_micros), "2026-03-29T09:00:00+02:00");
  EXPECT_EQ(FormatLocalRfc3339("Europe/Berlin", *fall.end_micros), "2026-10-25T09:00:00+01:00");
}

TEST(WhoIsOnCallTest, NewYorkDailyHandoffStaysAtNineAcrossDst) {
  const OnCallConfig config = MustParse(DailyYaml("America/New_York", "2026-03-07"));
  CheckShifts(config, {
                          {"shift across spring forward", "2026-03-08T07:30:00Z", "ann",
                           "2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z"},
                          {"first summer shift", "2026-03-08T13:00:00Z", "bob",
                           "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"},
                          // 238 days after 2026-03-07: turn 238 % 3 = 1 (bob) from 2026-10-31.
                          {"shift across fall back", "2026-11-01T06:30:00Z", "bob",
                           "2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z"},
                          {"first winter shift", "2026-11-01T14:00:00Z", "carol",
                           "2026-11-01T14:00:00Z", "2026-11-02T14:00:00Z"},
                      });
  const auto spring = WhoIsOnCall(config.schedules.at("s"), {}, T("2026-03-07T20:00:00Z"));
  EXPECT_EQ(*spring.end_micros - *spring.start_micros, 23 * kHour);
  const auto fall = WhoIsOnCall(config.schedules.at("s"), {}, T("2026-10-31T20:00:00Z"));
  EXPECT_EQ(*fall.end_micros - *fall.start_micros, 25 * kHour);
}

TEST(WhoIsOnCallTest, HandoffInsideTheDstGap) {
  // 02:30 does not exist on 2026-03-08 in New York: the handoff is at the change
  // (03:00 EDT); 01:30 happens twice on 2026-11-01: the first (EDT) one counts.
  OnCallConfig config = MustParse(DailyYaml("America/New_York", "2026-03-01"));
  config.schedules.at("s").layers[0].handoff_seconds = 2 * 3600 + 30 * 60;
  const Schedule& s = config.schedules.at("s");
  EXPECT_EQ(WhoIsOnCall(s, {}, T("2026-03-08T12:00:00Z")).start_micros, T("2026-03-08T07:00:00Z"));
  EXPECT_EQ(WhoIsOnCall(s, {}, T("2026-03-08T12:00:00Z")).end_micros, T("2026-03-09T06:30:00Z"));
  config.schedules.at("s").layers[0].handoff_seconds = 1 * 3600 + 30 * 60;
  EXPECT_EQ(WhoIsOnCall(s, {}, T("2026-11-01T12:00:00Z")).start_micros, T("2026-11-01T05:30:00Z"));
  EXPECT_EQ(WhoIsOnCall(s, {}, T("2026-11-01T12:00:00Z")).end_micros, T("2026-11-02T06:30:00Z"));
}

TEST(WhoIsOnCallTest, WeeklyAndCustomRotations) {
  OnCallConfig config = MustParse(R"(
people:
  ann: {contact_methods: [{type: email, address: ann@example.com}]}
  bob: {contact_methods: [{type: email, address: bob@example.com}]}
schedules:
  weekly:
    time_zone: Europe/Moscow
    layers: [{rotation: weekly, handoff: "10:00", start: 2026-01-05, participants: [ann, bob]}]
  twelve_hours:
    time_zone: Europe/Berlin
    layers: [{rotation: custom, shift_length: 12h, handoff: "09:00", start: 2026-03-28,
              participants: [ann, bob]}]
  two_days:
    time_zone: Europe/Berlin
    layers: [{rotation: custom, shift_length: 2d, handoff: "09:00", start: 2026-03-28,
              participants: [ann, bob]}]
)");
  auto at = [&](const char* schedule, const char* when) {
    return WhoIsOnCall(config.schedules.at(schedule), {}, T(when));
  };
  EXPECT_EQ(at("weekly", "2026-01-12T09:59:59+03:00").person, "ann");
  EXPECT_EQ(at("weekly", "2026-01-12T10:00:00+03:00").person, "bob");
  EXPECT_EQ(at("weekly", "2026-01-12T10:00:00+03:00").end_micros, T("2026-01-19T10:00:00+03:00"));
  EXPECT_EQ(at("weekly", "2026-01-19T10:00:00+03:00").person, "ann");
  // Elapsed 12-hour turns: 08:00Z, 20:00Z, then 08:00Z = 10:00 summer time.
  EXPECT_EQ(at("twelve_hours", "2026-03-28T20:00:00Z").person, "bob");
  EXPECT_EQ(at("twelve_hours", "2026-03-29T08:30:00Z").person, "ann");
  EXPECT_EQ(at("twelve_hours", "2026-03-29T08:30:00Z").start_micros, T("2026-03-29T08:00:00Z"));
  // Calendar two-day turns keep 09:00 local: 47 hours across the change.
  const auto two = at("two_days", "2026-03-29T12:00:00Z");
  EXPECT_EQ(two.person, "ann");
  EXPECT_EQ(two.start_micros, T("2026-03-28T08:00:00Z"));
  EXPECT_EQ(two.end_micros, T("2026-03-30T07:00:00Z"));
  EXPECT_EQ(at("two_days", "2026-03-30T07:00:00Z").person, "bob");
}

TEST(WhoIsOnCallTest, TopLayerWithSomeoneWinsAndRestrictionsCutShifts) {
  // Layer 0: ann/bob daily. Layer 1 (on top): carol on weekends only.
  // Layer 2 (on top): dave on weekday nights 20:00-08:00 from Monday 2026-01-12.
  const OnCallConfig config = MustParse(DailyYaml("Europe/Moscow", "2026-01-05") + R"(
      - name: weekend
        rotation: weekly
        handoff: "00:00"
        start: 2026-01-05
        participants: [carol]
        restrictions: [{type: weekly, day: saturday, start: "00:00", duration: 2d}]
      - name: nights
        rotation: daily
        handoff: "20:00"
        start: 2026-01-12
        participants: [dave]
        restrictions:
          - {type: daily, start: "20:00", duration: 12h}
)");
  CheckShifts(config,
              {
                  {"friday: layer 0, cut where the weekend starts", "2026-01-09T12:00:00+03:00",
                   "bob", "2026-01-09T09:00:00+03:00", "2026-01-10T00:00:00+03:00"},
                  {"saturday midnight: the weekend layer", "2026-01-10T00:00:00+03:00", "carol",
                   "2026-01-10T00:00:00+03:00", "2026-01-12T00:00:00+03:00"},
                  {"sunday: still the weekend", "2026-01-11T22:00:00+03:00", "carol",
                   "2026-01-10T00:00:00+03:00", "2026-01-12T00:00:00+03:00"},
                  {"monday 00:00: layer 0 again until the handoff", "2026-01-12T00:00:00+03:00",
                   "ann", "2026-01-12T00:00:00+03:00", "2026-01-12T09:00:00+03:00"},
                  {"monday day", "2026-01-12T12:00:00+03:00", "bob", "2026-01-12T09:00:00+03:00",
                   "2026-01-12T20:00:00+03:00"},
                  {"monday night: the night layer", "2026-01-12T23:00:00+03:00", "dave",
                   "2026-01-12T20:00:00+03:00", "2026-01-13T08:00:00+03:00"},
                  {"tuesday 08:00: night over", "2026-01-13T08:00:00+03:00", "bob",
                   "2026-01-13T08:00:00+03:00", "2026-01-13T09:00:00+03:00"},
              });
  // Who carries the weekend answer: the layer index and name.
  const auto weekend = WhoIsOnCall(config.schedules.at("s"), {}, T("2026-01-10T12:00:00+03:00"));
  EXPECT_EQ(weekend.layer, 1);
  EXPECT_EQ(weekend.layer_name, "weekend");
  EXPECT_FALSE(weekend.from_override);
  const auto friday = WhoIsOnCall(config.schedules.at("s"), {}, T("2026-01-09T12:00:00+03:00"));
  EXPECT_EQ(friday.layer, 0);
  EXPECT_EQ(friday.layer_name, "layer 0");
}

TEST(WhoIsOnCallTest, OverridesReplaceAndLaterOnesWin) {
  // bob's turn is 2026-01-06 09:00 to 2026-01-07 09:00. dave covers 12:00-15:00,
  // eve (listed later) 14:00-16:00; an override of another schedule is ignored.
  std::string yaml = DailyYaml("Europe/Moscow", "2026-01-05") + R"(
  other:
    time_zone: Europe/Moscow
    layers: [{rotation: daily, handoff: "09:00", start: 2026-01-05, participants: [ann]}]
overrides:
  - {schedule: s, person: dave, from: "2026-01-06T12:00:00+03:00", to: "2026-01-06T15:00:00+03:00"}
  - {schedule: s, person: eve, from: "2026-01-06T14:00:00+03:00", to: "2026-01-06T16:00:00+03:00"}
  - {schedule: other, person: carol, from: "2026-01-06T00:00:00+03:00", to: "2026-01-08T00:00:00+03:00"}
)";
  const OnCallConfig config = MustParse(yaml);
  CheckShifts(config, {
                          {"before the overrides: cut at the first", "2026-01-06T11:00:00+03:00",
                           "bob", "2026-01-06T09:00:00+03:00", "2026-01-06T12:00:00+03:00"},
                          {"exactly at the override start", "2026-01-06T12:00:00+03:00", "dave",
                           "2026-01-06T12:00:00+03:00", "2026-01-06T14:00:00+03:00"},
                          {"the later override wins", "2026-01-06T14:00:00+03:00", "eve",
                           "2026-01-06T14:00:00+03:00", "2026-01-06T16:00:00+03:00"},
                          {"one microsecond before the end", "2026-01-06T15:59:59.999999+03:00",
                           "eve", "2026-01-06T14:00:00+03:00", "2026-01-06T16:00:00+03:00"},
                          {"after the overrides: the rotation again", "2026-01-06T16:00:00+03:00",
                           "bob", "2026-01-06T16:00:00+03:00", "2026-01-07T09:00:00+03:00"},
                      });
  const auto dave =
      WhoIsOnCall(config.schedules.at("s"), config.overrides, T("2026-01-06T13:00:00+03:00"));
  EXPECT_TRUE(dave.from_override);
  EXPECT_EQ(dave.layer, -1);
  // An earlier override listed first does not cut one listed later.
  std::vector<Override> reversed = {config.overrides[1], config.overrides[0]};
  const auto d = WhoIsOnCall(config.schedules.at("s"), reversed, T("2026-01-06T14:30:00+03:00"));
  EXPECT_EQ(d.person, "dave");
  EXPECT_EQ(d.start_micros, T("2026-01-06T12:00:00+03:00"));
  EXPECT_EQ(d.end_micros, T("2026-01-06T15:00:00+03:00"));
  const auto e = WhoIsOnCall(config.schedules.at("s"), reversed, T("2026-01-06T15:00:00+03:00"));
  EXPECT_EQ(e.person, "eve");
  EXPECT_EQ(e.start_micros, T("2026-01-06T15:00:00+03:00"));
}

TEST(WhoIsOnCallTest, UnknownZoneMeansNobody) {
  Schedule s;
  s.id = "x";
  s.time_zone = "Mars/Olympus_Mons";
  s.layers.push_back(Layer{});
  s.layers[0].participants = {"ann"};
  const auto shift = WhoIsOnCall(s, {}, T("2026-01-06T12:00:00Z"));
  EXPECT_EQ(shift.person, "");
  EXPECT_FALSE(IsKnownTimeZone("Mars/Olympus_Mons"));
  EXPECT_TRUE(IsKnownTimeZone("Europe/Moscow"));
  EXPECT_EQ(UtcOffsetSeconds("Europe/Moscow", T("2026-07-01T00:00:00Z")), 3 * 3600);
  EXPECT_EQ(UtcOffsetSeconds("America/New_York", T("2026-01-01T00:00:00Z")), -5 * 3600);
}

}  // namespace
}  // namespace bpmc::oncall
