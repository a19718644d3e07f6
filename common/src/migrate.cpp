#include "common/migrate.h"

#include <pqxx/pqxx>

namespace bpmc {
namespace {
// Any constant shared by every binary that migrates this database.
constexpr long long kMigrationLockKey = 0x62706d63'6d696772;  // "bpmcmigr"
}  // namespace

int ApplyMigrations(pqxx::connection& conn, const std::vector<Migration>& migrations,
                    const std::string& table) {
  int applied = 0;
  for (const Migration& m : migrations) {
    pqxx::work txn(conn);
    txn.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLockKey);
    const std::string t = txn.quote_name(table);  // DDL takes no parameters
    txn.exec("CREATE TABLE IF NOT EXISTS " + t +
             " (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
             " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
    pqxx::result done =
        txn.exec_params("SELECT 1 FROM " + t + " WHERE version = $1", m.version);
    if (!done.empty()) {
      txn.commit();
      continue;
    }
    txn.exec(m.sql);
    txn.exec_params("INSERT INTO " + t + " (version, name) VALUES ($1, $2)", m.version, m.name);
    txn.commit();
    ++applied;
  }
  return applied;
}

}  // namespace bpmc
