// Analytics limits as pure decisions (exporter/analytics_limits.h).
#include "analytics/analytics_limits.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace bpmc::analytics {
namespace {

constexpr int64_t kSec = 1'000'000;

TEST(TakeToken, Table) {
  struct Case {
    const char* name;
    TokenBucket bucket;
    int64_t now;
    int per_minute, burst;
    bool allowed;
    int retry_after_s;
    double tokens_after;
  };
  const std::vector<Case> cases = {
      {"new user gets a full bucket", {}, 100 * kSec, 60, 5, true, 0, 4},
      {"last token", {1.0, 100 * kSec}, 100 * kSec, 60, 5, true, 0, 0},
      {"empty: one a second at 60/min", {0.0, 100 * kSec}, 100 * kSec, 60, 5, false, 1, 0},
      {"empty: 6/min waits 10 s", {0.0, 100 * kSec}, 100 * kSec, 6, 5, false, 10, 0},
      {"half a token: 6/min waits 5 s", {0.5, 100 * kSec}, 100 * kSec, 6, 5, false, 5, 0.5},
      {"refilled after a second", {0.0, 100 * kSec}, 101 * kSec, 60, 5, true, 0, 0},
      {"refill stops at burst", {0.0, 0}, 1000 * kSec, 60, 5, true, 0, 4},
      {"clock backwards adds nothing", {0.0, 100 * kSec}, 50 * kSec, 60, 5, false, 1, 0},
      {"no rate limit", {0.0, 100 * kSec}, 100 * kSec, 0, 5, true, 0, 0},
      {"burst below 1 acts as 1", {}, 0, 60, 0, true, 0, 0},
  };
  for (const Case& c : cases) {
    const RateDecision d = TakeToken(c.bucket, c.now, c.per_minute, c.burst);
    EXPECT_EQ(d.allowed, c.allowed) << c.name;
    EXPECT_EQ(d.retry_after_s, c.retry_after_s) << c.name;
    EXPECT_NEAR(d.next.tokens, c.tokens_after, 1e-9) << c.name;
  }
}

TEST(TakeToken, SustainedRateIsTheLimit) {
  TokenBucket b;
  int allowed = 0;
  // 10 requests a second for 60 s against 120/min with a burst of 30.
  for (int64_t t = 0; t < 60 * kSec; t += kSec / 10) {
    const RateDecision d = TakeToken(b, t, 120, 30);
    b = d.next;
    allowed += d.allowed ? 1 : 0;
  }
  EXPECT_GE(allowed, 30 + 118);
  EXPECT_LE(allowed, 30 + 120);
}

TEST(CheckPeriod, PerRole) {
  AnalyticsLimits l;
  l.max_days_admin = 3660;
  l.max_days_manager = 365;
  l.max_days_support = 31;
  l.max_days_user = 93;
  const int64_t day = 86400 * kSec;
  struct Case {
    Role role;
    int64_t days;
    bool ok;
  };
  for (const Case& c : std::vector<Case>{{Role::kAdmin, 3660, true},
                                         {Role::kManager, 365, true},
                                         {Role::kManager, 366, false},
                                         {Role::kSupport, 31, true},
                                         {Role::kSupport, 32, false},
                                         {Role::kUser, 93, true},
                                         {Role::kUser, 94, false}}) {
    const auto err = CheckPeriod(c.role, 0, c.days * day, l);
    EXPECT_EQ(!err, c.ok) << RoleName(c.role) << " " << c.days;
    if (err) {
      EXPECT_EQ(err->http_status, 400);
      EXPECT_EQ(err->field, "from");
      EXPECT_NE(err->message.find(std::to_string(MaxPeriodDays(c.role, l)) + " days"),
                std::string::npos);
    }
  }
  EXPECT_TRUE(CheckPeriod(Role::kSupport, 0, 31 * day + 1, l).has_value());
}

class ManualClock final : public Clock {
 public:
  int64_t NowMicros() const override { return now.load(); }
  std::atomic<int64_t> now{1000 * kSec};
};

TEST(AnalyticsLimiter, ConcurrencyThenRatePerUser) {
  ManualClock clock;
  AnalyticsLimits l;
  l.requests_per_minute = 60;
  l.burst = 3;
  l.concurrent_per_user = 2;
  AnalyticsLimiter limiter(clock, l);
  {
    auto a = limiter.Admit("u1");
    auto b = limiter.Admit("u1");
    EXPECT_EQ(a.verdict, AnalyticsLimiter::Verdict::kAdmitted);
    EXPECT_EQ(b.verdict, AnalyticsLimiter::Verdict::kAdmitted);
    auto c = limiter.Admit("u1");  // a third in flight: refused, no token spent
    EXPECT_EQ(c.verdict, AnalyticsLimiter::Verdict::kTooManyInFlight);
    EXPECT_EQ(c.retry_after_s, 1);
    EXPECT_EQ(limiter.Admit("u2").verdict, AnalyticsLimiter::Verdict::kAdmitted);  // others
  }
  // Both finished: one token is left of the burst of 3.
  EXPECT_EQ(limiter.Admit("u1").verdict, AnalyticsLimiter::Verdict::kAdmitted);
  auto refused = limiter.Admit("u1");
  EXPECT_EQ(refused.verdict, AnalyticsLimiter::Verdict::kRateLimited);
  EXPECT_EQ(refused.retry_after_s, 1);
  clock.now += kSec;
  EXPECT_EQ(limiter.Admit("u1").verdict, AnalyticsLimiter::Verdict::kAdmitted);
}

}  // namespace
}  // namespace bpmc::analytics
