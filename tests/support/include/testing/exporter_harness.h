#pragma once
// Shared pieces of the exporter integration tests: a migrated database with a
// connector and an API key, HTTP helpers, and row counting.

#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <pqxx/pqxx>
#include <string>

#include "common/migrate.h"
#include "common/time_format.h"
#include "exporter/service.h"  // DatabaseSchema
#include "identity/api_keys.h"
#include "testing/pg_cluster.h"

namespace bpmc::testing {

// A fresh migrated database in `cluster` with connector crm-connector and one
// API key.
struct TestDatabase {
  explicit TestDatabase(PgCluster& cluster) {
    name = cluster.CreateDatabase();
    url = cluster.ConnectionString(name);
    pqxx::connection conn(url);
    ApplySchema(conn, exporter::DatabaseSchema());
    identity::AddConnector(conn, "crm-connector", "CRM Connector");
    identity::AddConnector(conn, "payment-connector", "Payment Connector");
    api_key = identity::CreateApiKey(conn, "acme");
  }

  long long Scalar(const std::string& sql) const {
    pqxx::connection conn(url);
    pqxx::work txn(conn);
    return txn.exec(sql)[0][0].as<long long>();
  }
  long long Rows() const { return Scalar("SELECT count(*) FROM connector_usage"); }

  std::string name;
  std::string url;
  std::string api_key;
};

inline std::string NowIso(int64_t offset_seconds = 0) {
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return FormatRfc3339Micros(now + offset_seconds * 1000000);
}

// The body the seed's registerUsage() sends.
inline std::string SeedBody(const std::string& operation = "getContact",
                            const std::string& extra = "") {
  return R"({"connector":"crm-connector","operation":")" + operation +
         R"(","make_account_id":"12345","timestamp":")" + NowIso() + "\"" + extra + "}";
}

inline httplib::Headers Bearer(const std::string& key) {
  return {{"Authorization", "Bearer " + key}};
}

// The value of the first sample line of `metrics` starting with `series`
// (exact labels text), or -1.
inline double MetricValue(const std::string& metrics, const std::string& series) {
  size_t pos = 0;
  while ((pos = metrics.find(series, pos)) != std::string::npos) {
    if (pos == 0 || metrics[pos - 1] == '\n') {
      const size_t sp = pos + series.size();
      if (sp < metrics.size() && metrics[sp] == ' ') return std::atof(metrics.c_str() + sp + 1);
    }
    pos += series.size();
  }
  return -1;
}

}  // namespace bpmc::testing
