#include "common/config_reload.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

namespace bpmc {

ReloadVerdict DecideReload(bool loaded, const std::string& load_error,
                           const std::vector<std::string>& restart_keys) {
  if (!loaded) return {"invalid", load_error};
  if (restart_keys.empty()) return {"ok", ""};
  std::string error;
  for (const std::string& k : restart_keys) error += (error.empty() ? "" : ", ") + k;
  return {"needs_restart", error + ": changing it needs a restart"};
}

ReloadRecord::ReloadRecord(prometheus::Registry& registry, const std::string& prefix,
                           const Clock& clock)
    : clock_(clock),
      ok_(&prometheus::BuildGauge()
               .Name(prefix + "_config_last_reload_successful")
               .Help("1 when the last reload of the config succeeded (or none was tried).")
               .Register(registry)
               .Add({})),
      success_time_(&prometheus::BuildGauge()
                         .Name(prefix + "_config_last_reload_success_timestamp_seconds")
                         .Help("Unix time of the last successful config load (start or reload).")
                         .Register(registry)
                         .Add({})),
      reloads_(&prometheus::BuildCounter()
                    .Name(prefix + "_config_reloads_total")
                    .Help("Config reloads by result (ok, invalid, needs_restart).")
                    .Register(registry)) {
  for (const char* r : {"ok", "invalid", "needs_restart"}) reloads_->Add({{"result", r}});
  Applied();
}

bool ReloadRecord::Count(const ReloadVerdict& verdict) {
  reloads_->Add({{"result", verdict.result}}).Increment();
  if (std::string(verdict.result) == "ok") return true;
  ok_->Set(0);
  spdlog::error("config reload failed, keeping the running config: {}", verdict.error);
  return false;
}

void ReloadRecord::Applied() {
  ok_->Set(1);
  success_time_->Set(static_cast<double>(clock_.NowMicros()) / 1e6);
}

}  // namespace bpmc
