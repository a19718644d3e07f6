#pragma once
// Heartbeats: check-in monitors, the dead man's switch (docs/RECEIVER.md
// "Heartbeats"). Something (a cron job, Alertmanager's Watchdog route) checks
// in with POST /v1/heartbeat/<name>; when `interval + grace` pass without a
// check-in, the receiver stores a firing HeartbeatMissed alert through the
// same path as a webhook's (routes, maintenance muting, incidents and
// escalation apply); the next check-in stores its resolution.
//
// State lives in the `receiver_heartbeats` table (migrations/0003_heartbeats.sql), so
// several receivers on one database watch the same heartbeats: each firing
// and each resolution is decided by a conditional UPDATE committed in the
// transaction that stores the alert (StoreWebhookIf), hence exactly once.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/clock.h"
#include "common/pg_pool.h"
#include "webhook_receiver/config.h"
#include "webhook_receiver/intake.h"
#include "webhook_receiver/metrics.h"
#include "webhook_receiver/store.h"

namespace bpmc::webhook_receiver {

// Bodies of check-ins are read (Alertmanager posts its payload) and ignored.
inline constexpr uint64_t kMaxHeartbeatBody = 64 * 1024;

// One row of receiver_heartbeats; times in microseconds since the epoch.
struct HeartbeatRow {
  std::optional<int64_t> last_checkin_us;  // nullopt: never checked in
  int64_t watched_since_us = 0;            // when a receiver first knew the heartbeat
  std::optional<int64_t> missed_at_us;     // the missed deadline while its alert fires
};

// The instant after which the heartbeat counts as missed:
// (last check-in, else watched_since) + interval + grace. Pure.
int64_t HeartbeatDeadline(const HeartbeatConfig& h, const HeartbeatRow& row);

enum class HeartbeatState {
  kHealthy,  // the deadline has not passed (a check-in exactly at it is in time)
  kDue,      // the deadline has passed and no alert fires yet: fire one
  kMissed,   // its alert fires (missed_at is set) until the next check-in
};

// What the checker must do about `row` at `now_us`. Pure.
HeartbeatState DecideHeartbeat(const HeartbeatConfig& h, const HeartbeatRow& row, int64_t now_us);

// The HeartbeatMissed alert of `h`, as an intake would have parsed it: source
// "heartbeat", dedup_key "heartbeat/<name>", labels {alertname:
// HeartbeatMissed, heartbeat: <name>, severity: critical} overridden and
// extended by the configured labels; no starts_at of its own (the store opens
// the episode at the firing job's now_us, the missed deadline, and a
// resolution closes whatever episode fires). Summary: the configured one,
// else when firing "No check-in from <name> since <last check-in or
// watched_since>", when resolved "<name> checked in again at <now>". A
// resolution ends at `now_us`. Pure.
IncomingAlert HeartbeatAlert(const HeartbeatConfig& h, const HeartbeatRow& row, bool firing,
                             int64_t now_us);

// Checks-in and the checker thread of the configured heartbeats.
// Thread-safe: CheckIn is called from HTTP threads while the checker runs.
class HeartbeatMonitor {
 public:
  struct Deps {
    const Clock* clock = nullptr;            // required
    ReceiverMetrics* metrics = nullptr;      // required
    const MuteCheck* is_muted = nullptr;     // maintenance hook; null: never muted
    const MuteCheck* is_silenced = nullptr;  // silences (silences.h); null: never silenced
    // Called after each commit that stored an alert (count it, wake the
    // Deliverer and the incident engine). May be empty.
    std::function<void(const StoreResult&)> stored;
    // The checker skips its pass while this says false (the schema is not
    // migrated yet). May be empty: always ready.
    std::function<bool()> ready;
  };
  // `config` (heartbeats, routes, channels, default_severity, database_url)
  // must outlive the monitor. Opens no connection until used.
  HeartbeatMonitor(const ReceiverConfig& config, Deps deps);
  ~HeartbeatMonitor();  // Stop()
  HeartbeatMonitor(const HeartbeatMonitor&) = delete;
  HeartbeatMonitor& operator=(const HeartbeatMonitor&) = delete;

  // The configured heartbeat `name`, or nullptr.
  const HeartbeatConfig* Find(std::string_view name) const;

  struct CheckInResult {
    int64_t checked_in_us = 0;
    bool resolved = false;  // this check-in ended a missed episode (its resolution is stored)
  };
  // Records a check-in of `h` now (the row is created when missing); when its
  // alert fires, stores the resolution in the same transaction. nullopt when
  // the database failed or no connection was free within 5 s (counted as
  // failure "heartbeat_checkin"): then nothing is recorded.
  std::optional<CheckInResult> CheckIn(const HeartbeatConfig& h);

  // One pass of the checker: creates the rows of configured heartbeats
  // (watched_since = now), refreshes the last-check-in gauges, and fires
  // HeartbeatMissed for each heartbeat that DecideHeartbeat finds due, unless
  // another receiver or a check-in changed its row first. Returns the number
  // fired by this call. Throws pqxx exceptions (the thread counts them as
  // failure "heartbeat_check" and retries at the next pass).
  int CheckOnce();

  // Starts the checker thread: CheckOnce every `poll` (about a second).
  void Start(std::chrono::milliseconds poll = std::chrono::seconds(1));
  // Joins the checker. Idempotent.
  void Stop();

 private:
  bool FireIfStillDue(pqxx::connection& conn, const HeartbeatConfig& h, const HeartbeatRow& row);
  void Loop(std::chrono::milliseconds poll);

  const ReceiverConfig& config_;
  const Deps deps_;
  PgPool pool_;                // check-ins and the checker
  bool rows_created_ = false;  // checker thread only

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace bpmc::webhook_receiver
