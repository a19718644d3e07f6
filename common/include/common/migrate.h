#pragma once

#include <string>
#include <vector>

#include <pqxx/connection>

namespace bpmc {

// One versioned schema change. Versions are applied in increasing order, each
// in its own transaction, and recorded in a bookkeeping table
// (`schema_migrations` unless the caller names another).
struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// Applies the migrations not yet recorded. Safe with several processes at
// once: a transaction-level advisory lock serialises them. Returns the number
// applied. Throws pqxx exceptions on database errors. `table` names the
// bookkeeping table, so that binaries sharing one database (bpmc-exporter,
// bpmc-receiver) keep separate version sequences.
int ApplyMigrations(pqxx::connection& conn, const std::vector<Migration>& migrations,
                    const std::string& table = "schema_migrations");

}  // namespace bpmc
