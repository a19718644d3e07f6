#pragma once
// What both binaries do with a config reload (SIGHUP or POST /-/reload), as
// Prometheus and Alertmanager do it: a new config is applied only when it
// loaded and changes no key that needs a restart; otherwise the running config
// stays, and the refusal is counted and logged. docs/OPERATIONS.md
// "Reloading the config".
//
// Metrics, under the binary's prefix (bpmc_exporter, bpmc_receiver):
//   <prefix>_config_last_reload_successful              1 / 0
//   <prefix>_config_last_reload_success_timestamp_seconds (start or reload)
//   <prefix>_config_reloads_total{result="ok|invalid|needs_restart"}

#include <string>
#include <vector>

#include "common/clock.h"

namespace prometheus {
class Counter;
template <typename T>
class Family;
class Gauge;
class Registry;
}  // namespace prometheus

namespace bpmc {

// The decision on a reload. Pure.
struct ReloadVerdict {
  const char* result;  // "ok", "invalid" or "needs_restart"
  std::string error;   // empty when ok
};
// `loaded`: whether the new config was read and validated (else `load_error`
// says why); `restart_keys`: the keys it changes that only a restart applies.
ReloadVerdict DecideReload(bool loaded, const std::string& load_error,
                           const std::vector<std::string>& restart_keys);

// The reload metrics of one binary. Thread-compatible: calls come one reload
// at a time (the binaries hold a reload mutex).
class ReloadRecord {
 public:
  // Registers the three families; the gauge starts at 1 and the timestamp at
  // now (the config loaded at start).
  ReloadRecord(prometheus::Registry& registry, const std::string& prefix, const Clock& clock);
  // Counts `verdict`. A refusal also sets the gauge to 0, logs the error and
  // returns false; true means: apply the new config, then call Applied().
  bool Count(const ReloadVerdict& verdict);
  void Applied();

 private:
  const Clock& clock_;
  prometheus::Gauge* ok_;
  prometheus::Gauge* success_time_;
  prometheus::Family<prometheus::Counter>* reloads_;
};

}  // namespace bpmc
