#pragma once
// Private to bpmc::analytics: the transactions of an analytics request and
// Fanout, which runs a request's independent queries concurrently.

#include <exception>
#include <future>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>

#include "common/pg_pool.h"

namespace bpmc::analytics::analytics_internal {

// The request's transactions: read-only, REPEATABLE READ (one snapshot for
// all of a request's queries, shared by Fanout).
using Txn = pqxx::transaction_base;
using ReadTxn = pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>;

// Runs a request's independent queries concurrently, each on a pooled
// connection of its own in a transaction that imports the request
// transaction's snapshot (pg_export_snapshot, SET TRANSACTION SNAPSHOT): the
// answer is the same as if they ran one after another in the request's
// transaction, and an endpoint waits for its slowest query, not for their sum.
// A query for which the pool has no idle connection (nor room for a new one)
// runs in the request's transaction on the calling thread at once: Run never
// waits for a connection, so concurrent requests cannot deadlock the pool.
class Fanout {
 public:
  Fanout(PgPool* pool, Txn& main) : pool_(pool), main_(main) {}
  Txn& main() { return main_; }

  // fn(Txn&) -> R; the future holds R or fn's exception.
  template <typename F>
  auto Run(F fn) -> std::future<decltype(fn(std::declval<Txn&>()))> {
    using R = decltype(fn(std::declval<Txn&>()));
    std::optional<PgPool::Lease> lease = pool_ ? pool_->TryAcquire() : std::nullopt;
    if (lease && snapshot_.empty()) {
      try {
        snapshot_ = main_.exec("SELECT pg_export_snapshot()")[0][0].as<std::string>();
      } catch (const std::exception&) {
        lease.reset();
        throw;
      }
    }
    if (!lease) {
      std::promise<R> done;
      try {
        done.set_value(fn(main_));
      } catch (...) {
        done.set_exception(std::current_exception());
      }
      return done.get_future();
    }
    return std::async(std::launch::async,
                      [fn = std::move(fn), lease = std::move(*lease), id = snapshot_]() mutable {
                        try {
                          ReadTxn t(*lease);
                          t.exec("SET TRANSACTION SNAPSHOT " + t.quote(id));
                          R r = fn(t);
                          t.commit();
                          return r;
                        } catch (const pqxx::broken_connection&) {
                          lease.MarkBroken();
                          throw;
                        }
                      });
  }

 private:
  PgPool* pool_;
  Txn& main_;
  std::string snapshot_;
};

}  // namespace bpmc::analytics::analytics_internal
