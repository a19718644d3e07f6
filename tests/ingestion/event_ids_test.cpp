// What a repeated event id means: EventDifference and PlanEventIds, as tables.
#include "ingestion/event_ids.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace bpmc::ingestion {
namespace {

constexpr int64_t kT0 = 1'764'000'000'000'000;  // 2025-11-24T16:00:00Z
constexpr int64_t kHourUs = 3600LL * 1000000;

UsageEvent Event(const std::string& id = "0190f1d2-7c3a-7b5e-9a1b-2c3d4e5f6a7b") {
  UsageEvent e;
  e.id = id;
  e.api_key_id = "11111111-1111-4111-8111-111111111111";
  e.connector = "crm-connector";
  e.operation = "getContact";
  e.make_account_id = "12345";
  e.timestamp_us = kT0;
  return e;
}

TEST(EventDifferenceTest, NamesTheFirstContentFieldThatDiffers) {
  struct Case {
    const char* name;
    std::function<void(UsageEvent*)> change;
    std::string difference;
  };
  const Case cases[] = {
      {"identical", [](UsageEvent*) {}, ""},
      {"a retry built again a minute later", [](UsageEvent* e) { e->timestamp_us += 60'000'000; },
       ""},
      {"a retry 24 h later (the window's edge)",
       [](UsageEvent* e) { e->timestamp_us += kRetryWindowUs; }, ""},
      {"a clock 1 h behind", [](UsageEvent* e) { e->timestamp_us -= kHourUs; }, ""},
      {"another API key (rotated)",
       [](UsageEvent* e) { e->api_key_id = "22222222-2222-4222-8222-222222222222"; }, ""},
      {"24 h and 1 µs later", [](UsageEvent* e) { e->timestamp_us += kRetryWindowUs + 1; },
       "timestamp"},
      {"24 h and 1 µs earlier", [](UsageEvent* e) { e->timestamp_us -= kRetryWindowUs + 1; },
       "timestamp"},
      {"connector", [](UsageEvent* e) { e->connector = "payment-connector"; }, "connector"},
      {"operation", [](UsageEvent* e) { e->operation = "listDeals"; }, "operation"},
      {"account", [](UsageEvent* e) { e->make_account_id = "12346"; }, "make_account_id"},
      {"status", [](UsageEvent* e) { e->status = EventStatus::kError; }, "status"},
      {"error_type added", [](UsageEvent* e) { e->error_type = "timeout"; }, "error_type"},
      {"error_message added", [](UsageEvent* e) { e->error_message = "x"; }, "error_message"},
      {"duration added", [](UsageEvent* e) { e->duration_ms = 5; }, "duration_ms"},
      {"connector before operation",
       [](UsageEvent* e) {
         e->connector = "c";
         e->operation = "o";
       },
       "connector"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    UsageEvent incoming = Event();
    c.change(&incoming);
    EXPECT_EQ(EventDifference(Event(), incoming), c.difference);
  }
  UsageEvent timed = Event();
  timed.duration_ms = 5;
  UsageEvent other = timed;
  other.duration_ms = 5.5;
  EXPECT_EQ(EventDifference(timed, other), "duration_ms");
  EXPECT_EQ(EventDifference(timed, timed), "");
}

using V = IdVerdict;

struct PlanCase {
  const char* name;
  std::vector<UsageEvent> events;
  std::vector<size_t> group_ends;
  StoredEvents stored;
  std::vector<V> verdicts;
  std::vector<std::string> difference;  // empty: all ""
};

UsageEvent With(UsageEvent e, const std::function<void(UsageEvent*)>& f) {
  f(&e);
  return e;
}

TEST(PlanEventIdsTest, Table) {
  const UsageEvent a = Event("00000000-0000-4000-8000-00000000000a");
  const UsageEvent b = Event("00000000-0000-4000-8000-00000000000b");
  const UsageEvent c = Event("00000000-0000-4000-8000-00000000000c");
  const UsageEvent a_later = With(a, [](UsageEvent* e) { e->timestamp_us += kHourUs; });
  const UsageEvent a_other = With(a, [](UsageEvent* e) { e->operation = "listDeals"; });
  const UsageEvent b_other = With(b, [](UsageEvent* e) { e->make_account_id = "9"; });
  const PlanCase cases[] = {
      {"all new", {a, b, c}, {}, {}, {V::kNew, V::kNew, V::kNew}, {}},
      {"stored: a retry with a fresh timestamp", {a_later}, {}, {{a.id, a}}, {V::kDuplicate}, {}},
      {"stored: another event", {a_other}, {}, {{a.id, a}}, {V::kConflict}, {"operation"}},
      {"stored, row expired: a duplicate",
       {a_other},
       {},
       {{a.id, std::nullopt}},
       {V::kDuplicate},
       {}},
      {"twice in one call, same", {a, a_later}, {}, {}, {V::kNew, V::kDuplicate}, {}},
      {"twice in one call, different: the later loses",
       {a, a_other},
       {},
       {},
       {V::kNew, V::kConflict},
       {"", "operation"}},
      {"a batch with one conflict is refused whole",
       {b, a_other, c},
       {3},
       {{a.id, a}},
       {V::kWithdrawn, V::kConflict, V::kWithdrawn},
       {"", "operation", ""}},
      {"other requests of the commit are unaffected",
       {b, a_other, c},
       {1, 2, 3},
       {{a.id, a}},
       {V::kNew, V::kConflict, V::kNew},
       {"", "operation", ""}},
      {"a refused request stands for no id",
       {a, b_other, b},
       {2, 3},
       {{b.id, b}},
       {V::kWithdrawn, V::kConflict, V::kDuplicate},
       {"", "make_account_id", ""}},
      {"... so a later request with its id is new",
       {a_other, b_other, a},
       {2, 3},
       {{b.id, b}},
       {V::kWithdrawn, V::kConflict, V::kNew},
       {"", "make_account_id", ""}},
      {"a duplicate within a batch",
       {a, b, a_later},
       {3},
       {},
       {V::kNew, V::kNew, V::kDuplicate},
       {}},
      {"a conflict within a batch",
       {a, b, a_other},
       {3},
       {},
       {V::kWithdrawn, V::kWithdrawn, V::kConflict},
       {"", "", "operation"}},
      {"groups past the given ends form one request",
       {a, b, a_other},
       {1},
       {},
       {V::kNew, V::kWithdrawn, V::kConflict},
       {"", "", "operation"}},
      {"empty", {}, {}, {}, {}, {}},
  };
  for (const PlanCase& tc : cases) {
    SCOPED_TRACE(tc.name);
    std::vector<const UsageEvent*> events;
    for (const UsageEvent& e : tc.events) events.push_back(&e);
    const IdPlan plan = PlanEventIds(events, tc.group_ends, tc.stored);
    EXPECT_EQ(plan.verdicts, tc.verdicts);
    std::vector<std::string> difference = tc.difference;
    if (difference.empty()) difference.assign(tc.events.size(), "");
    EXPECT_EQ(plan.difference, difference);
  }
}

}  // namespace
}  // namespace bpmc::ingestion
