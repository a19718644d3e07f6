#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/migrate.h"
#include "exporter/config.h"

namespace bpmc::exporter {

// The schema modules of the libraries bpmc-exporter links (identity, ingestion,
// aggregation, billing), for ApplySchema (common/migrate.h).
std::vector<const SchemaModule*> DatabaseSchema();

// The running exporter: HTTP server, group-commit writer, spool, caches,
// metrics and background maintenance (key/connector refresh, partitions,
// retention), wired from a Config. main() and the integration tests both use
// it. Start and Shutdown are called from one thread.
class Service {
 public:
  // Migrates the database (when reachable), opens the spool, starts serving.
  // Returns nullptr and sets *error when it cannot start (e.g. the port is
  // taken or the data dir is not writable).
  static std::unique_ptr<Service> Start(const Config& config, const Clock& clock,
                                        std::string* error);
  ~Service();

  // The bound TCP port (useful with listen port 0).
  int port() const;

  // Graceful stop: new requests get 503, in-flight ones finish, queued events
  // are committed (or spooled), threads are joined. Idempotent.
  void Shutdown();

  struct Impl;

 private:
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bpmc::exporter
