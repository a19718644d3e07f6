#pragma once

// A short-lived cache of analytics answers, so that readers asking the same
// question within `ttl_ms` share one computation (docs/ANALYTICS.md, "Answer
// cache"): dashboards refreshed by several people, panels of one page.
//
// Contract:
//  - Get(key, compute) returns the answer stored for `key` when it was computed
//    less than ttl_ms ago (by the injected Clock); otherwise it runs compute().
//    An answer is therefore at most ttl_ms older than a fresh one would be,
//    and it still states its own "as_of": nothing in it is rewritten.
//  - Single flight: while compute() runs for a key, other callers of that key
//    wait for its result instead of computing it again.
//  - Only 200 answers are stored; any other (a 404, a 503 of a busy database) is
//    handed to the callers that waited for it and forgotten.
//  - Memory is bounded: an answer larger than max_bytes / 8 is not stored, and
//    storing one evicts the entries that expire first until the stored bodies
//    fit in max_bytes. Expired entries are dropped as new ones are stored.
//  - ttl_ms == 0 disables the cache: every call computes. So does bypass = true
//    (the request's `Cache-Control: no-cache`), for that call only; its answer
//    is not stored.
//  - The key must name everything the answer depends on besides the data: the
//    caller builds it (endpoint, every parameter, the role's scope).
//  - If compute() throws, the exception reaches the caller and every waiter,
//    and nothing is stored.
// Thread-safe. Results are counted in bpmc_exporter_analytics_cache_total{result}
// (hit, miss, shared: waited for another caller's computation, bypass).

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "http/types.h"

namespace bpmc::analytics {

struct AnswerCacheOptions {
  int ttl_ms = 1000;                    // analytics_cache_ms; 0 = off
  size_t max_bytes = 64 * 1024 * 1024;  // analytics_cache_bytes: bodies stored at most
};

class AnswerCache {
 public:
  // `clock` is not owned; `registry` may be null (no metrics).
  AnswerCache(const Clock& clock, AnswerCacheOptions options,
              prometheus::Registry* registry = nullptr);

  http::Response Get(const std::string& key, const std::function<http::Response()>& compute,
                     bool bypass = false);

  // Bytes of the bodies stored now, and their count (tests, metrics).
  size_t StoredBytes() const;
  size_t StoredEntries() const;

 private:
  struct Entry {
    std::shared_future<http::Response> answer;
    bool done = false;      // answer is ready and stored
    int64_t stored_us = 0;  // when it was computed
    size_t bytes = 0;       // body size, counted in bytes_ once done
  };
  // Removes entries that are done and expired at now_us. Needs mu_.
  void DropExpiredLocked(int64_t now_us);
  // Evicts done entries, the oldest first, until `incoming` more bytes fit. Needs mu_.
  void MakeRoomLocked(size_t incoming);
  bool FreshLocked(const Entry& e, int64_t now_us) const;

  const Clock& clock_;
  const AnswerCacheOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
  size_t bytes_ = 0;
  prometheus::Counter* hits_ = nullptr;
  prometheus::Counter* misses_ = nullptr;
  prometheus::Counter* shared_ = nullptr;
  prometheus::Counter* bypassed_ = nullptr;
};

}  // namespace bpmc::analytics
