#pragma once
// A token bucket as a pure function: the rate limits of the analytics API (per
// user) and of audit records of refusals (per client address) share it.

#include <cstdint>

namespace bpmc {

// One bucket's state. `tokens` < 0 means never used (a full bucket).
struct TokenBucket {
  double tokens = -1;
  int64_t updated_us = 0;
};

struct RateDecision {
  bool allowed = false;
  int retry_after_s = 0;  // when refused: whole seconds until a token is there (>= 1)
  TokenBucket next;       // the state to keep (also when refused)
};

// Pure: takes one token from `bucket` at `now_us`. The bucket holds at most
// `burst` tokens (at least 1) and gains `per_minute` / 60 a second;
// per_minute <= 0 allows everything. A clock going backwards adds nothing.
RateDecision TakeToken(const TokenBucket& bucket, int64_t now_us, int per_minute, int burst);

}  // namespace bpmc
