#include "notifier/policy.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <ctime>

namespace bpmc::notifier {

Classification ClassifyHttp(int status, int transport_error) {
  if (status == 0 || transport_error != 0) {
    switch (transport_error) {
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
        return {Outcome::kPermanent, "config"};
      default:
        return {Outcome::kRetry, "network"};
    }
  }
  if (status >= 200 && status < 300) return {Outcome::kDelivered, "ok"};
  if (status == 429) return {Outcome::kRetry, "http_429"};
  if (status >= 500 || status == 408) return {Outcome::kRetry, "http_5xx"};
  return {Outcome::kPermanent, "http_4xx"};
}

Classification ClassifySmtp(int smtp_code, int transport_error) {
  if (transport_error == 0) return {Outcome::kDelivered, "ok"};
  switch (transport_error) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_LOGIN_DENIED:
      return {Outcome::kPermanent, "config"};
    default:
      break;
  }
  if (smtp_code >= 500 && smtp_code < 600) return {Outcome::kPermanent, "smtp_5xx"};
  if (smtp_code >= 400 && smtp_code < 500) return {Outcome::kRetry, "smtp_4xx"};
  return {Outcome::kRetry, "network"};
}

std::chrono::microseconds Backoff(const DeliveryPolicy& policy, int failures, double unit_random) {
  using std::chrono::microseconds;
  const double initial = static_cast<double>(microseconds(policy.initial_backoff).count());
  const double cap = static_cast<double>(microseconds(policy.max_backoff).count());
  const int exponent = std::clamp(failures - 1, 0, 62);
  double d = std::min(cap, initial * std::pow(2.0, exponent));
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const double r = std::clamp(unit_random, 0.0, 1.0);
  d *= 1.0 - jitter * r;
  return microseconds(static_cast<int64_t>(d));
}

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// IMF-fixdate (RFC 9110 section 5.6.7), the only form senders may generate:
// "Sun, 06 Nov 1994 08:49:37 GMT". Returns Unix seconds.
std::optional<int64_t> ParseImfFixdate(std::string_view s) {
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 29 || s[3] != ',' || s.substr(26) != "GMT") return std::nullopt;
  auto num = [&](size_t pos, size_t len) -> int {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_mday = num(5, 2);
  tm.tm_year = num(12, 4) - 1900;
  tm.tm_hour = num(17, 2);
  tm.tm_min = num(20, 2);
  tm.tm_sec = num(23, 2);
  tm.tm_mon = -1;
  for (int m = 0; m < 12; ++m) {
    if (s.substr(8, 3) == kMonths[m]) tm.tm_mon = m;
  }
  if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_year < 0 || tm.tm_hour < 0 || tm.tm_hour > 23 ||
      tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60 || tm.tm_mon < 0 ||
      s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25] != ' ') {
    return std::nullopt;
  }
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

std::optional<std::chrono::microseconds> ParseRetryAfter(std::string_view value,
                                                         int64_t now_micros) {
  value = Trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (value.size() > 9) value = "999999999";  // ~31 years: capped by the policy anyway
    int64_t seconds = 0;
    for (char c : value) seconds = seconds * 10 + (c - '0');
    return std::chrono::seconds(seconds);
  }
  auto at = ParseImfFixdate(value);
  if (!at) return std::nullopt;
  const int64_t delta = *at * 1000000 - now_micros;
  return std::chrono::microseconds(std::max<int64_t>(0, delta));
}

RetryDecision AfterFailure(const DeliveryPolicy& policy, Outcome outcome, int attempts,
                           std::optional<std::chrono::microseconds> retry_after,
                           double unit_random) {
  RetryDecision d;
  if (outcome != Outcome::kRetry || attempts >= policy.max_attempts) {
    d.give_up = true;
    return d;
  }
  d.delay = Backoff(policy, attempts, unit_random);
  if (retry_after) {
    const std::chrono::microseconds cap = policy.max_retry_after;
    d.delay = std::max(d.delay, std::min(*retry_after, cap));
  }
  return d;
}

namespace {
int64_t PerMicros(const RateLimit& limit) {
  return std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::microseconds>(limit.per).count());
}
// The emission interval T.
int64_t Interval(const RateLimit& limit) {
  return std::max<int64_t>(1, PerMicros(limit) / limit.messages);
}
}  // namespace

int RateCapacity(int64_t tat, int64_t now, const RateLimit& limit) {
  if (limit.messages <= 0) return INT_MAX;
  // A message conforms while the schedule is at most per - T ahead of now.
  const int64_t room = now + PerMicros(limit) - std::max(tat, now);
  return static_cast<int>(std::clamp<int64_t>(room / Interval(limit), 0, limit.messages));
}

int64_t NextFreeSlot(int64_t tat, int64_t now, const RateLimit& limit) {
  if (RateCapacity(tat, now, limit) > 0) return now;
  return tat - PerMicros(limit) + Interval(limit);
}

int64_t RecordSend(int64_t tat, int64_t now, const RateLimit& limit) {
  if (limit.messages <= 0) return 0;
  return std::max(tat, now) + Interval(limit);
}

SendPlan PlanSend(int due, int capacity, bool can_bundle, int max_bundle) {
  SendPlan plan;
  if (due <= 0 || capacity <= 0) return plan;
  plan.kind = SendPlan::Kind::kSend;
  plan.alerts = 1;
  if (can_bundle && due > capacity) {
    // Spread the backlog over the messages the window still allows.
    const int64_t share = (static_cast<int64_t>(due) + capacity - 1) / capacity;
    plan.alerts = static_cast<int>(std::min<int64_t>(share, std::max(1, max_bundle)));
  }
  return plan;
}

}  // namespace bpmc::notifier
