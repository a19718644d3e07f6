#pragma once
// Delivery decisions as pure functions: classification of a send's result,
// retry timing, Retry-After, and the rate-limit / bundling plan. Table-tested.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "notifier/config.h"

namespace bpmc::notifier {

enum class Outcome { kDelivered, kRetry, kPermanent };

// What one send attempt came to, with a short reason for metrics and last_error
// ("ok", "http_429", "http_5xx", "http_4xx", "network", "smtp_4xx", "smtp_5xx", "config").
struct Classification {
  Outcome outcome;
  std::string reason;
};

// HTTP: 2xx delivered; 429, 5xx (and 408) and transport errors retried; other
// statuses permanent. A transport error that no retry can fix (malformed URL,
// unsupported protocol) is permanent. `transport_error` is a CURLcode.
Classification ClassifyHttp(int status, int transport_error);

// SMTP through libcurl: accepted when transport_error is 0; a 5xx reply or a
// refused login is permanent; 4xx replies and network errors are retried.
Classification ClassifySmtp(int smtp_code, int transport_error);

// The wait before retry number `failures` (1 after the first failed attempt):
// d = min(max_backoff, initial_backoff * 2^(failures-1)), then jittered to
// uniformly [(1 - jitter) * d, d] using `unit_random` in [0, 1).
std::chrono::microseconds Backoff(const DeliveryPolicy& policy, int failures, double unit_random);

// A Retry-After header value: delta-seconds ("120") or an HTTP-date
// ("Wed, 21 Oct 2015 07:28:00 GMT"). Returns the wait from `now_micros` (a
// date in the past gives 0), or nullopt when empty or unparseable.
std::optional<std::chrono::microseconds> ParseRetryAfter(std::string_view value,
                                                         int64_t now_micros);

// After a failed attempt (the row has now had `attempts` attempts): give up,
// or retry after `delay`. Retry-After, when given, replaces the backoff if
// longer, capped by policy.max_retry_after.
struct RetryDecision {
  bool give_up = false;
  std::chrono::microseconds delay{0};
};
RetryDecision AfterFailure(const DeliveryPolicy& policy, Outcome outcome, int attempts,
                           std::optional<std::chrono::microseconds> retry_after,
                           double unit_random);

// Rate limit as GCRA, a token bucket kept as one timestamp per destination:
// messages are spaced by T = per / messages on average, with bursts of up to
// `messages`. `tat` is the destination's theoretical arrival time (Unix
// microseconds; 0 for a destination that never sent). Unlimited when
// limit.messages is 0.
// How many messages may go back to back now (a large number when unlimited).
int RateCapacity(int64_t tat, int64_t now, const RateLimit& limit);
// The earliest time at which one more message may go (<= now if it may now).
int64_t NextFreeSlot(int64_t tat, int64_t now, const RateLimit& limit);
// The new `tat` after a message sent at `now`.
int64_t RecordSend(int64_t tat, int64_t now, const RateLimit& limit);

// What to send next to one destination with `due` rows waiting (oldest first)
// and room for `capacity` messages back to back.
//  - capacity 0: wait (until the next free slot);
//  - everything fits (due <= capacity) or bundling is off: the oldest row alone;
//  - otherwise a bundle of the oldest min(ceil(due / capacity), max_bundle)
//    rows: the backlog is spread over the messages the window still allows,
//    so it drains within them instead of falling behind one alert at a time.
// So a storm is sent as evenly filled bundles, one per free slot once the
// burst is spent.
struct SendPlan {
  enum class Kind { kWait, kSend };
  Kind kind = Kind::kWait;
  int alerts = 0;  // rows in the message (1 = single, >1 = bundle)
};
SendPlan PlanSend(int due, int capacity, bool can_bundle, int max_bundle);

}  // namespace bpmc::notifier
