#pragma once

// Limits of the analytics API (docs/ANALYTICS.md, "Limits"): per user, a token
// bucket of requests and a cap on requests in flight (429 + Retry-After); per
// role, the longest period (400 naming `from`); and how long a request waits
// for a pooled connection (503 + Retry-After). The decisions are pure
// functions; AnalyticsLimiter keeps the per-user state.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "analytics/access.h"
#include "common/clock.h"
#include "common/request_error.h"
#include "common/token_bucket.h"

namespace bpmc::analytics {

struct AnalyticsLimits {
  int requests_per_minute = 120;  // per user, sustained; 0 = no rate limit
  int burst = 30;                 // per user, requests at once after a quiet spell
  int concurrent_per_user = 4;    // per user, requests in flight; 0 = no limit
  // The longest period (`to` - `from`) each role may ask for, in days.
  int max_days_admin = 3660;
  int max_days_manager = 1830;
  int max_days_support = 93;
  int max_days_user = 400;
  int pool_wait_ms = 2000;  // wait for a pooled connection, then 503
};

// The per-user rate limit is a token bucket (common/token_bucket.h).
using bpmc::RateDecision;
using bpmc::TakeToken;
using bpmc::TokenBucket;

// Pure: the role's longest period in days.
int MaxPeriodDays(Role role, const AnalyticsLimits& limits);

// Pure: 400 naming `from` when [from_us, to_us) is longer than the role may ask for.
std::optional<RequestError> CheckPeriod(Role role, int64_t from_us, int64_t to_us,
                                        const AnalyticsLimits& limits);

// Per-user state of the rate and concurrency limits. Thread-safe.
class AnalyticsLimiter {
 public:
  AnalyticsLimiter(const Clock& clock, AnalyticsLimits limits);

  enum class Verdict { kAdmitted, kRateLimited, kTooManyInFlight };
  // An admission: while it lives the user has one more request in flight.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& o) noexcept
        : verdict(o.verdict),
          retry_after_s(o.retry_after_s),
          owner_(o.owner_),
          user_(std::move(o.user_)) {
      o.owner_ = nullptr;
    }
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket();
    Verdict verdict = Verdict::kAdmitted;
    int retry_after_s = 0;  // when refused

   private:
    friend class AnalyticsLimiter;
    AnalyticsLimiter* owner_ = nullptr;
    std::string user_;
  };
  // The in-flight cap is checked first (a refused request spends no token).
  Ticket Admit(const std::string& user_id);

  const AnalyticsLimits& limits() const { return limits_; }

 private:
  struct State {
    TokenBucket bucket;
    int in_flight = 0;
  };
  void Release(const std::string& user_id);

  const Clock& clock_;
  const AnalyticsLimits limits_;
  std::mutex mu_;
  std::map<std::string, State> users_;
};

}  // namespace bpmc::analytics
