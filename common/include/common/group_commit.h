#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace bpmc {

// A one-shot "done" flag that one thread sleeps on and another sets, on a
// Linux futex. Set() is one store and one wake syscall, and the waiter wakes
// straight into its own code: with a condition variable notified under its
// mutex (needed when the waiter may destroy the flag as soon as it sees it),
// the woken waiter first sleeps again on the mutex the setter still holds --
// two more futex calls and a context switch per submission, measured with
// `strace -c` at ~4.7 futex calls per single-event request (bench/ingest_bench.sh).
//
// The waiter may return and destroy the flag as soon as Set() has stored it:
// the wake that follows uses only the word's address, and a FUTEX_WAKE on an
// address whose owner is gone wakes at most a waiter that reuses it, which
// rechecks its own word (a spurious wakeup that every futex waiter handles).
class OneShotFlag {
 public:
  void Wait() {
    while (state_.load(std::memory_order_acquire) == 0) {
      // Sleeps only while the word is still 0: a Set() between the load and
      // the syscall makes it return at once (EAGAIN).
      syscall(SYS_futex, Word(), FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
    }
  }
  void Set() {
    int* word = Word();
    state_.store(1, std::memory_order_release);
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }

 private:
  static_assert(sizeof(std::atomic<int>) == sizeof(int) && std::atomic<int>::is_always_lock_free,
                "a futex word is a plain int");
  int* Word() { return reinterpret_cast<int*>(&state_); }
  std::atomic<int> state_{0};
};

// Group commit. Submitter threads Submit() a job and block; writer threads
// each take everything queued, in order, up to a total weight (an item
// heavier than the limit goes alone), hand it as one batch to their handler
// (one transaction), then wake each submitter with the result the handler
// set. So N concurrent submissions cost one commit, not N.
//
// The policy -- how a batch is stored, what happens when it fails -- is the
// handler's; this class holds only the queue, the threads and the wake-ups.
// Per submission it takes the queue's lock once (to queue; a writer takes it
// once per batch) and sleeps once on its own OneShotFlag (one wake syscall
// by the writer); it allocates nothing but the queue's amortised growth (each writer thread
// reuses its batch vector).
//
// Thread-safe. `Job` is movable; `Result` is default-constructible and
// movable.
template <typename Job, typename Result>
class GroupCommit {
 public:
  // One queued submission. The handler reads `job` and sets `result`; the
  // item lives on its submitter's stack until the batch is completed.
  class Item {
   public:
    Job job;
    Result result{};

   private:
    friend class GroupCommit;
    explicit Item(Job j, uint64_t w) : job(std::move(j)), weight(w) {}
    const uint64_t weight;
    // Its own flag, not the queue's lock: completing a batch wakes each
    // submitter without making them all contend for the queue's lock
    // (measured: lock handoffs were a tenth of the exporter's CPU at 9k
    // single events/s).
    OneShotFlag done;
  };
  using Batch = std::vector<Item*>;  // in submission order
  // Stores a batch: sets each item's result; must not throw. Each writer
  // thread calls only its own handler, so handlers of different threads run
  // at the same time.
  using Handler = std::function<void(Batch&)>;
  // Called once in each writer thread before its first batch; returns that
  // thread's handler (which may own per-thread state, e.g. a connection).
  using HandlerFactory = std::function<Handler()>;
  // Called with the total weight queued after every change, under the
  // queue's lock (so calls are in order); must be cheap and must not call
  // back into this object.
  using QueueObserver = std::function<void(uint64_t)>;

  // `max_batch_weight`: a batch takes items while their total weight stays
  // within it (always at least one item).
  explicit GroupCommit(uint64_t max_batch_weight, QueueObserver on_queued = {})
      : max_batch_weight_(max_batch_weight), on_queued_(std::move(on_queued)) {}
  ~GroupCommit() { Stop(); }
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Starts `threads` writer threads (at least one), each with the handler
  // `make_handler` returns in it. Call once, after whatever the handlers use
  // exists. Submits before Start wait in the queue until then; Stop before
  // Start leaves them waiting, so call Start first.
  void Start(int threads, const HandlerFactory& make_handler) {
    std::lock_guard<std::mutex> lock(threads_mu_);
    for (int i = 0; i < std::max(threads, 1); ++i) {
      threads_.emplace_back([this, make_handler] { WriterLoop(make_handler()); });
    }
  }

  // Queues `job` with `weight` and blocks until a handler has stored it;
  // returns the result the handler set. nullopt (and `job` not handled) once
  // Stop() has begun.
  std::optional<Result> Submit(Job job, uint64_t weight = 1) {
    Item item(std::move(job), weight);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return std::nullopt;
      queue_.push_back(&item);
      queued_weight_ += weight;
      if (on_queued_) on_queued_(queued_weight_);
    }
    work_cv_.notify_one();
    item.done.Wait();  // acquire: the handler's writes to item.result are visible
    return std::move(item.result);
  }

  // True once Stop() has begun: Submits are refused from then on.
  bool stopping() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  // Refuses new submissions, lets the writer threads store everything
  // already queued, then joins them. Idempotent; may be called from any
  // thread but a writer thread.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    std::lock_guard<std::mutex> lock(threads_mu_);
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void WriterLoop(Handler handle) {
    Batch batch;
    while (Take(&batch)) {
      handle(batch);
      // The submitter owns *item and may destroy it as soon as it sees done:
      // nothing touches the item after Set().
      for (Item* item : batch) item->done.Set();
    }
  }

  // Waits for work and moves the next batch into *batch; false when
  // stopping and nothing is queued.
  bool Take(Batch* batch) {
    batch->clear();
    std::unique_lock<std::mutex> lock(mu_);
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return false;
    uint64_t weight = 0;
    while (!queue_.empty() &&
           (batch->empty() || weight + queue_.front()->weight <= max_batch_weight_)) {
      weight += queue_.front()->weight;
      batch->push_back(queue_.front());
      queue_.pop_front();
    }
    queued_weight_ -= weight;
    if (on_queued_) on_queued_(queued_weight_);
    return true;
  }

  const uint64_t max_batch_weight_;
  const QueueObserver on_queued_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // writers: something queued, or stopping
  std::deque<Item*> queue_;          // guarded by mu_
  uint64_t queued_weight_ = 0;       // guarded by mu_
  bool stopping_ = false;            // guarded by mu_

  std::mutex threads_mu_;  // Start and Stop
  std::vector<std::thread> threads_;
};

}  // namespace bpmc
