#pragma once
// How the binaries reach PostgreSQL — directly or through PgBouncer — and the
// statements that depend on it (docs/SCALING.md "PgBouncer").

#include <atomic>
#include <map>
#include <pqxx/pqxx>
#include <string>
#include <utility>

namespace bpmc {

enum class PgPooling {
  // Direct, or PgBouncer pool_mode=session: a connection is one server session.
  kSession,
  // PgBouncer pool_mode=transaction: each transaction (and each statement
  // outside one) may run on another server session, so nothing may outlive a
  // transaction: no named prepared statements (PgBouncer 1.18 does not carry
  // them), no session SET, no session advisory locks, no LISTEN.
  kTransaction,
};

namespace pg_internal {
inline std::atomic<PgPooling>& Pooling() {
  static std::atomic<PgPooling> mode{PgPooling::kSession};
  return mode;
}
}  // namespace pg_internal

// The process's mode (config `database_pooling`). Set once by main() or the
// service's start before the libraries open connections; kSession by default.
inline void SetPgPooling(PgPooling mode) { pg_internal::Pooling() = mode; }
inline PgPooling GetPgPooling() { return pg_internal::Pooling(); }

// Pure: "session" -> kSession, "transaction" -> kTransaction; false otherwise.
inline bool ParsePgPooling(const std::string& text, PgPooling* out) {
  if (text == "session")
    *out = PgPooling::kSession;
  else if (text == "transaction")
    *out = PgPooling::kTransaction;
  else
    return false;
  return true;
}

// A connection's named statements: prepared on each connection (libpqxx
// prepare + exec_prepared, which saves parsing and planning) in session
// pooling, or sent unnamed with the same SQL (exec_params) in transaction
// pooling. The mode is read at construction. Add every statement before use;
// then const and thread-safe.
class PgStatements {
 public:
  PgStatements() : prepared_(GetPgPooling() == PgPooling::kSession) {}

  void Add(const std::string& name, std::string sql) { sql_[name] = std::move(sql); }

  // Declares every statement on `conn` (libpqxx prepares each on the server at
  // its first use); nothing in transaction pooling.
  void PrepareOn(pqxx::connection& conn) const {
    if (!prepared_) return;
    for (const auto& [name, sql] : sql_) conn.prepare(name, sql);
  }

  template <typename... Args>
  pqxx::result Exec(pqxx::transaction_base& txn, const std::string& name, Args&&... args) const {
    if (prepared_) return txn.exec_prepared(name, std::forward<Args>(args)...);
    return txn.exec_params(sql_.at(name), std::forward<Args>(args)...);
  }

  bool prepared() const { return prepared_; }

 private:
  bool prepared_;
  std::map<std::string, std::string> sql_;
};

}  // namespace bpmc
