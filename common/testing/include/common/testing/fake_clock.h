#pragma once
// Test-only (bpmc::common_testing): a Clock the test sets and advances by hand.

#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/clock.h"

namespace bpmc::testing {

// Thread-safe. Starts at 2027-01-15T08:00:00Z unless told otherwise.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_micros = 1'800'000'000'000'000) : now_(now_micros) {}
  int64_t NowMicros() const override { return now_.load(); }
  void Set(int64_t micros) { now_.store(micros); }
  void Advance(std::chrono::microseconds d) { now_.fetch_add(d.count()); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace bpmc::testing
