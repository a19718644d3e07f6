#pragma once
// POST /v1/slack/interactions (docs/RECEIVER.md "Slack app"): Slack's interactivity
// requests for the buttons of incident pages posted by a Slack app. The request's
// signature (v0 HMAC-SHA256 with the app's signing secret, timestamp within 5 minutes
// of the Clock) is the credential; the pressing Slack member is mapped to a person by
// the person's {type: slack, address: <member id>} contact method.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/pg_pool.h"
#include "http/types.h"
#include "identity/audit.h"
#include "incidents/engine.h"
#include "notifier/config.h"
#include "oncall/model.h"

namespace bpmc::webhook_receiver {

// Slack member id → person id, from the people's slack contact methods (the first
// person wins when two name the same member). Pure.
std::map<std::string, std::string> SlackMembers(const oncall::OnCallConfig& oncall);

class SlackInteractions {
 public:
  struct Deps {
    std::vector<std::string> signing_secrets;    // of every Slack app channel
    std::map<std::string, std::string> members;  // SlackMembers
    const Clock* clock = nullptr;
    incidents::Engine* engine = nullptr;
    identity::AuditLog* audit = nullptr;
    // Records the signatures acted on (slack_interactions_seen): a signed request
    // resent within Slack's 5-minute window is answered without acting again.
    PgPool* pool = nullptr;
    std::function<void(const std::string& reason)> count_failure;
  };
  explicit SlackInteractions(Deps deps) : deps_(std::move(deps)) {}

  static constexpr uint64_t kMaxBody = 64 * 1024;

  // 401 without a valid signature (nothing done), 400 for a payload that is not a
  // block_actions JSON, else 200 (also when the member is not mapped: refused and audited;
  // also for a replayed request: nothing done, audited as 409; Slack shows an error for
  // non-200 answers).
  http::Response Answer(const http::Request& request);

 private:
  void Audit(const std::string& person, std::map<std::string, std::string> params, int status,
             const std::string& denial, const std::string& ip);
  void Failure(const std::string& reason);
  // True the first time this signature is seen (it is recorded); false for a replay.
  // Throws pqxx exceptions.
  bool FirstSight(const std::string& signature);
  Deps deps_;
};

}  // namespace bpmc::webhook_receiver
