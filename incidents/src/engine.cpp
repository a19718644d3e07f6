#include "incidents/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/pii.h"
#include "engine_metrics.h"
#include "incidents/overrides.h"
#include "ops.h"
#include "sql.h"

namespace bpmc::incidents {
namespace {

using Json = nlohmann::json;

// Only one receiver turns events into incidents at a time (an event and its
// resolution must be handled in order); escalation runs in parallel per incident.
// How long a pass waits after a wake-up for more events (delays incident creation,
// not the notifications of the routes, which the intake enqueues itself).
constexpr auto kWakeCoalesce = std::chrono::milliseconds(100);
constexpr int64_t kEventsLockKey = 0x62706d63696e6331;  // "bpmcinc1"
// Shortest sleep, so a step another receiver holds locked is not polled in a busy loop.
constexpr int64_t kMinSleepMicros = 50000;

}  // namespace

Engine::Engine(Options options, prometheus::Registry& registry)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : &SystemClock::Get()),
      metrics_(std::make_unique<Metrics>(registry)),
      pool_(options_.database_url, 4) {
  ops_ = std::make_unique<Ops>(options_, *metrics_,
                               [this](const std::string& reason) { Failure(reason); });
}

Engine::~Engine() { Stop(); }

void Engine::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Engine::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Engine::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void Engine::Failure(const std::string& reason) {
  metrics_->Failure(reason);
  if (options_.count_failure) options_.count_failure(reason);
}

void Engine::Enqueued() {
  if (options_.on_enqueued) options_.on_enqueued();
}

template <typename Fn>
auto Engine::InTransaction(Fn&& fn) {
  bool enqueued = false;
  auto result = InPooledTransaction(pool_, [&](pqxx::work& txn) { return fn(txn, &enqueued); });
  if (enqueued) Enqueued();
  return result;
}

void Engine::Loop() {
  for (;;) {
    int64_t sleep_us = options_.config.poll_interval_micros;
    try {
      RunOnce();
      auto lease = pool_.Acquire();
      try {
        if (auto due = EarliestDue(*lease))
          sleep_us = std::clamp(*due - clock_->NowMicros(), kMinSleepMicros, sleep_us);
      } catch (...) {
        lease.MarkBroken();
        throw;
      }
    } catch (const std::exception& e) {
      spdlog::warn("incident engine: {}", ScrubPii(e.what()));
      Failure("incident_engine");
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::microseconds(sleep_us), [&] { return stop_ || wake_; });
    if (stop_) return;
    if (wake_) {
      // Woken by new events: let those arriving right behind them join the same pass,
      // so a storm costs one transaction per batch, not one per webhook (measured with
      // bench/receiver_bench.sh: ~23 events per pass without this).
      cv_.wait_for(lock, kWakeCoalesce, [&] { return stop_; });
      if (stop_) return;
    }
    wake_ = false;
  }
}

int Engine::RunOnce() {
  int handled = 0;
  auto lease = pool_.Acquire();
  try {
    while (ProcessEventBatch(*lease, &handled)) {
    }
    while (EscalateOne(*lease, &handled)) {
    }
  } catch (...) {
    lease.MarkBroken();
    throw;
  }
  return handled;
}

std::optional<int64_t> Engine::EarliestDue(pqxx::connection& conn) {
  pqxx::nontransaction txn(conn);
  const auto r = txn.exec("SELECT " BPMC_US(
      "min(next_due_at)") " FROM incidents "
                          "WHERE next_due_at IS NOT NULL");
  if (r[0][0].is_null()) return std::nullopt;
  return r[0][0].as<int64_t>();
}

bool Engine::ProcessEventBatch(pqxx::connection& conn, int* handled) {
  pqxx::work txn(conn);
  if (!txn.exec_params1("SELECT pg_try_advisory_xact_lock($1)", kEventsLockKey)[0].as<bool>()) {
    txn.commit();
    return false;  // another receiver is at it
  }
  const pqxx::result rows = txn.exec_params(
      "SELECT e.id, e.source, e.dedup_key, e.status, e.outcome, e.alert::text, e.routing::text,"
      " coalesce(w.group_key, ''), " BPMC_US("e.starts_at")
      " FROM receiver_alert_events e LEFT JOIN receiver_webhooks w ON w.id = e.webhook_id"
      " WHERE e.incident_pending ORDER BY e.id LIMIT $1",
      options_.config.event_batch);
  if (rows.empty()) {
    txn.commit();
    return false;
  }
  const int64_t now = clock_->NowMicros();
  std::string ids = "{";
  bool enqueued = false;
  FiringBatch batch;
  for (const auto& row : rows) {
    StoredEvent ev;
    ev.id = row[0].as<int64_t>();
    ev.source = row[1].as<std::string>();
    ev.dedup_key = row[2].as<std::string>();
    ev.status = row[3].as<std::string>();
    ev.outcome = row[4].as<std::string>();
    ev.alert = notifier::AlertViewFromJson(Json::parse(row[5].as<std::string>()));
    const Json routing = Json::parse(row[6].as<std::string>(), nullptr, false);
    if (routing.is_object()) {
      const Json policies = routing.value("escalation_policies", Json::array());
      for (const Json& p : policies)
        if (p.is_string() && !p.get<std::string>().empty()) {
          ev.escalation_policy = p.get<std::string>();
          break;
        }
      ev.routes = routing.value("routes", Json::array());
    }
    ev.group_key = row[7].as<std::string>();
    ev.starts_us = row[8].as<int64_t>();
    if (ev.status == "firing") {
      ops_->HandleFiring(txn, batch, ev, now);
    } else {
      enqueued = ops_->HandleResolved(txn, batch, ev, now) || enqueued;
    }
    ids += (ids.size() > 1 ? "," : "") + std::to_string(ev.id);
    ++*handled;
  }
  ids += "}";
  ops_->Flush(txn, batch, now);
  txn.exec_params(
      "UPDATE receiver_alert_events SET incident_pending = false WHERE id = ANY($1::bigint[])",
      ids);
  txn.commit();
  if (enqueued) Enqueued();
  return static_cast<int>(rows.size()) == options_.config.event_batch;
}

