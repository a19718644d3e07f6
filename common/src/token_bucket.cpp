#include "common/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace bpmc {

RateDecision TakeToken(const TokenBucket& bucket, int64_t now_us, int per_minute, int burst) {
  RateDecision d;
  if (per_minute <= 0) {
    d.allowed = true;
    d.next = bucket;
    return d;
  }
  const double capacity = std::max(1, burst);
  const double per_us = per_minute / 60e6;
  double tokens = capacity;
  int64_t updated = now_us;
  if (bucket.tokens >= 0) {
    const int64_t elapsed = std::max<int64_t>(0, now_us - bucket.updated_us);
    tokens = std::min(capacity, bucket.tokens + static_cast<double>(elapsed) * per_us);
    updated = std::max(now_us, bucket.updated_us);
  }
  if (tokens >= 1.0) {
    d.allowed = true;
    d.next = {tokens - 1.0, updated};
    return d;
  }
  d.next = {tokens, updated};
  const double wait_us = (1.0 - tokens) / per_us;
  d.retry_after_s = std::max(1, static_cast<int>(std::ceil(wait_us / 1e6)));
  return d;
}

}  // namespace bpmc
