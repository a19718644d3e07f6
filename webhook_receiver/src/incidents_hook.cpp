#include "incidents_hook.h"

#include <stdexcept>

namespace bpmc::webhook_receiver {

IncidentsHook::IncidentsHook(const ReceiverConfig& config, identity::UserDirectory& users,
                             const Clock* clock, prometheus::Registry& registry,
                             incidents::MuteHook is_muted, std::function<void()> wake_delivery,
                             std::function<void(const std::string&)> count_failure)
    : users_(users) {
  incidents::Engine::Options o;
  o.database_url = config.database_url;
  o.config = config.incidents;
  o.oncall = config.oncall;
  o.channels = config.notifier;
  o.clock = clock;
  o.is_muted = std::move(is_muted);
  o.on_enqueued = std::move(wake_delivery);
  o.count_failure = std::move(count_failure);
  engine_ = std::make_unique<incidents::Engine>(std::move(o), registry);
  api_ = std::make_unique<incidents::Api>(
      *engine_, [this](const incidents::HttpCall& call) -> std::optional<incidents::Caller> {
        identity::Principal u;
        const identity::RequestAuth found = users_.FindRequest(call, &u);
        if (found == identity::RequestAuth::kError)  // the Api answers 503 + Retry-After
          throw std::runtime_error("cannot look up the platform user");
        if (found != identity::RequestAuth::kFound) return std::nullopt;
        return incidents::Caller{u.name, identity::RoleName(u.role)};
      });
}

}  // namespace bpmc::webhook_receiver
