#pragma once
// The incident engine of bpmc-receiver (docs/INCIDENTS.md): turns stored alert
// events into incidents, walks escalation policies on time (state and timers in
// PostgreSQL), acknowledges and resolves incidents, and records everything in
// their timeline. Safe with several receivers on one database and across
// kill -9: every step is claimed by a unique key in the transaction that
// enqueues its messages.

#include <prometheus/registry.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <thread>
#include <variant>

#include "common/clock.h"
#include "common/pg_pool.h"
#include "common/request_error.h"
#include "incidents/config.h"
#include "incidents/model.h"
#include "notifier/config.h"
#include "oncall/model.h"

namespace bpmc::incidents {

// True when an incident opened by an alert with these labels at now_us must
// page nobody (a maintenance window). Runs inside the engine's transaction.
using MuteHook = std::function<bool(pqxx::work&, const std::map<std::string, std::string>& labels,
                                    int64_t now_us)>;

// The filters of a list of incidents (GET /api/v1/incidents; ParseIncidentListQuery in
// incidents/api.h checks them).
struct IncidentFilter {
  std::string status;     // "" = any; else triggered, acknowledged or resolved
  std::string connector;  // "" = any; else exactly the incident's connector
  int limit = 50;         // 1 to 500
  int64_t before = 0;     // only ids below it; 0 = from the newest
};

class Engine {
 public:
  struct Options {
    std::string database_url;
    IncidentsConfig config;
    oncall::OnCallConfig oncall;
    notifier::NotifierConfig channels;
    const Clock* clock = nullptr;  // null = the system clock; must outlive the engine
    MuteHook is_muted;             // null = never muted
    // Called after a commit that enqueued outbox rows (wake the Deliverer).
    std::function<void()> on_enqueued;
    // Counts a failure the engine survived (bpmc_receiver_failures_total{reason}).
    std::function<void(const std::string& reason)> count_failure;
  };

  // Registers the incident metrics on `registry` (which must outlive the engine).
  Engine(Options options, prometheus::Registry& registry);
  ~Engine();  // Stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Starts / stops the background thread (Stop is idempotent and joins it).
  void Start();
  void Stop();
  // Look now: new events were stored, or an incident changed.
  void Wake();

  // One pass (what the thread does each time it wakes): new alert events into
  // incidents, then every escalation step due now. Returns the number of events
  // and steps handled. Throws pqxx exceptions. Tests call it directly.
  int RunOnce();

  enum class Outcome { kDone, kAlready, kNotFound };
  // Acknowledges a triggered incident as `actor` (via "api" or "link"): stops
  // its escalation, echoes the acknowledgement to PagerDuty (the incident's own
  // pages and the routes' pages of its alerts), records it. kAlready when it is
  // acknowledged or resolved. Throws pqxx exceptions.
  Outcome Acknowledge(int64_t id, const std::string& actor, const std::string& via);
  // Resolves an open incident: stops the escalation, sends the resolution to
  // everyone the incident paged, records it.
  Outcome Resolve(int64_t id, const std::string& actor);
  // Adds a free-text note to the timeline.
  Outcome AddNote(int64_t id, const std::string& actor, const std::string& text);
  // "Escalate now": an open incident with an escalation policy goes (back) to
  // triggered and its escalation jumps to the level after the one in progress,
  // paged at once (oncall::Resumption with advance 1). kAlready when it is
  // resolved or has no policy.
  Outcome EscalateNow(int64_t id, const std::string& actor);
  // Snooze: an acknowledged incident stays acknowledged for `duration_us` (no ack
  // timeout meanwhile), then goes back to triggered, pages its acknowledger (when
  // that is an on-call person's id) and resumes its escalation where the
  // acknowledgement stopped it (as an ack timeout does). A second snooze replaces
  // the first. kAlready when it is not acknowledged. The caller bounds the duration.
  Outcome Snooze(int64_t id, const std::string& actor, int64_t duration_us);
  // Reassign: an open incident goes to triggered and `target` (Kind kPerson or
  // kSchedule: whoever is on call now, the stored overrides included) is paged
  // at once on every contact method; the escalation goes on after the target as
  // after the level in progress (oncall::ReassignResumption). kAlready when it is
  // resolved. The caller checks that the target exists.
  Outcome Reassign(int64_t id, const std::string& actor, const oncall::Target& target);

  // The incident with its alerts, pages and timeline (notification results read
  // from the outbox), or nullopt.
  std::optional<IncidentRecord> Load(int64_t id);
  // Newest first, at most `filter.limit`, optionally one status and one connector
  // (exact); ids below filter.before (0 = newest).
  std::vector<IncidentRecord> List(const IncidentFilter& filter);

  // On-call overrides stored through the API (incidents/overrides.h). Each runs
  // in a pooled transaction and throws pqxx exceptions.
  std::variant<nlohmann::json, RequestError> AddOverride(std::string_view body,
                                                         const std::string& by);
  nlohmann::json Overrides(bool all);
  std::optional<nlohmann::json> CancelOverride(int64_t id, const std::string& by);
  // The on-call config with the stored overrides (GET /api/v1/oncall).
  oncall::OnCallConfig OnCallWithOverrides();

  const Options& options() const { return options_; }
  int64_t NowMicros() const { return clock_->NowMicros(); }

  class Metrics;
  class Ops;

 private:
  bool ProcessEventBatch(pqxx::connection& conn, int* handled);
  bool EscalateOne(pqxx::connection& conn, int* handled);
  // Runs `fn(txn, &enqueued)` in a transaction of a pooled connection, commits,
  // and wakes the Deliverer when it enqueued something.
  template <typename Fn>
  auto InTransaction(Fn&& fn);
  std::optional<int64_t> EarliestDue(pqxx::connection& conn);
  void Loop();
  void Failure(const std::string& reason);
  void Enqueued();

  Options options_;
  const Clock* clock_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Ops> ops_;
  PgPool pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::thread thread_;
};

}  // namespace bpmc::incidents
