#include "engine_metrics.h"

namespace bpmc::incidents {
namespace {

const prometheus::Histogram::BucketBoundaries& Buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {
      5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400};
  return b;
}

}  // namespace

Engine::Metrics::Metrics(prometheus::Registry& r)
    : incidents_(prometheus::BuildCounter()
                     .Name("bpmc_receiver_incidents_total")
                     .Help("Incidents opened, by severity and muted (in maintenance)")
                     .Register(r)),
      steps_(prometheus::BuildCounter()
                 .Name("bpmc_receiver_escalation_steps_total")
                 .Help("Escalation steps performed, by kind (contact, channel, nobody_on_call)")
                 .Register(r)),
      nobody_(prometheus::BuildCounter()
                  .Name("bpmc_receiver_nobody_on_call_total")
                  .Help("Escalation steps whose schedule had nobody on call")
                  .Register(r)
                  .Add({})),
      pages_(prometheus::BuildCounter()
                 .Name("bpmc_receiver_incident_pages_total")
                 .Help("Incident messages enqueued, by channel and status "
                       "(firing, acknowledged, resolved)")
                 .Register(r)),
      acks_(prometheus::BuildCounter()
                .Name("bpmc_receiver_incident_acknowledgements_total")
                .Help("Incidents acknowledged, by way (api, link)")
                .Register(r)),
      resolutions_(prometheus::BuildCounter()
                       .Name("bpmc_receiver_incident_resolutions_total")
                       .Help("Incidents resolved, by whom (api, alerts)")
                       .Register(r)),
      ack_timeouts_(prometheus::BuildCounter()
                        .Name("bpmc_receiver_incident_ack_timeouts_total")
                        .Help("Acknowledged incidents that went back to triggered because "
                              "their policy's ack_timeout passed unresolved")
                        .Register(r)
                        .Add({})),
      actions_(prometheus::BuildCounter()
                   .Name("bpmc_receiver_incident_actions_total")
                   .Help("Incidents snoozed, snoozes that ended, incidents reassigned")
                   .Register(r)),
      failures_(prometheus::BuildCounter()
                    .Name("bpmc_receiver_incident_failures_total")
                    .Help("Failures the incident engine survived, by reason")
                    .Register(r)),
      mtta_(prometheus::BuildHistogram()
                .Name("bpmc_receiver_incident_time_to_acknowledge_seconds")
                .Help("Time from an incident's detection to its acknowledgement (MTTA)")
                .Register(r)
                .Add({}, Buckets())),
      mttr_(prometheus::BuildHistogram()
                .Name("bpmc_receiver_incident_time_to_resolve_seconds")
                .Help("Time from an incident's detection to its resolution (MTTR)")
                .Register(r)
                .Add({}, Buckets())) {}

void Engine::Metrics::IncidentOpened(const std::string& severity, bool muted) {
  incidents_.Add({{"severity", severity}, {"muted", muted ? "true" : "false"}}).Increment();
}

void Engine::Metrics::Step(const std::string& kind) {
  steps_.Add({{"kind", kind}}).Increment();
  if (kind == "nobody_on_call") nobody_.Increment();
}

void Engine::Metrics::Page(const std::string& channel, const std::string& status) {
  pages_.Add({{"channel", channel}, {"status", status}}).Increment();
}

void Engine::Metrics::Acknowledged(const std::string& via, double seconds) {
  acks_.Add({{"via", via}}).Increment();
  mtta_.Observe(seconds);
}

void Engine::Metrics::Resolved(const std::string& by, double seconds) {
  resolutions_.Add({{"by", by}}).Increment();
  mttr_.Observe(seconds);
}

void Engine::Metrics::AckTimedOut() { ack_timeouts_.Increment(); }

void Engine::Metrics::Failure(const std::string& reason) {
  failures_.Add({{"reason", reason}}).Increment();
}

}  // namespace bpmc::incidents
