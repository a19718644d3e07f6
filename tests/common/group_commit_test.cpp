// GroupCommit's mechanics with a recording handler: batches by weight in
// submission order, batches formed by concurrent submitters with each
// submitter woken with its own result, Stop() storing what is queued, and
// Submit after Stop refused.
#include "common/group_commit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace bpmc {
namespace {

using Commit = GroupCommit<int, int>;

// Polls `done` until it holds or 10 s have passed.
bool Eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return done();
}

// A handler that answers job * 10 and records the batches; while held, every
// batch waits before it is handled.
class Recorder {
 public:
  Commit::HandlerFactory Factory() {
    return [this] {
      return [this](Commit::Batch& batch) {
        std::unique_lock<std::mutex> lock(mu_);
        ++waiting_;
        cv_.wait(lock, [&] { return !held_; });
        --waiting_;
        std::vector<int> jobs;
        for (Commit::Item* item : batch) {
          jobs.push_back(item->job);
          item->result = item->job * 10;
        }
        batches_.push_back(jobs);
      };
    };
  }
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  int waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
  }
  std::vector<std::vector<int>> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  int waiting_ = 0;
  std::vector<std::vector<int>> batches_;
};

// Submits on threads of their own; each Submit(job, weight) is queued before
// the next starts (seen through the queue observer).
class Submitters {
 public:
  explicit Submitters(uint64_t max_weight)
      : commit_(max_weight, [this](uint64_t w) {
          if (w > queued_) pushed_ += w - queued_;  // called in order, under the queue's lock
          queued_ = w;
        }) {}
  ~Submitters() { Join(); }
  Commit& commit() { return commit_; }
  uint64_t queued() const { return queued_.load(); }
  void Submit(int job, uint64_t weight = 1) {
    const uint64_t before = pushed_.load();
    threads_.emplace_back([this, job, weight] {
      std::optional<int> r = commit_.Submit(job, weight);
      std::lock_guard<std::mutex> lock(mu_);
      results_[job] = r;
    });
    EXPECT_TRUE(Eventually([&] { return pushed_.load() == before + weight; }));
  }
  // Joins the submitters; their results by job.
  std::map<int, std::optional<int>> Join() {
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    return results_;
  }

 private:
  std::atomic<uint64_t> queued_{0};  // weight queued now
  std::atomic<uint64_t> pushed_{0};  // weight ever queued
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::map<int, std::optional<int>> results_;
  Commit commit_;  // last: stopped before the rest goes
};

TEST(GroupCommitTest, TakesBatchesInOrderUpToTheWeight) {
  struct Case {
    uint64_t max_weight;
    std::vector<uint64_t> weights;  // of jobs 1, 2, ... queued behind job 0
    std::vector<std::vector<int>> batches;
  };
  const std::vector<Case> cases = {
      {4, {1, 1, 1, 1, 1}, {{1, 2, 3, 4}, {5}}},  // by count
      {10, {6, 4, 1}, {{1, 2}, {3}}},             // up to the weight exactly
      {4, {3, 2, 5, 1}, {{1}, {2}, {3}, {4}}},    // 5 is over the limit: alone
      {1, {1, 1, 1}, {{1}, {2}, {3}}},            // one at a time
      {0, {2, 2}, {{1}, {2}}},                    // always at least one
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("max_weight " + std::to_string(c.max_weight));
    Recorder recorder;
    recorder.Hold();
    Submitters submitters(c.max_weight);
    submitters.commit().Start(1, recorder.Factory());
    submitters.Submit(0);  // taken at once, holds the only writer thread
    ASSERT_TRUE(Eventually([&] { return recorder.waiting() == 1 && submitters.queued() == 0; }));
    for (size_t i = 0; i < c.weights.size(); ++i)
      submitters.Submit(static_cast<int>(i) + 1, c.weights[i]);
    recorder.Release();
    const auto results = submitters.Join();
    std::vector<std::vector<int>> want = c.batches;
    want.insert(want.begin(), {0});
    EXPECT_EQ(recorder.batches(), want);
    for (const auto& [job, result] : results) EXPECT_EQ(result, job * 10) << job;
  }
}

TEST(GroupCommitTest, ConcurrentSubmittersShareBatchesAndEachGetsItsOwnResult) {
  // Queued before the writers start: they take 5, 5, 5 and 1.
  {
    Recorder recorder;
    Submitters submitters(5);
    for (int job = 0; job < 16; ++job) submitters.Submit(job);
    submitters.commit().Start(2, recorder.Factory());
    const auto results = submitters.Join();
    std::vector<size_t> sizes;
    for (const auto& batch : recorder.batches()) sizes.push_back(batch.size());
    std::sort(sizes.begin(), sizes.end());
    EXPECT_EQ(sizes, (std::vector<size_t>{1, 5, 5, 5}));
    ASSERT_EQ(results.size(), 16u);
    for (const auto& [job, result] : results) EXPECT_EQ(result, job * 10) << job;
  }
  // Submitted while the writers run: every job handled once, its result to
  // its own submitter, no batch over the limit.
  Recorder recorder;
  Commit commit(8);
  commit.Start(2, recorder.Factory());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const int job = t * 1000 + i;
        if (commit.Submit(job) != job * 10) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  std::map<int, int> handled;
  for (const auto& batch : recorder.batches()) {
    EXPECT_LE(batch.size(), 8u);
    for (int job : batch) ++handled[job];
  }
  EXPECT_EQ(handled.size(), 1600u);
  for (const auto& [job, times] : handled) EXPECT_EQ(times, 1) << job;
}

TEST(GroupCommitTest, StopStoresWhatIsQueuedThenRefuses) {
  Recorder recorder;
  recorder.Hold();
  Submitters submitters(2);
  submitters.commit().Start(1, recorder.Factory());
  submitters.Submit(0);
  ASSERT_TRUE(Eventually([&] { return recorder.waiting() == 1; }));
  submitters.Submit(1);
  submitters.Submit(2);
  submitters.Submit(3);
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    submitters.commit().Stop();
    stopped = true;
  });
  ASSERT_TRUE(Eventually([&] { return submitters.commit().stopping(); }));
  EXPECT_EQ(submitters.commit().Submit(4), std::nullopt);  // refused at once
  EXPECT_FALSE(stopped.load());                            // the queue is not stored yet
  recorder.Release();
  stopper.join();
  EXPECT_EQ(recorder.batches(), (std::vector<std::vector<int>>{{0}, {1, 2}, {3}}));
  const auto results = submitters.Join();
  for (int job = 0; job < 4; ++job) EXPECT_EQ(results.at(job), job * 10) << job;
  // After Stop: refused, never handled; Stop again is a no-op.
  EXPECT_EQ(submitters.commit().Submit(5), std::nullopt);
  submitters.commit().Stop();
  EXPECT_EQ(recorder.batches().size(), 3u);
}

}  // namespace
}  // namespace bpmc
