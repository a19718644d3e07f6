#pragma once

#include <chrono>
#include <cstdint>

namespace bpmc {

// Source of wall-clock time. Logic that depends on time takes a Clock so that
// tests can drive it by hand (see notifier::testing::FakeClock). Implementations are
// thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch, UTC.
  virtual int64_t NowMicros() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // A process-wide instance.
  static const SystemClock& Get() {
    static const SystemClock clock;
    return clock;
  }
};

}  // namespace bpmc
