#pragma once
// The one migration runner of both binaries (docs/ARCHITECTURE.md, "Tables and
// their owners"). Every library that owns tables declares them as a
// SchemaModule: its migrations/*.sql, compiled in by bpmc_add_schema
// (cmake/Migrations.cmake), and the modules whose tables its SQL uses. Each
// binary applies the modules of the libraries it links, in dependency order;
// a test applies the same modules, never DDL of its own.

#include <pqxx/connection>
#include <stdexcept>
#include <string>
#include <vector>

namespace bpmc {

// One versioned schema change of a module, applied in its own transaction.
struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// The tables, views and functions one library owns.
struct SchemaModule {
  std::string name;                   // the owning library: "identity", "ingestion", ...
  std::vector<std::string> after;     // modules that must be applied first
  std::vector<Migration> migrations;  // increasing versions
};

// A module list that cannot be ordered: a module named twice, a dependency
// missing from the list, or a cycle. The message names the module.
class SchemaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `modules` in an order where every module comes after those it names in
// `after`; among independent modules the given order is kept. Pure; throws
// SchemaError.
std::vector<const SchemaModule*> OrderModules(const std::vector<const SchemaModule*>& modules);

// Applies the migrations of `modules` not yet recorded in schema_versions
// (module, version, name, applied_at), in OrderModules order, each in its own
// transaction. Safe with several processes at once (both binaries on one
// database): a transaction-level advisory lock serialises them. Returns the
// number applied. Throws SchemaError (bad module list, or a database at a
// legacy version it cannot adopt) and pqxx exceptions on database errors.
//
// Databases created before the split kept one bookkeeping table per binary
// (schema_migrations: exporter 1..10; receiver_schema_migrations: 1..5). When
// one is found at its final version, its modules' baselines (version 1, which
// equal that final state) are recorded as applied and the old table is
// dropped; at an earlier version the runner refuses (docs/ARCHITECTURE.md, "Upgrading a database
// made before this split").
int ApplySchema(pqxx::connection& conn, const std::vector<const SchemaModule*>& modules);

// True when every migration of `module` is recorded as applied in this
// database (false when some are not, or nothing was ever migrated): for a
// tool of one binary that writes the tables of the other's modules only when
// that binary has migrated the shared database. Throws pqxx exceptions.
bool SchemaApplied(pqxx::connection& conn, const SchemaModule& module);

}  // namespace bpmc
