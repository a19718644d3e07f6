#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
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
  // Reads the config again for a reload (main: the same file, environment and
  // flags as at start); nullopt with *error when it is unreadable or invalid.
  using ConfigLoader = std::function<std::optional<Config>(std::string* error)>;

  // Migrates the database (when reachable), opens the spool, starts serving.
  // Returns nullptr and sets *error when it cannot start (e.g. the port is
  // taken or the data dir is not writable). Without `load_config`, POST
  // /-/reload answers 404 and Reload fails.
  static std::unique_ptr<Service> Start(const Config& config, const Clock& clock,
                                        std::string* error, ConfigLoader load_config = {});
  ~Service();

  // The bound TCP port (useful with listen port 0).
  int port() const;

  // Reads the config through the loader and applies it when valid and when
  // it changes only the keys a reload may change (KeysNeedingRestart);
  // otherwise keeps the running config and returns false with *error. Either
  // way the outcome is logged and counted in
  // bpmc_exporter_config_reloads_total{result="ok|invalid|needs_restart"} and
  // bpmc_exporter_config_last_reload_successful. SIGHUP and POST /-/reload
  // both land here. Thread-safe.
  bool Reload(std::string* error);

  // Graceful stop: new requests get 503, in-flight ones finish, queued events
  // are committed (or spooled), threads are joined. Idempotent.
  void Shutdown();

  struct Impl;

 private:
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bpmc::exporter
