#include "analytics/answer_cache.h"

#include <exception>
#include <utility>

namespace bpmc::analytics {

AnswerCache::AnswerCache(const Clock& clock, AnswerCacheOptions options,
                         prometheus::Registry* registry)
    : clock_(clock), options_(options) {
  if (registry == nullptr) return;
  auto& family = prometheus::BuildCounter()
                     .Name("bpmc_exporter_analytics_cache_total")
                     .Help(
                         "Analytics answers by how the answer cache served them: hit (stored "
                         "answer), miss (computed), shared (waited for another request's "
                         "computation of the same answer), bypass (Cache-Control: no-cache)")
                     .Register(*registry);
  hits_ = &family.Add({{"result", "hit"}});
  misses_ = &family.Add({{"result", "miss"}});
  shared_ = &family.Add({{"result", "shared"}});
  bypassed_ = &family.Add({{"result", "bypass"}});
}

namespace {
void Count(prometheus::Counter* c) {
  if (c != nullptr) c->Increment();
}
}  // namespace

bool AnswerCache::FreshLocked(const Entry& e, int64_t now_us) const {
  return e.done && now_us >= e.stored_us &&
         now_us - e.stored_us < static_cast<int64_t>(options_.ttl_ms) * 1000;
}

http::Response AnswerCache::Get(const std::string& key,
                                const std::function<http::Response()>& compute, bool bypass) {
  if (options_.ttl_ms <= 0 || bypass) {
    Count(bypass ? bypassed_ : misses_);
    return compute();
  }
  std::promise<http::Response> promise;
  std::shared_ptr<Entry> mine;
  const int64_t started_us = clock_.NowMicros();
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      std::shared_ptr<Entry> e = it->second;
      if (!e->done || FreshLocked(*e, started_us)) {
        Count(e->done ? hits_ : shared_);
        lock.unlock();
        return e->answer.get();  // a copy; waits while another caller computes it
      }
      bytes_ -= e->bytes;
      entries_.erase(it);
    }
    mine = std::make_shared<Entry>();
    mine->answer = promise.get_future().share();
    entries_.emplace(key, mine);
    Count(misses_);
  }

  http::Response answer;
  try {
    answer = compute();
  } catch (...) {
    promise.set_exception(std::current_exception());
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second == mine) entries_.erase(it);
    throw;
  }
  promise.set_value(answer);

  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second != mine) return answer;
  const size_t size = answer.body.size();
  if (answer.status != 200 || size > options_.max_bytes / 8) {
    entries_.erase(it);
    return answer;
  }
  DropExpiredLocked(clock_.NowMicros());
  MakeRoomLocked(size);
  // Aged from when the computation began: its snapshot was taken then.
  mine->stored_us = started_us;
  mine->bytes = size;
  mine->done = true;
  bytes_ += size;
  return answer;
}

void AnswerCache::DropExpiredLocked(int64_t now_us) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = *it->second;
    if (e.done && !FreshLocked(e, now_us)) {
      bytes_ -= e.bytes;
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

void AnswerCache::MakeRoomLocked(size_t incoming) {
  while (bytes_ + incoming > options_.max_bytes) {
    auto oldest = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second->done &&
          (oldest == entries_.end() || it->second->stored_us < oldest->second->stored_us))
        oldest = it;
    }
    if (oldest == entries_.end()) return;  // only computations in flight: nothing to evict
    bytes_ -= oldest->second->bytes;
    entries_.erase(oldest);
  }
}

size_t AnswerCache::StoredBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

size_t AnswerCache::StoredEntries() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [key, e] : entries_) n += e->done ? 1 : 0;
  return n;
}

}  // namespace bpmc::analytics
