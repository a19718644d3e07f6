#pragma once
// The receiver's wiring of the incidents library (docs/INCIDENTS.md): the
// incident engine thread and the /api/v1/incidents, /api/v1/oncall and /ack/
// routes, authenticated with the platform users of the shared database.

#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "identity/users.h"
#include "incidents/api.h"
#include "incidents/engine.h"
#include "webhook_receiver/config.h"

namespace bpmc::webhook_receiver {

class IncidentsHook {
 public:
  // `users`, `clock` and `registry` must outlive the hook. `is_muted` may be empty.
  IncidentsHook(const ReceiverConfig& config, identity::UserDirectory& users, const Clock* clock,
                prometheus::Registry& registry, incidents::MuteHook is_muted,
                std::function<void()> wake_delivery,
                std::function<void(const std::string&)> count_failure);
  void Start() { engine_->Start(); }
  void Stop() { engine_->Stop(); }
  // New alert events were stored.
  void Wake() { engine_->Wake(); }
  // The incidents' and on-call routes (wired into the receiver's bpmc::http table).
  incidents::Api& api() { return *api_; }
  // Acknowledge, resolve and escalate for the Telegram bot's buttons (telegram_bot.h).
  incidents::Engine& engine() { return *engine_; }

 private:
  identity::UserDirectory& users_;
  std::unique_ptr<incidents::Engine> engine_;
  std::unique_ptr<incidents::Api> api_;
};

}  // namespace bpmc::webhook_receiver
