#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/connection>
#include <pqxx/transaction>
#include <string>
#include <vector>

namespace bpmc {

// A small pool of PostgreSQL connections for request handlers. Connections
// are opened lazily and dropped after an error (the next Acquire opens a new
// one). Thread-safe.
class PgPool {
 public:
  PgPool(std::string url, size_t max_size) : url_(std::move(url)), max_size_(max_size) {}

  class Lease {
   public:
    Lease(PgPool* pool, std::unique_ptr<pqxx::connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (pool_ && conn_) pool_->Return(std::move(conn_), broken_);
    }
    pqxx::connection& operator*() { return *conn_; }
    pqxx::connection* operator->() { return conn_.get(); }
    // Call after a failure that may have broken the connection.
    void MarkBroken() { broken_ = true; }

   private:
    PgPool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    bool broken_ = false;
  };

  // Waits for a free connection (opening one when below max_size). Throws
  // pqxx::broken_connection when a new connection cannot be opened.
  Lease Acquire() { return *Take(/*wait=*/true); }

  // Like Acquire, but waits at most `timeout` for a connection to be returned:
  // nullopt when none came (the caller answers "busy, retry"). Throws
  // pqxx::broken_connection when a new connection cannot be opened.
  std::optional<Lease> AcquireFor(std::chrono::milliseconds timeout) {
    return Take(/*wait=*/true, timeout);
  }

  // A connection without waiting: an idle one, or a new one when below
  // max_size; nullopt when every connection is leased or a new one cannot be
  // opened. For optional extra work that can fall back to a lease it holds.
  std::optional<Lease> TryAcquire() {
    try {
      return Take(/*wait=*/false);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

 private:
  std::optional<Lease> Take(bool wait,
                            std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    std::unique_lock<std::mutex> lock(mu_);
    const auto available = [&] { return !idle_.empty() || open_ < max_size_; };
    if (wait && timeout) {
      if (!cv_.wait_for(lock, *timeout, available)) return std::nullopt;
    } else if (wait) {
      cv_.wait(lock, available);
    } else if (!available()) {
      return std::nullopt;
    }
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;
    lock.unlock();
    try {
      return Lease(this, std::make_unique<pqxx::connection>(url_));
    } catch (...) {
      std::lock_guard<std::mutex> relock(mu_);
      --open_;
      cv_.notify_one();
      throw;
    }
  }

  void Return(std::unique_ptr<pqxx::connection> conn, bool broken) {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken || !conn->is_open()) {
      --open_;
    } else {
      idle_.push_back(std::move(conn));
    }
    cv_.notify_one();
  }

  const std::string url_;
  const size_t max_size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  size_t open_ = 0;
};

// Runs fn(txn) in a transaction on a connection of `pool` and commits it,
// returning what fn returned. When anything throws, the connection is dropped
// (it may be broken) and the exception goes on to the caller, who decides what
// a failure means (a 503, a retry).
template <typename Fn>
auto InPooledTransaction(PgPool& pool, Fn&& fn) {
  PgPool::Lease lease = pool.Acquire();
  try {
    pqxx::work txn(*lease);
    auto out = fn(txn);
    txn.commit();
    return out;
  } catch (...) {
    lease.MarkBroken();
    throw;
  }
}

}  // namespace bpmc
