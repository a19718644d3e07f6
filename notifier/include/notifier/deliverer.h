#pragma once

#include <prometheus/registry.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/http_client.h"
#include "notifier/config.h"
#include "notifier/mailer.h"
#include "notifier/telegram.h"

namespace bpmc::notifier {

// Background delivery: threads that drain the outbox until Stop(). Thread-safe. Registers its
// metrics (bpmc_receiver_notifications_total{channel,result},
// bpmc_receiver_delivery_latency_seconds, bpmc_receiver_queue_depth,
// bpmc_receiver_oldest_queued_seconds, ...) on the given registry.
//
// Guarantees: a row is marked delivered only after its peer accepted it; a delivered row is never
// sent again. A crash between the peer's acceptance and the commit resends that message once
// (at-least-once); requests carry a stable idempotency key for that case. Sends to one
// (channel, destination) are serialised across threads and processes (a row lock).
// Scheduling uses the database clock, so enqueuers and workers on other hosts agree.
class Deliverer {
 public:
  struct Options {
    std::string database_url;
    int threads = 2;
    // Longest sleep when idle; Wake() and due retries end it earlier.
    std::chrono::milliseconds poll_interval{500};
    // Pause after a database error before reconnecting.
    std::chrono::milliseconds db_retry{1000};
    // How often queue depth and oldest age are refreshed.
    std::chrono::milliseconds gauge_interval{2000};
    // A queue table needs vacuuming far more often than autovacuum's defaults
    // allow: the dead versions of sent rows slow every delivery query (measured:
    // 1,000 alerts/s seconds behind after a storm). One worker runs
    // `VACUUM (ANALYZE)` on the outbox after this many rows changed, at most once
    // per vacuum_min_interval. 0 disables it (autovacuum alone; migration 0003
    // tunes its per-table settings). Failures (e.g. the role does not own the
    // table) are counted in bpmc_receiver_outbox_vacuums_total{result="error"}.
    int64_t vacuum_after_rows = 20000;
    std::chrono::milliseconds vacuum_min_interval{5000};
    // The Slack app's "Reassign to…" select on incident pages (empty: none).
    std::vector<ReassignChoice> reassign_choices;
  };
  // Keeps references to the client, mailer, clock and registry (they must outlive this object)
  // and a copy of the config.
  Deliverer(Options, const NotifierConfig&, HttpClient&, Mailer&, const Clock&,
            prometheus::Registry&);
  ~Deliverer();  // Stop()
  Deliverer(const Deliverer&) = delete;
  Deliverer& operator=(const Deliverer&) = delete;

  void Start();
  // Finishes the messages in flight (each bounded by its channel timeout) and joins the threads.
  void Stop();
  void Wake();  // Wake: new rows were enqueued, look now

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bpmc::notifier
