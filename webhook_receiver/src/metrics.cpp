#include "webhook_receiver/metrics.h"

namespace bpmc::webhook_receiver {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

const prometheus::Histogram::BucketBoundaries kStoreBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

}  // namespace

ReceiverMetrics::ReceiverMetrics(prometheus::Registry& registry)
    : webhooks_(BuildCounter()
                    .Name("bpmc_receiver_webhooks_total")
                    .Help("Webhooks received, by source and result.")
                    .Register(registry)),
      alerts_(BuildCounter()
                  .Name("bpmc_receiver_alerts_total")
                  .Help("Alerts in accepted webhooks, by source and outcome "
                        "(notified, duplicate, stale, unrouted, not_notified).")
                  .Register(registry)),
      enqueued_(BuildCounter()
                    .Name("bpmc_receiver_enqueued_notifications_total")
                    .Help("Outbox rows enqueued with the webhook that caused them, by channel.")
                    .Register(registry)),
      truncated_(BuildCounter()
                     .Name("bpmc_receiver_truncated_alerts_total")
                     .Help("Alerts Alertmanager left out of webhooks (max_alerts), by source.")
                     .Register(registry)),
      failures_(BuildCounter()
                    .Name("bpmc_receiver_failures_total")
                    .Help("Failures the receiver survived, by reason.")
                    .Register(registry)),
      store_seconds_(BuildHistogram()
                         .Name("bpmc_receiver_webhook_store_seconds")
                         .Help("Time from a webhook's arrival to its COMMIT.")
                         .Register(registry)
                         .Add({}, kStoreBuckets)),
      database_up_(BuildGauge()
                       .Name("bpmc_receiver_database_up")
                       .Help("1 when the last probe of PostgreSQL succeeded.")
                       .Register(registry)
                       .Add({})),
      checkins_(BuildCounter()
                    .Name("bpmc_receiver_heartbeat_checkins_total")
                    .Help("Heartbeat check-ins, by heartbeat and result "
                          "(ok, unauthorized, unknown, unavailable).")
                    .Register(registry)),
      last_checkin_(BuildGauge()
                        .Name("bpmc_receiver_heartbeat_last_checkin_timestamp_seconds")
                        .Help("Unix time of the last check-in of each heartbeat.")
                        .Register(registry)),
      missed_(BuildCounter()
                  .Name("bpmc_receiver_heartbeats_missed_total")
                  .Help("HeartbeatMissed alerts this receiver fired, by heartbeat.")
                  .Register(registry)) {
  BuildGauge()
      .Name("bpmc_receiver_build_info")
      .Help("Build information; always 1.")
      .Register(registry)
      .Add({{"version", BPMC_VERSION}, {"revision", BPMC_REVISION}})
      .Set(1);
  // Pre-create the usual series so that rate() sees them from zero.
  for (Source s : {Source::kAlertmanager, Source::kGeneric, Source::kSentry, Source::kDatadog,
                   Source::kNewRelic}) {
    for (const char* r : {"accepted", "unauthorized", "malformed", "unavailable"})
      Cached(webhooks_, {{"source", SourceName(s)}, {"result", r}});
  }
}

prometheus::Counter& ReceiverMetrics::Cached(prometheus::Family<prometheus::Counter>& family,
                                             const std::map<std::string, std::string>& labels) {
  std::string key = std::to_string(reinterpret_cast<uintptr_t>(&family));
  for (const auto& [k, v] : labels) key += '\0' + k + '\0' + v;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) it = cache_.emplace(key, &family.Add(labels)).first;
  return *it->second;
}

void ReceiverMetrics::CountWebhook(Source source, const std::string& result) {
  Cached(webhooks_, {{"source", SourceName(source)}, {"result", result}}).Increment();
}

void ReceiverMetrics::CountAlert(Source source, AlertOutcome outcome) {
  Cached(alerts_, {{"source", SourceName(source)}, {"outcome", OutcomeName(outcome)}}).Increment();
}

void ReceiverMetrics::CountEnqueued(const std::string& channel, int n) {
  Cached(enqueued_, {{"channel", channel}}).Increment(n);
}

void ReceiverMetrics::CountTruncated(Source source, int64_t n) {
  Cached(truncated_, {{"source", SourceName(source)}}).Increment(static_cast<double>(n));
}

void ReceiverMetrics::CountFailure(const std::string& reason) {
  Cached(failures_, {{"reason", reason}}).Increment();
}

void ReceiverMetrics::ObserveStore(double seconds) { store_seconds_.Observe(seconds); }

void ReceiverMetrics::SetDatabaseUp(bool up) { database_up_.Set(up ? 1 : 0); }

void ReceiverMetrics::CountCheckin(const std::string& heartbeat, const std::string& result) {
  Cached(checkins_, {{"heartbeat", heartbeat}, {"result", result}}).Increment();
}

void ReceiverMetrics::SetLastCheckin(const std::string& heartbeat, double unix_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = gauges_.find(heartbeat);
  if (it == gauges_.end())
    it = gauges_.emplace(heartbeat, &last_checkin_.Add({{"heartbeat", heartbeat}})).first;
  it->second->Set(unix_seconds);
}

void ReceiverMetrics::CountMissed(const std::string& heartbeat) {
  Cached(missed_, {{"heartbeat", heartbeat}}).Increment();
}

void ReceiverMetrics::InitHeartbeat(const std::string& heartbeat) {
  for (const char* r : {"ok", "unauthorized"})
    Cached(checkins_, {{"heartbeat", heartbeat}, {"result", r}});
  Cached(missed_, {{"heartbeat", heartbeat}});
}

}  // namespace bpmc::webhook_receiver
