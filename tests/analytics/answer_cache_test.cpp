// AnswerCache (analytics/answer_cache.h): its contract, clause by clause.
#include "analytics/answer_cache.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/testing/fake_clock.h"

namespace bpmc::analytics {
namespace {

using namespace std::chrono_literals;

http::Response Ok(std::string body) {
  http::Response r;
  r.body = std::move(body);
  return r;
}

double Counted(prometheus::Registry& registry, const std::string& result) {
  for (const auto& family : registry.Collect()) {
    if (family.name != "bpmc_exporter_analytics_cache_total") continue;
    for (const auto& m : family.metric)
      for (const auto& l : m.label)
        if (l.name == "result" && l.value == result) return m.counter.value;
  }
  return -1;
}

TEST(AnswerCacheTest, SameKeyWithinTtlIsComputedOnce) {
  testing::FakeClock clock;
  prometheus::Registry registry;
  AnswerCache cache(clock, {1000, 1 << 20}, &registry);
  int computed = 0;
  auto compute = [&] { return Ok("answer " + std::to_string(++computed)); };
  EXPECT_EQ(cache.Get("k", compute).body, "answer 1");
  clock.Advance(999ms);
  EXPECT_EQ(cache.Get("k", compute).body, "answer 1");
  EXPECT_EQ(cache.Get("other", compute).body, "answer 2");
  clock.Advance(1ms);  // 1000 ms after "k" was computed: expired
  EXPECT_EQ(cache.Get("k", compute).body, "answer 3");
  EXPECT_EQ(computed, 3);
  EXPECT_EQ(Counted(registry, "hit"), 1);
  EXPECT_EQ(Counted(registry, "miss"), 3);
}

TEST(AnswerCacheTest, ClockGoingBackExpiresTheEntry) {
  testing::FakeClock clock;
  AnswerCache cache(clock, {1000, 1 << 20});
  int computed = 0;
  auto compute = [&] { return Ok(std::to_string(++computed)); };
  cache.Get("k", compute);
  clock.Advance(-5s);
  EXPECT_EQ(cache.Get("k", compute).body, "2");
}

TEST(AnswerCacheTest, ZeroTtlComputesEveryTime) {
  testing::FakeClock clock;
  AnswerCache cache(clock, {0, 1 << 20});
  int computed = 0;
  auto compute = [&] { return Ok(std::to_string(++computed)); };
  cache.Get("k", compute);
  EXPECT_EQ(cache.Get("k", compute).body, "2");
  EXPECT_EQ(cache.StoredEntries(), 0u);
}

TEST(AnswerCacheTest, BypassComputesAndStoresNothing) {
  testing::FakeClock clock;
  prometheus::Registry registry;
  AnswerCache cache(clock, {1000, 1 << 20}, &registry);
  int computed = 0;
  auto compute = [&] { return Ok(std::to_string(++computed)); };
  EXPECT_EQ(cache.Get("k", compute, /*bypass=*/true).body, "1");
  EXPECT_EQ(cache.StoredEntries(), 0u);
  EXPECT_EQ(cache.Get("k", compute).body, "2");
  EXPECT_EQ(cache.Get("k", compute, /*bypass=*/true).body, "3");
  EXPECT_EQ(cache.Get("k", compute).body, "2");
  EXPECT_EQ(Counted(registry, "bypass"), 2);
}

TEST(AnswerCacheTest, OnlyOkAnswersAreStored) {
  testing::FakeClock clock;
  AnswerCache cache(clock, {1000, 1 << 20});
  for (int status : {404, 429, 500, 503}) {
    int computed = 0;
    auto compute = [&] {
      http::Response r = Ok("x");
      r.status = status;
      ++computed;
      return r;
    };
    const std::string key = "k" + std::to_string(status);
    EXPECT_EQ(cache.Get(key, compute).status, status);
    EXPECT_EQ(cache.Get(key, compute).status, status);
    EXPECT_EQ(computed, 2) << status;
  }
  EXPECT_EQ(cache.StoredEntries(), 0u);
}

TEST(AnswerCacheTest, ConcurrentCallersOfOneKeyShareOneComputation) {
  testing::FakeClock clock;
  prometheus::Registry registry;
  AnswerCache cache(clock, {1000, 1 << 20}, &registry);
  std::atomic<int> computed{0};
  std::atomic<bool> release{false};
  auto slow = [&] {
    ++computed;
    while (!release) std::this_thread::sleep_for(1ms);
    return Ok("slow answer");
  };
  std::string first, second;
  std::thread a([&] { first = cache.Get("k", slow).body; });
  while (computed == 0) std::this_thread::sleep_for(1ms);
  std::thread b([&] { second = cache.Get("k", slow).body; });
  // b is waiting once it has been counted as shared.
  for (int i = 0; i < 5000 && Counted(registry, "shared") < 1; ++i)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(Counted(registry, "shared"), 1);
  release = true;
  a.join();
  b.join();
  EXPECT_EQ(computed, 1);
  EXPECT_EQ(first, "slow answer");
  EXPECT_EQ(second, "slow answer");
}

TEST(AnswerCacheTest, AThrowingComputationReachesWaitersAndIsNotStored) {
  testing::FakeClock clock;
  AnswerCache cache(clock, {1000, 1 << 20});
  std::atomic<bool> entered{false}, release{false};
  auto failing = [&]() -> http::Response {
    entered = true;
    while (!release) std::this_thread::sleep_for(1ms);
    throw std::runtime_error("database gone");
  };
  std::atomic<int> thrown{0};
  std::thread a([&] {
    try {
      cache.Get("k", failing);
    } catch (const std::runtime_error&) {
      ++thrown;
    }
  });
  while (!entered) std::this_thread::sleep_for(1ms);
  std::thread b([&] {
    try {
      cache.Get("k", failing);
    } catch (const std::runtime_error&) {
      ++thrown;
    }
  });
  std::this_thread::sleep_for(20ms);
  release = true;
  a.join();
  b.join();
  // b either waited for a's computation or ran its own after a's was dropped:
  // both end in the exception.
  EXPECT_EQ(thrown, 2);
  EXPECT_EQ(cache.Get("k", [] { return Ok("recovered"); }).body, "recovered");
}

TEST(AnswerCacheTest, MemoryIsBoundedOldestEvictedFirst) {
  testing::FakeClock clock;
  AnswerCache cache(clock, {60000, 800});
  int computed = 0;
  auto of = [&](size_t n) {
    return [&computed, n] {
      ++computed;
      return Ok(std::string(n, 'x'));
    };
  };
  // Larger than max_bytes / 8 (100): never stored.
  cache.Get("big", of(101));
  cache.Get("big", of(101));
  EXPECT_EQ(computed, 2);
  EXPECT_EQ(cache.StoredEntries(), 0u);
  // Nine answers of 100 bytes in 800: the first is evicted.
  for (int i = 0; i < 9; ++i) {
    cache.Get("k" + std::to_string(i), of(100));
    clock.Advance(1ms);
  }
  EXPECT_EQ(cache.StoredBytes(), 800u);
  EXPECT_EQ(cache.StoredEntries(), 8u);
  computed = 0;
  cache.Get("k8", of(100));  // the newest: still there
  EXPECT_EQ(computed, 0);
  cache.Get("k0", of(100));  // the oldest: evicted, computed again
  EXPECT_EQ(computed, 1);
  EXPECT_LE(cache.StoredBytes(), 800u);
}

TEST(AnswerCacheTest, ExpiredEntriesAreDroppedAsNewOnesAreStored) {
  testing::FakeClock clock;
  AnswerCache cache(clock, {1000, 1 << 20});
  for (int i = 0; i < 100; ++i) cache.Get("k" + std::to_string(i), [] { return Ok("x"); });
  EXPECT_EQ(cache.StoredEntries(), 100u);
  clock.Advance(2s);
  cache.Get("new", [] { return Ok("y"); });
  EXPECT_EQ(cache.StoredEntries(), 1u);
  EXPECT_EQ(cache.StoredBytes(), 1u);
}

}  // namespace
}  // namespace bpmc::analytics
