#include "common/migrate.h"

#include <map>
#include <pqxx/pqxx>
#include <set>

namespace bpmc {
namespace {

// Any constant shared by every binary that migrates this database.
constexpr long long kMigrationLockKey = 0x62706d63'6d696772;  // "bpmcmigr"

// The bookkeeping tables of the two binaries before the schema was split by
// library, their final versions, and the modules whose version-1 baselines
// equal that final state.
struct LegacyBookkeeping {
  const char* table;
  int final_version;
  std::vector<std::string> modules;
};
const std::vector<LegacyBookkeeping>& Legacy() {
  static const std::vector<LegacyBookkeeping> kLegacy = {
      {"schema_migrations", 10, {"identity", "ingestion", "aggregation", "billing"}},
      {"receiver_schema_migrations", 5, {"receiver", "notifier", "incidents", "notices"}},
  };
  return kLegacy;
}

void AdoptLegacy(pqxx::work& txn) {
  for (const LegacyBookkeeping& legacy : Legacy()) {
    const bool present =
        txn.exec_params1("SELECT to_regclass($1) IS NOT NULL", legacy.table)[0].as<bool>();
    if (!present) continue;
    const std::string t = txn.quote_name(legacy.table);
    const int version = txn.exec1("SELECT COALESCE(max(version), 0) FROM " + t)[0].as<int>();
    if (version != legacy.final_version) {
      throw SchemaError("the database is at the legacy schema version " + std::to_string(version) +
                        " of " + legacy.table + "; bring it to version " +
                        std::to_string(legacy.final_version) +
                        " with the previous release first (docs/ARCHITECTURE.md, 'Upgrading a "
                        "database made before this split')");
    }
    for (const std::string& module : legacy.modules) {
      txn.exec_params(
          "INSERT INTO schema_versions (module, version, name) VALUES ($1, 1, $2) "
          "ON CONFLICT DO NOTHING",
          module, std::string("adopted from ") + legacy.table);
    }
    txn.exec("DROP TABLE " + t);
  }
}

}  // namespace

std::vector<const SchemaModule*> OrderModules(const std::vector<const SchemaModule*>& modules) {
  std::map<std::string, const SchemaModule*> by_name;
  for (const SchemaModule* m : modules) {
    if (!by_name.emplace(m->name, m).second)
      throw SchemaError("schema module '" + m->name + "' is listed twice");
  }
  for (const SchemaModule* m : modules) {
    for (const std::string& dep : m->after) {
      if (!by_name.count(dep))
        throw SchemaError("schema module '" + m->name + "' needs '" + dep +
                          "', which is not in the list");
    }
  }
  // Kahn's algorithm, taking the first ready module in the given order: the
  // list is short (≤ 10), so quadratic is fine and the result is stable.
  std::vector<const SchemaModule*> out;
  std::set<std::string> done;
  while (out.size() < modules.size()) {
    const SchemaModule* next = nullptr;
    for (const SchemaModule* m : modules) {
      if (done.count(m->name)) continue;
      bool ready = true;
      for (const std::string& dep : m->after) ready = ready && done.count(dep) > 0;
      if (ready) {
        next = m;
        break;
      }
    }
    if (!next) {
      std::string stuck;
      for (const SchemaModule* m : modules)
        if (!done.count(m->name)) stuck += (stuck.empty() ? "" : ", ") + m->name;
      throw SchemaError("schema modules depend on each other in a cycle: " + stuck);
    }
    done.insert(next->name);
    out.push_back(next);
  }
  return out;
}

int ApplySchema(pqxx::connection& conn, const std::vector<const SchemaModule*>& modules) {
  const std::vector<const SchemaModule*> ordered = OrderModules(modules);
  {
    pqxx::work txn(conn);
    txn.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLockKey);
    txn.exec(
        "CREATE TABLE IF NOT EXISTS schema_versions ("
        " module TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (module, version))");
    AdoptLegacy(txn);
    txn.commit();
  }
  int applied = 0;
  for (const SchemaModule* module : ordered) {
    for (const Migration& m : module->migrations) {
      pqxx::work txn(conn);
      txn.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLockKey);
      const pqxx::result done =
          txn.exec_params("SELECT 1 FROM schema_versions WHERE module = $1 AND version = $2",
                          module->name, m.version);
      if (!done.empty()) {
        txn.commit();
        continue;
      }
      txn.exec(m.sql);
      txn.exec_params("INSERT INTO schema_versions (module, version, name) VALUES ($1, $2, $3)",
                      module->name, m.version, m.name);
      txn.commit();
      ++applied;
    }
  }
  return applied;
}

bool SchemaApplied(pqxx::connection& conn, const SchemaModule& module) {
  pqxx::work txn(conn);
  if (txn.exec("SELECT to_regclass('schema_versions') IS NULL")[0][0].as<bool>()) return false;
  const auto done =
      txn.exec_params(
             "SELECT count(*) FROM schema_versions WHERE module = $1 AND version = ANY($2::int[])",
             module.name,
             [&] {
               std::string versions = "{";
               for (const Migration& m : module.migrations)
                 versions += (versions.size() > 1 ? "," : "") + std::to_string(m.version);
               return versions + "}";
             }())[0][0]
          .as<size_t>();
  return done == module.migrations.size();
}

}  // namespace bpmc
