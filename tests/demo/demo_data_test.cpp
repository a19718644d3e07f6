// GenerateDemoData and BillingEventsJson (demo/demo_data.h): the pure half.

#include "demo/demo_data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <variant>

#include "billing/billing.h"

namespace bpmc::demo {
namespace {

constexpr int64_t kHour = 3600LL * 1000000;
constexpr int64_t kDay = 24 * kHour;
// 2026-11-25T10:17:00Z, a Wednesday.
constexpr int64_t kNow = 1795601820LL * 1000000;

const DemoData& Month() {
  static const DemoData d = GenerateDemoData({30, 42, kNow});
  return d;
}

TEST(DemoData, TheSameSeedGivesTheSameData) {
  const DemoData again = GenerateDemoData({30, 42, kNow});
  const DemoData& d = Month();
  ASSERT_EQ(again.events.size(), d.events.size());
  for (size_t i = 0; i < d.events.size(); ++i) {
    ASSERT_EQ(again.events[i].event, d.events[i].event) << i;
    ASSERT_EQ(again.events[i].customer, d.events[i].customer) << i;
  }
  EXPECT_EQ(BillingEventsJson(again), BillingEventsJson(d));
  const DemoData other = GenerateDemoData({30, 43, kNow});
  EXPECT_NE(other.events.size() == d.events.size() && other.events[0].event == d.events[0].event,
            true);
  EXPECT_NE(BillingEventsJson(other), BillingEventsJson(d));
}

TEST(DemoData, SizesAndShapeOfAMonth) {
  const DemoData& d = Month();
  EXPECT_EQ(d.to_us, kNow);
  EXPECT_EQ(d.from_us, kNow - 30 * kDay);
  EXPECT_GE(d.events.size(), 150000u);
  EXPECT_LE(d.events.size(), 300000u);
  EXPECT_GE(d.customers.size(), 30u);
  EXPECT_LE(d.customers.size(), 50u);
  EXPECT_GE(d.connectors.size(), 4u);
  for (const auto& c : d.connectors) EXPECT_FALSE(c.name.empty()) << c.id;

  std::set<std::string> ids;
  std::map<std::string, std::set<std::string>> ops;
  std::set<std::string> error_types;
  size_t errors = 0;
  int64_t last = 0;
  for (const DemoEvent& e : d.events) {
    ASSERT_TRUE(ids.insert(e.event.id).second) << e.event.id;
    ASSERT_GE(e.event.timestamp_us, d.from_us);
    ASSERT_LT(e.event.timestamp_us, d.to_us);
    ASSERT_GE(e.event.timestamp_us, last);  // in time order
    last = e.event.timestamp_us;
    ASSERT_TRUE(e.event.api_key_id.empty());
    ASSERT_FALSE(e.event.make_account_id.empty());
    ops[e.event.connector].insert(e.event.operation);
    if (e.event.status == ingestion::EventStatus::kError) {
      ++errors;
      error_types.insert(e.event.error_type);
      EXPECT_FALSE(e.event.error_message.empty());
    }
    if (e.event.duration_ms) {
      ASSERT_GE(*e.event.duration_ms, 0);
      ASSERT_LE(*e.event.duration_ms, ingestion::kMaxDurationMs);
    }
  }
  EXPECT_EQ(ops.size(), d.connectors.size());
  for (const auto& [connector, names] : ops) EXPECT_GE(names.size(), 3u) << connector;
  const double error_share = static_cast<double>(errors) / d.events.size();
  EXPECT_GE(error_share, 0.02);
  EXPECT_LE(error_share, 0.05);
  EXPECT_GE(error_types.size(), 4u);
}

// An event's customer has a subscription to its connector, active at its time.
TEST(DemoData, EventsComeFromActiveSubscriptions) {
  const DemoData& d = Month();
  for (size_t i = 0; i < d.events.size(); i += 97) {
    const DemoEvent& e = d.events[i];
    bool active = false;
    for (const DemoSubscription& s : d.subscriptions) {
      if (s.customer != e.customer || d.connectors[s.connector].id != e.event.connector) continue;
      active |= s.started_us <= e.event.timestamp_us &&
                (!s.cancelled_us || *s.cancelled_us > e.event.timestamp_us);
    }
    ASSERT_TRUE(active) << i;
    const auto& accounts = d.customers[e.customer].accounts;
    ASSERT_NE(std::find(accounts.begin(), accounts.end(), e.event.make_account_id), accounts.end());
  }
}

TEST(DemoData, DailyAndWeeklyRhythm) {
  const DemoData& d = Month();
  std::map<int, double> by_local_hour;
  std::map<int64_t, double> by_local_day;
  for (const DemoEvent& e : d.events) {
    const int64_t local = e.event.timestamp_us + 3 * kHour;
    by_local_hour[static_cast<int>(local % kDay / kHour)] += 1;
    by_local_day[local / kDay] += 1;
  }
  EXPECT_GT(by_local_hour[11], 5 * by_local_hour[3]);
  // A weekend day has well under 60 % of the traffic of a working day (whole days only).
  double weekday = 0, weekend = 0, weekdays = 0, weekends = 0;
  for (const auto& [day, n] : by_local_day) {
    if (day == by_local_day.begin()->first || day == by_local_day.rbegin()->first) continue;
    const bool rest = (day + 3) % 7 >= 5;  // 0 = Monday
    (rest ? weekend : weekday) += n;
    (rest ? weekends : weekdays) += 1;
  }
  ASSERT_GT(weekends, 0);
  EXPECT_LT((weekend / weekends) / (weekday / weekdays), 0.6);
}

TEST(DemoData, SubscriptionsPaymentsAndIncidents) {
  const DemoData& d = Month();
  size_t trials = 0, converted = 0, cancelled = 0, paid = 0;
  for (const DemoSubscription& s : d.subscriptions) {
    trials += s.trial && !s.converted_us && !s.cancelled_us;
    converted += s.converted_us.has_value();
    cancelled += s.cancelled_us.has_value();
    paid += !s.trial && !s.cancelled_us;
    EXPECT_LE(s.started_us, kNow);
  }
  EXPECT_GT(trials, 0u);
  EXPECT_GT(converted, 0u);
  EXPECT_GT(cancelled, 0u);
  EXPECT_GT(paid, 0u);
  std::set<std::string> reasons;
  for (const DemoPayment& p : d.payments) {
    EXPECT_LE(p.at_us, kNow);
    if (p.failed) reasons.insert(p.reason);
  }
  EXPECT_GE(reasons.size(), 2u);

  ASSERT_EQ(d.incidents.size(), 2u);
  EXPECT_EQ(d.incidents[0].status, "resolved");
  EXPECT_TRUE(d.incidents[0].resolved_us.has_value());
  EXPECT_EQ(d.incidents[1].status, "triggered");
  EXPECT_NE(d.incidents[0].group_key, d.incidents[1].group_key);
  for (const auto& i : d.incidents) {
    EXPECT_FALSE(i.timeline.empty());
    EXPECT_GE(i.created_us, d.from_us);
    EXPECT_LE(i.created_us, kNow);
  }
}

// Every billing event passes the route's own parser, in one batch per 1,000.
TEST(DemoData, BillingEventsAreValid) {
  const std::vector<std::string> events = BillingEventsJson(Month());
  EXPECT_EQ(events.size() >= Month().subscriptions.size() + Month().payments.size(), true);
  billing::BillingParseOptions popts;
  popts.now_us = kNow;
  for (size_t i = 0; i < events.size(); i += 1000) {
    std::string body = "[";
    for (size_t j = i; j < events.size() && j < i + 1000; ++j)
      body += (j > i ? "," : "") + events[j];
    auto parsed = billing::ParseBillingEvents(body + "]", popts);
    const auto* err = std::get_if<RequestError>(&parsed);
    ASSERT_EQ(err, nullptr) << err->field << ": " << err->message;
  }
}

TEST(DemoData, ShortPeriods) {
  const DemoData d = GenerateDemoData({1, 5, kNow});
  EXPECT_GT(d.events.size(), 3000u);
  EXPECT_LT(d.events.size(), 12000u);
  for (const DemoEvent& e : d.events) ASSERT_GE(e.event.timestamp_us, kNow - kDay);
  EXPECT_EQ(d.incidents.size(), 2u);
}

}  // namespace
}  // namespace bpmc::demo
