#include "oncall/escalation.h"

#include <gtest/gtest.h>

#include "oncall_test_util.h"

namespace bpmc::oncall {
namespace {

using test::kHour;
using test::kMinute;
using test::MustParse;
using test::T;

// ann (Slack at once, SMS after 5 minutes) and bob alternate daily at 09:00
// Moscow time. Policy p: level 0 = the schedule and the ops-slack channel,
// level 1 = carol; 30 minutes each; the whole policy once more (repeat: 1).
const char* kYaml = R"(
people:
  ann:
    name: Ann
    contact_methods:
      - {type: slack, address: U0ANN, delay: 0s}
      - {type: sms, address: "+70000000001", delay: 5m}
  bob: {contact_methods: [{type: email, address: bob@example.com}]}
  carol: {contact_methods: [{type: sms, address: "+70000000003"}]}
schedules:
  primary:
    time_zone: Europe/Moscow
    layers: [{rotation: daily, handoff: "09:00", start: 2026-01-05, participants: [ann, bob]}]
  later:
    time_zone: Europe/Moscow
    layers: [{rotation: daily, handoff: "09:00", start: 2027-01-01, participants: [bob]}]
escalation_policies:
  p:
    repeat: 1
    levels:
      - delay: 30m
        targets: [{schedule: primary}, {channel: ops-slack}]
      - delay: 30m
        targets: [{person: carol}]
  fast:
    levels:
      - delay: 15m
        targets: [{schedule: primary}]
      - delay: 0s
        targets: [{schedule: primary}, {schedule: later}]
)";

constexpr const char* kAnnSlack0 = "p/r0/l0/schedule:primary/person:ann/slack";
constexpr const char* kAnnSms0 = "p/r0/l0/schedule:primary/person:ann/sms";
constexpr const char* kChannel0 = "p/r0/l0/channel:ops-slack";
constexpr const char* kCarol0 = "p/r0/l1/person:carol/sms";
constexpr const char* kAnnSlack1 = "p/r1/l0/schedule:primary/person:ann/slack";
constexpr const char* kAnnSms1 = "p/r1/l0/schedule:primary/person:ann/sms";
constexpr const char* kChannel1 = "p/r1/l0/channel:ops-slack";
constexpr const char* kCarol1 = "p/r1/l1/person:carol/sms";

std::vector<std::string> Keys(const std::vector<PageAction>& actions) {
  std::vector<std::string> keys;
  for (const auto& a : actions) keys.push_back(a.key);
  return keys;
}

struct DueCase {
  const char* name;
  int64_t now;  // minus the start
  std::vector<std::string> done;
  std::optional<int64_t> ack;       // minus the start
  std::optional<int64_t> resolved;  // minus the start
  std::vector<std::string> due;     // keys, in order
  std::optional<int64_t> next;      // NextDueAt minus the start
};

TEST(EscalationTest, DueAtEveryBoundary) {
  const OnCallConfig config = MustParse(kYaml);
  const EscalationPolicy& policy = config.escalation_policies.at("p");
  const int64_t start = T("2026-01-05T10:00:00+03:00");  // ann's turn
  const std::vector<std::string> level0 = {kAnnSlack0, kChannel0};
  const std::vector<std::string> round0 = {kAnnSlack0, kChannel0, kAnnSms0, kCarol0};
  const std::vector<std::string> all = {kAnnSlack0, kChannel0, kAnnSms0, kCarol0,
                                        kAnnSlack1, kChannel1, kAnnSms1, kCarol1};
  const DueCase cases[] = {
      {"before the start", -1, {}, {}, {}, {}, 0},
      {"exactly at the start", 0, {}, {}, {}, level0, 0},
      {"level 0 done, SMS one microsecond early", 5 * kMinute - 1, level0, {}, {}, {}, 5 * kMinute},
      {"the SMS contact delay", 5 * kMinute, level0, {}, {}, {kAnnSms0}, 5 * kMinute},
      {"level 1 one microsecond early",
       30 * kMinute - 1,
       {kAnnSlack0, kChannel0, kAnnSms0},
       {},
       {},
       {},
       30 * kMinute},
      {"level 1 exactly at its delay",
       30 * kMinute,
       {kAnnSlack0, kChannel0, kAnnSms0},
       {},
       {},
       {kCarol0},
       30 * kMinute},
      {"acknowledged at the same instant",
       30 * kMinute,
       {kAnnSlack0, kChannel0, kAnnSms0},
       30 * kMinute,
       {},
       {},
       {}},
      {"acknowledged earlier stops everything", 50 * kMinute, level0, 2 * kMinute, {}, {}, {}},
      {"acknowledgement in the future is not yet", 30 * kMinute, round0, 40 * kMinute, {}, {}, {}},
      {"future acknowledgement: steps before it still due",
       30 * kMinute,
       {kAnnSlack0, kChannel0, kAnnSms0},
       40 * kMinute,
       {},
       {kCarol0},
       30 * kMinute},
      {"resolved stops everything", 31 * kMinute, level0, {}, 10 * kMinute, {}, {}},
      {"round 1 one microsecond early", kHour - 1, round0, {}, {}, {}, kHour},
      {"round 1 at 60 minutes", kHour, round0, {}, {}, {kAnnSlack1, kChannel1}, kHour},
      {"round 1 level 1 at 90 minutes",
       90 * kMinute,
       {kAnnSlack0, kChannel0, kAnnSms0, kCarol0, kAnnSlack1, kChannel1, kAnnSms1},
       {},
       {},
       {kCarol1},
       90 * kMinute},
      {"everything done", 5 * kHour, all, {}, {}, {}, {}},
      {"a done step is never due again", 0, {kAnnSlack0}, {}, {}, {kChannel0}, 0},
  };
  for (const DueCase& c : cases) {
    SCOPED_TRACE(c.name);
    IncidentState state;
    state.started_micros = start;
    state.done_steps.insert(c.done.begin(), c.done.end());
    if (c.ack) state.acknowledged_micros = start + *c.ack;
    if (c.resolved) state.resolved_micros = start + *c.resolved;
    EXPECT_EQ(Keys(Due(config, policy, state, start + c.now)), c.due);
    const auto next = NextDueAt(config, policy, state, start + c.now);
    if (c.next)
      EXPECT_EQ(next, start + *c.next);
    else
      EXPECT_EQ(next, std::nullopt);
  }
}

// Acknowledgement timeouts: each resumption pages the level that was in
// progress at the acknowledgement again at once, and the rest follows with its
// delays under keys of its own ("p/a<k>/...").
TEST(EscalationTest, ResumptionsAfterAckTimeouts) {
  const OnCallConfig config = MustParse(kYaml);
  const EscalationPolicy& policy = config.escalation_policies.at("p");
  const int64_t start = T("2026-01-05T10:00:00+03:00");  // ann's turn
  struct Case {
    const char* name;
    std::vector<Resumption> resumptions;  // minus the start
    int64_t now;                          // minus the start
    std::vector<std::string> done;
    std::vector<std::string> due;
    std::optional<int64_t> next;  // minus the start
  } cases[] = {
      {"acked in level 0, resumed at 40m: level 0 again at once",
       {{10 * kMinute, 40 * kMinute}},
       40 * kMinute,
       {kAnnSlack0, kChannel0, kAnnSms0},
       {"p/a1/r0/l0/schedule:primary/person:ann/slack", "p/a1/r0/l0/channel:ops-slack"},
       40 * kMinute},
      {"then the SMS delay and level 1 from the resumption, not from the start",
       {{10 * kMinute, 40 * kMinute}},
       69 * kMinute,
       {"p/a1/r0/l0/schedule:primary/person:ann/slack", "p/a1/r0/l0/channel:ops-slack"},
       {"p/a1/r0/l0/schedule:primary/person:ann/sms"},
       45 * kMinute},
      {"level 1 of the resumed plan at 40m + 30m",
       {{10 * kMinute, 40 * kMinute}},
       70 * kMinute,
       {"p/a1/r0/l0/schedule:primary/person:ann/slack", "p/a1/r0/l0/channel:ops-slack",
        "p/a1/r0/l0/schedule:primary/person:ann/sms"},
       {"p/a1/r0/l1/person:carol/sms"},
       70 * kMinute},
      {"the first plan's steps are never due again",
       {{10 * kMinute, 40 * kMinute}},
       40 * kMinute - 1,
       {},
       {},
       40 * kMinute},
      {"acked in level 1 of round 1 (policy exhausted): level 1 is paged again",
       {{100 * kMinute, 200 * kMinute}},
       200 * kMinute,
       {},
       {"p/a1/r1/l1/person:carol/sms"},
       200 * kMinute},
      {"a second timeout resumes the second plan where it stood",
       {{10 * kMinute, 40 * kMinute}, {75 * kMinute, 100 * kMinute}},
       100 * kMinute,
       {},
       {"p/a2/r0/l1/person:carol/sms"},
       100 * kMinute},
      {"escalate now at 10m (level 0 in progress): level 1 at once, round 1 30m later",
       {{10 * kMinute, 10 * kMinute, 1}},
       40 * kMinute,
       {"p/a1/r0/l1/person:carol/sms"},
       {"p/a1/r1/l0/schedule:primary/person:ann/slack", "p/a1/r1/l0/channel:ops-slack"},
       40 * kMinute},
      {"escalate now in the last level of the last round: that level again",
       {{95 * kMinute, 95 * kMinute, 1}},
       95 * kMinute,
       {},
       {"p/a1/r1/l1/person:carol/sms"},
       95 * kMinute},
      {"acked before any level was reached: the first level at the resumption",
       {{-5 * kMinute, 20 * kMinute}},
       20 * kMinute,
       {},
       {"p/a1/r0/l0/schedule:primary/person:ann/slack", "p/a1/r0/l0/channel:ops-slack"},
       20 * kMinute},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    IncidentState state;
    state.started_micros = start;
    for (const Resumption& r : c.resumptions)
      state.resumptions.push_back(
          {start + r.acknowledged_micros, start + r.resumed_micros, r.advance});
    state.done_steps.insert(c.done.begin(), c.done.end());
    EXPECT_EQ(Keys(Due(config, policy, state, start + c.now)), c.due);
    const auto next = NextDueAt(config, policy, state, start + c.now);
    if (c.next)
      EXPECT_EQ(next, start + *c.next);
    else
      EXPECT_EQ(next, std::nullopt);
  }
}

TEST(EscalationTest, AckTimesOutAt) {
  EscalationPolicy policy;
  IncidentState state;
  state.acknowledged_micros = 1000;
  EXPECT_EQ(AckTimesOutAt(policy, state), std::nullopt);  // no timeout configured
  policy.ack_timeout_micros = 30 * kMinute;
  EXPECT_EQ(AckTimesOutAt(policy, state), 1000 + 30 * kMinute);
  state.resolved_micros = 2000;
  EXPECT_EQ(AckTimesOutAt(policy, state), std::nullopt);  // resolved
  state.resolved_micros.reset();
  state.acknowledged_micros.reset();
  EXPECT_EQ(AckTimesOutAt(policy, state), std::nullopt);  // not acknowledged
}

TEST(EscalationTest, AcknowledgementEndsTable) {
  EscalationPolicy timeout;
  timeout.ack_timeout_micros = 30 * kMinute;
  const EscalationPolicy none;
  struct Case {
    const char* name;
    const EscalationPolicy* policy;
    std::optional<int64_t> acked, resolved, snoozed;
    std::optional<int64_t> at;
    bool snooze;
  };
  const Case cases[] = {
      {"not acknowledged", &timeout, std::nullopt, std::nullopt, 5000, std::nullopt, false},
      {"resolved", &timeout, 1000, 2000, 5000, std::nullopt, false},
      {"ack timeout", &timeout, 1000, std::nullopt, std::nullopt, 1000 + 30 * kMinute, false},
      {"no timeout, no snooze", &none, 1000, std::nullopt, std::nullopt, std::nullopt, false},
      {"snooze shorter than the timeout", &timeout, 1000, std::nullopt, 5000, 5000, true},
      {"snooze longer than the timeout", &timeout, 1000, std::nullopt, 90 * kMinute, 90 * kMinute,
       true},
      {"snooze without a policy", nullptr, 1000, std::nullopt, 5000, 5000, true},
      {"no policy, no snooze", nullptr, 1000, std::nullopt, std::nullopt, std::nullopt, false},
  };
  for (const Case& c : cases) {
    IncidentState state;
    state.acknowledged_micros = c.acked;
    state.resolved_micros = c.resolved;
    state.snoozed_until_micros = c.snoozed;
    const auto end = AcknowledgementEnds(c.policy, state);
    ASSERT_EQ(end.has_value(), c.at.has_value()) << c.name;
    if (!end) continue;
    EXPECT_EQ(end->at_micros, *c.at) << c.name;
    EXPECT_EQ(end->snooze, c.snooze) << c.name;
  }
}

TEST(EscalationTest, ReassignResumptionTable) {
  const OnCallConfig config = MustParse(kYaml);
  const EscalationPolicy& p = config.escalation_policies.at("p");
  const int64_t t0 = T("2026-01-05T10:00:00+03:00");
  struct Case {
    const char* name;
    std::optional<int64_t> acked;
    int64_t now;
    // The keys due at now (the reassigned level is not paged again) and at the next level.
    int64_t next_level_at;
    std::vector<std::string> next_keys;
  };
  const Case cases[] = {
      // Level 0 in progress: carol (level 1) 30 minutes after the reassignment.
      {"triggered, level 0",
       std::nullopt,
       t0 + 10 * kMinute,
       t0 + 40 * kMinute,
       {"p/a1/r0/l1/person:carol/sms"}},
      // Acknowledged during level 0, reassigned an hour later: level 1 follows 30m after now.
      {"acknowledged at level 0",
       t0 + 5 * kMinute,
       t0 + 65 * kMinute,
       t0 + 95 * kMinute,
       {"p/a1/r0/l1/person:carol/sms"}},
      // Level 1 in progress: the second round's level 0 next.
      {"triggered, level 1",
       std::nullopt,
       t0 + 40 * kMinute,
       t0 + 70 * kMinute,
       {"p/a1/r1/l0/schedule:primary/person:ann/slack", "p/a1/r1/l0/channel:ops-slack"}},
  };
  for (const Case& c : cases) {
    IncidentState state;
    state.started_micros = t0;
    state.acknowledged_micros = c.acked;
    const Resumption r = ReassignResumption(p, state, c.now);
    EXPECT_EQ(r.advance, 1) << c.name;
    state.resumptions.push_back(r);
    state.acknowledged_micros.reset();
    EXPECT_TRUE(Due(config, p, state, c.now).empty()) << c.name;
    EXPECT_EQ(NextDueAt(config, p, state, c.now), c.next_level_at) << c.name;
    EXPECT_EQ(Keys(Due(config, p, state, c.next_level_at)), c.next_keys) << c.name;
  }
}

TEST(EscalationTest, ActionsCarryWhatTheReceiverNeeds) {
  const OnCallConfig config = MustParse(kYaml);
  IncidentState state;
  state.started_micros = T("2026-01-05T10:00:00+03:00");
  const auto due =
      Due(config, config.escalation_policies.at("p"), state, state.started_micros + 5 * kMinute);
  ASSERT_EQ(due.size(), 3u);
  EXPECT_EQ(due[0].kind, PageAction::Kind::kContact);
  EXPECT_EQ(due[0].person, "ann");
  EXPECT_EQ(due[0].method.type, ContactType::kSlack);
  EXPECT_EQ(due[0].method.address, "U0ANN");
  EXPECT_EQ(due[0].target.kind, Target::Kind::kSchedule);
  EXPECT_EQ(due[0].target.id, "primary");
  EXPECT_EQ(due[0].due_micros, state.started_micros);
  EXPECT_EQ(due[1].kind, PageAction::Kind::kChannel);
  EXPECT_EQ(due[1].channel, "ops-slack");
  EXPECT_EQ(due[2].key, kAnnSms0);
  EXPECT_EQ(due[2].method.address, "+70000000001");
  EXPECT_EQ(due[2].due_micros, state.started_micros + 5 * kMinute);
  EXPECT_EQ(due[2].round, 0);
  EXPECT_EQ(due[2].level, 0);
}

TEST(EscalationTest, LateEvaluationMergesStepsPerDestination) {
  // The receiver was down for 100 minutes: every step of both rounds is due,
  // and each destination is paged once for all of them.
  const OnCallConfig config = MustParse(kYaml);
  IncidentState state;
  state.started_micros = T("2026-01-05T10:00:00+03:00");
  const auto due =
      Due(config, config.escalation_policies.at("p"), state, state.started_micros + 100 * kMinute);
  ASSERT_EQ(Keys(due), (std::vector<std::string>{kAnnSlack1, kChannel1, kAnnSms1, kCarol1}));
  EXPECT_EQ(due[0].covered_keys, std::vector<std::string>{kAnnSlack0});
  EXPECT_EQ(due[1].covered_keys, std::vector<std::string>{kChannel0});
  EXPECT_EQ(due[2].covered_keys, std::vector<std::string>{kAnnSms0});
  EXPECT_EQ(due[3].covered_keys, std::vector<std::string>{kCarol0});
  // Once the caller stores the keys and the covered keys, nothing is left.
  for (const auto& a : due) {
    state.done_steps.insert(a.key);
    state.done_steps.insert(a.covered_keys.begin(), a.covered_keys.end());
  }
  EXPECT_TRUE(
      Due(config, config.escalation_policies.at("p"), state, state.started_micros + 100 * kMinute)
          .empty());
  EXPECT_EQ(NextDueAt(config, config.escalation_policies.at("p"), state,
                      state.started_micros + 100 * kMinute),
            std::nullopt);
}

TEST(EscalationTest, ScheduleTargetPagesWhoeverIsOnCallWhenTheLevelIsReached) {
  // ann's turn ends at 09:00 on 2026-01-06, bob's at 09:00 on 2026-01-07.
  const OnCallConfig config = MustParse(kYaml);
  const EscalationPolicy& fast = config.escalation_policies.at("fast");
  IncidentState state;
  state.started_micros = T("2026-01-06T08:50:00+03:00");
  EXPECT_EQ(Keys(Due(config, fast, state, state.started_micros)),
            (std::vector<std::string>{"fast/r0/l0/schedule:primary/person:ann/slack"}));
  // Evaluated an hour late, level 0 still pages ann and level 1 (reached at
  // 09:05) pages bob; the schedule that has not started records nobody.
  EXPECT_EQ(Keys(Due(config, fast, state, state.started_micros + kHour)),
            (std::vector<std::string>{"fast/r0/l0/schedule:primary/person:ann/slack",
                                      "fast/r0/l0/schedule:primary/person:ann/sms",
                                      "fast/r0/l1/schedule:primary/person:bob/email",
                                      "fast/r0/l1/schedule:later/nobody"}));
  state.started_micros = T("2026-01-05T08:50:00+03:00");  // before the first handoff
  EXPECT_EQ(Keys(Due(config, fast, state, state.started_micros)),
            (std::vector<std::string>{"fast/r0/l0/schedule:primary/nobody"}));
  state.started_micros = T("2026-01-07T08:50:00+03:00");  // bob until 09:00, then ann
  const auto due = Due(config, fast, state, state.started_micros + kHour);
  EXPECT_EQ(Keys(due), (std::vector<std::string>{"fast/r0/l0/schedule:primary/person:bob/email",
                                                 "fast/r0/l1/schedule:primary/person:ann/slack",
                                                 "fast/r0/l1/schedule:later/nobody",
                                                 "fast/r0/l1/schedule:primary/person:ann/sms"}));
  EXPECT_EQ(due[2].kind, PageAction::Kind::kNobodyOnCall);
  EXPECT_EQ(due[2].target.id, "later");
  EXPECT_EQ(due[3].due_micros, T("2026-01-07T09:10:00+03:00"));
}

TEST(EscalationTest, OverridesApplyToScheduleTargets) {
  OnCallConfig config = MustParse(kYaml);
  config.overrides.push_back(
      {"primary", "carol", T("2026-01-05T09:30:00+03:00"), T("2026-01-05T10:30:00+03:00")});
  IncidentState state;
  state.started_micros = T("2026-01-05T10:00:00+03:00");
  const auto due = Due(config, config.escalation_policies.at("p"), state, state.started_micros);
  EXPECT_EQ(Keys(due),
            (std::vector<std::string>{"p/r0/l0/schedule:primary/person:carol/sms", kChannel0}));
}

TEST(EscalationTest, PlanCoversEveryStepInDueOrder) {
  const OnCallConfig config = MustParse(kYaml);
  const int64_t start = T("2026-01-05T10:00:00+03:00");
  const auto plan = PlanSteps(config, config.escalation_policies.at("p"), start);
  EXPECT_EQ(Keys(plan), (std::vector<std::string>{kAnnSlack0, kChannel0, kAnnSms0, kCarol0,
                                                  kAnnSlack1, kChannel1, kAnnSms1, kCarol1}));
  std::vector<int64_t> times;
  for (const auto& step : plan) times.push_back(step.due_micros - start);
  EXPECT_EQ(times, (std::vector<int64_t>{0, 0, 5 * kMinute, 30 * kMinute, kHour, kHour,
                                         kHour + 5 * kMinute, 90 * kMinute}));
}

}  // namespace
}  // namespace bpmc::oncall
