#include "analytics/analytics_limits.h"

#include <algorithm>
#include <cmath>

#include "common/time.h"

namespace bpmc::analytics {

int MaxPeriodDays(Role role, const AnalyticsLimits& limits) {
  switch (role) {
    case Role::kAdmin:
      return limits.max_days_admin;
    case Role::kManager:
      return limits.max_days_manager;
    case Role::kSupport:
      return limits.max_days_support;
    case Role::kUser:
      return limits.max_days_user;
  }
  return limits.max_days_user;
}

std::optional<RequestError> CheckPeriod(Role role, int64_t from_us, int64_t to_us,
                                        const AnalyticsLimits& limits) {
  const int days = MaxPeriodDays(role, limits);
  if (to_us - from_us <= static_cast<int64_t>(days) * kMicrosPerDay) return std::nullopt;
  return RequestError{400,
                      std::string("the period from..to may span at most ") + std::to_string(days) +
                          " days for the role " + RoleName(role),
                      "from"};
}

AnalyticsLimiter::AnalyticsLimiter(const Clock& clock, AnalyticsLimits limits)
    : clock_(clock), limits_(limits) {}

AnalyticsLimiter::Ticket AnalyticsLimiter::Admit(const std::string& user_id) {
  Ticket t;
  std::lock_guard<std::mutex> lock(mu_);
  State& s = users_[user_id];
  if (limits_.concurrent_per_user > 0 && s.in_flight >= limits_.concurrent_per_user) {
    t.verdict = Verdict::kTooManyInFlight;
    t.retry_after_s = 1;
    return t;
  }
  const RateDecision d =
      TakeToken(s.bucket, clock_.NowMicros(), limits_.requests_per_minute, limits_.burst);
  s.bucket = d.next;
  if (!d.allowed) {
    t.verdict = Verdict::kRateLimited;
    t.retry_after_s = d.retry_after_s;
    return t;
  }
  ++s.in_flight;
  t.owner_ = this;
  t.user_ = user_id;
  return t;
}

void AnalyticsLimiter::Release(const std::string& user_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = users_.find(user_id);
  if (it != users_.end() && it->second.in_flight > 0) --it->second.in_flight;
}

AnalyticsLimiter::Ticket::~Ticket() {
  if (owner_) owner_->Release(user_);
}

}  // namespace bpmc::analytics