bool Engine::EscalateOne(pqxx::connection& conn, int* handled) {
  pqxx::work txn(conn);
  bool enqueued = false;
  const bool found = ops_->EscalateOne(txn, clock_->NowMicros(), &enqueued);
  txn.commit();
  if (enqueued) Enqueued();
  if (found) ++*handled;
  return found;
}

Engine::Outcome Engine::Acknowledge(int64_t id, const std::string& actor, const std::string& via) {
  const Outcome out = InTransaction([&](pqxx::work& txn, bool* enqueued) {
    return ops_->Acknowledge(txn, id, actor, via, clock_->NowMicros(), enqueued);
  });
  if (out == Outcome::kDone) Wake();
  return out;
}

Engine::Outcome Engine::Resolve(int64_t id, const std::string& actor) {
  const Outcome out = InTransaction([&](pqxx::work& txn, bool* enqueued) {
    return ops_->Resolve(txn, id, actor, "api", clock_->NowMicros(), enqueued);
  });
  if (out == Outcome::kDone) Wake();
  return out;
}

Engine::Outcome Engine::EscalateNow(int64_t id, const std::string& actor) {
  const Outcome out = InTransaction([&](pqxx::work& txn, bool*) {
    return ops_->EscalateNow(txn, id, actor, clock_->NowMicros());
  });
  if (out == Outcome::kDone) Wake();
  return out;
}

Engine::Outcome Engine::Snooze(int64_t id, const std::string& actor, int64_t duration_us) {
  const Outcome out = InTransaction([&](pqxx::work& txn, bool*) {
    return ops_->Snooze(txn, id, actor, duration_us, clock_->NowMicros());
  });
  if (out == Outcome::kDone) Wake();
  return out;
}

Engine::Outcome Engine::Reassign(int64_t id, const std::string& actor,
                                 const oncall::Target& target) {
  const Outcome out = InTransaction([&](pqxx::work& txn, bool* enqueued) {
    return ops_->Reassign(txn, id, actor, target, clock_->NowMicros(), enqueued);
  });
  if (out == Outcome::kDone) Wake();
  return out;
}

Engine::Outcome Engine::AddNote(int64_t id, const std::string& actor, const std::string& text) {
  return InTransaction([&](pqxx::work& txn, bool*) {
    return ops_->AddNote(txn, id, actor, text, clock_->NowMicros());
  });
}

std::optional<IncidentRecord> Engine::Load(int64_t id) {
  return InTransaction([&](pqxx::work& txn, bool*) { return ops_->Load(txn, id); });
}

std::vector<IncidentRecord> Engine::List(const IncidentFilter& filter) {
  return InTransaction([&](pqxx::work& txn, bool*) { return ops_->List(txn, filter); });
}

std::variant<nlohmann::json, RequestError> Engine::AddOverride(std::string_view body,
                                                               const std::string& by) {
  const int64_t now = clock_->NowMicros();
  auto parsed = ParseOverrideRequest(body, options_.oncall, now);
  if (auto* e = std::get_if<RequestError>(&parsed)) return *e;
  return InTransaction([&](pqxx::work& txn, bool*) {
    return InsertOverride(txn, std::get<OverrideRequest>(parsed), by, now);
  });
}

nlohmann::json Engine::Overrides(bool all) {
  return InTransaction(
      [&](pqxx::work& txn, bool*) { return ListOverrides(txn, all, clock_->NowMicros()); });
}

std::optional<nlohmann::json> Engine::CancelOverride(int64_t id, const std::string& by) {
  return InTransaction([&](pqxx::work& txn, bool*) {
    return incidents::CancelOverride(txn, id, by, clock_->NowMicros());
  });
}

oncall::OnCallConfig Engine::OnCallWithOverrides() {
  return InTransaction([&](pqxx::work& txn, bool*) {
    return WithStoredOverrides(txn, options_.oncall, clock_->NowMicros() - kOverrideLookbackMicros);
  });
}

}  // namespace bpmc::incidents
