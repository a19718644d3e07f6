#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <mutex>
#include <string>

#include "webhook_receiver/intake.h"
#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver {

// The receiver's own metrics (prefix bpmc_receiver_); the notifier's
// Deliverer registers its delivery metrics on the same registry. Label
// values come from fixed sets (sources, results, outcomes, configured
// channels, failure reasons), so series stay bounded. Thread-safe; series
// are created once and cached (prometheus-cpp's Family::Add takes a lock).
class ReceiverMetrics {
 public:
  explicit ReceiverMetrics(prometheus::Registry& registry);

  // bpmc_receiver_webhooks_total{source,result}: result is accepted,
  // unauthorized, malformed, too_large, unavailable or shutting_down.
  void CountWebhook(Source source, const std::string& result);
  // bpmc_receiver_alerts_total{source,outcome}.
  void CountAlert(Source source, AlertOutcome outcome);
  // bpmc_receiver_enqueued_notifications_total{channel}.
  void CountEnqueued(const std::string& channel, int n);
  // bpmc_receiver_truncated_alerts_total{source}: alerts Alertmanager left out (max_alerts).
  void CountTruncated(Source source, int64_t n);
  // bpmc_receiver_failures_total{reason}: every failure the receiver survived.
  void CountFailure(const std::string& reason);
  // bpmc_receiver_webhook_store_seconds: request read to COMMIT.
  void ObserveStore(double seconds);
  // bpmc_receiver_database_up.
  void SetDatabaseUp(bool up);

  // Heartbeats (heartbeats.h). `heartbeat` is a configured name (a bounded
  // set); check-ins to unknown names are counted as heartbeat="(unknown)",
  // result="unknown" (a name in brackets cannot be configured).
  // bpmc_receiver_heartbeat_checkins_total{heartbeat,result}: result ok,
  // unauthorized, unknown or unavailable.
  void CountCheckin(const std::string& heartbeat, const std::string& result);
  // bpmc_receiver_heartbeat_last_checkin_timestamp_seconds{heartbeat}: from
  // the shared table, so every receiver shows check-ins any of them took.
  void SetLastCheckin(const std::string& heartbeat, double unix_seconds);
  // bpmc_receiver_heartbeats_missed_total{heartbeat}: firings this receiver
  // stored (with several receivers, sum them).
  void CountMissed(const std::string& heartbeat);
  // Creates the series of a configured heartbeat at zero.
  void InitHeartbeat(const std::string& heartbeat);

 private:
  prometheus::Counter& Cached(prometheus::Family<prometheus::Counter>& family,
                              const std::map<std::string, std::string>& labels);

  prometheus::Family<prometheus::Counter>& webhooks_;
  prometheus::Family<prometheus::Counter>& alerts_;
  prometheus::Family<prometheus::Counter>& enqueued_;
  prometheus::Family<prometheus::Counter>& truncated_;
  prometheus::Family<prometheus::Counter>& failures_;
  prometheus::Histogram& store_seconds_;
  prometheus::Gauge& database_up_;
  prometheus::Family<prometheus::Counter>& checkins_;
  prometheus::Family<prometheus::Gauge>& last_checkin_;
  prometheus::Family<prometheus::Counter>& missed_;
  std::mutex mu_;
  std::map<std::string, prometheus::Counter*> cache_;
  std::map<std::string, prometheus::Gauge*> gauges_;  // last_checkin_ by heartbeat
};

}  // namespace bpmc::webhook_receiver
