#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

#include "incidents/engine.h"

namespace bpmc::incidents {

// The incident metrics (prefix bpmc_receiver_). Label values come from fixed
// sets or configured channel names. Thread-safe (prometheus-cpp).
class Engine::Metrics {
 public:
  explicit Metrics(prometheus::Registry& registry);

  void IncidentOpened(const std::string& severity, bool muted);
  void Step(const std::string& kind);  // contact | channel | nobody_on_call
  void Page(const std::string& channel, const std::string& status);
  void Acknowledged(const std::string& via, double seconds);  // MTTA
  void Resolved(const std::string& by, double seconds);       // MTTR
  void AckTimedOut();
  // bpmc_receiver_incident_actions_total{action}: snoozed, snooze_ended, reassigned.
  void Snoozed() { actions_.Add({{"action", "snoozed"}}).Increment(); }
  void SnoozeEnded() { actions_.Add({{"action", "snooze_ended"}}).Increment(); }
  void Reassigned() { actions_.Add({{"action", "reassigned"}}).Increment(); }
  void Failure(const std::string& reason);

 private:
  prometheus::Family<prometheus::Counter>& incidents_;
  prometheus::Family<prometheus::Counter>& steps_;
  prometheus::Counter& nobody_;
  prometheus::Family<prometheus::Counter>& pages_;
  prometheus::Family<prometheus::Counter>& acks_;
  prometheus::Family<prometheus::Counter>& resolutions_;
  prometheus::Counter& ack_timeouts_;
  prometheus::Family<prometheus::Counter>& actions_;
  prometheus::Family<prometheus::Counter>& failures_;
  prometheus::Histogram& mtta_;
  prometheus::Histogram& mttr_;
};

}  // namespace bpmc::incidents
