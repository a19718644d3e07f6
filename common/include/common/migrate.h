#pragma once

#include <string>
#include <vector>

#include <pqxx/connection>

namespace bpmc {

// One versioned schema change. Versions are applied in increasing order, each
// in its own transaction, and recorded in `schema_migrations`.
struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// Applies the migrations not yet recorded. Safe with several processes at
// once: a transaction-level advisory lock serialises them. Returns the number
// applied. Throws pqxx exceptions on database errors.
int ApplyMigrations(pqxx::connection& conn, const std::vector<Migration>& migrations);

}  // namespace bpmc
