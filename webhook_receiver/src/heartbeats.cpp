#include "webhook_receiver/heartbeats.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <stdexcept>

#include "incidents/model.h"  // HumanDuration
#include "notifier/config.h"  // HasChannel

namespace bpmc::webhook_receiver {
namespace {

using Json = nlohmann::json;

// Times cross the SQL boundary as whole microseconds since the epoch, exact
// both ways: 'epoch'::timestamptz + $n::bigint * interval '1 microsecond' in,
// (extract(epoch FROM t) * 1000000)::bigint out (extract is numeric since PG 14).

constexpr const char* kCreateRowsSql = R"sql(
INSERT INTO receiver_heartbeats (name, watched_since)
SELECT n, 'epoch'::timestamptz + $2::bigint * interval '1 microsecond'
FROM unnest($1::text[]) AS n
ON CONFLICT (name) DO NOTHING
)sql";

constexpr const char* kReadRowsSql = R"sql(
SELECT name, (extract(epoch FROM last_checkin_at) * 1000000)::bigint,
       (extract(epoch FROM watched_since) * 1000000)::bigint,
       (extract(epoch FROM missed_at) * 1000000)::bigint
FROM receiver_heartbeats WHERE name = ANY($1::text[])
)sql";

// The checker's claim: only while nobody fired it and nobody checked in since
// the row was read (its clock, last check-in or watched_since, is unchanged).
// A concurrent claim or check-in waits for the row lock, then re-checks this.
constexpr const char* kClaimMissedSql = R"sql(
UPDATE receiver_heartbeats
SET missed_at = 'epoch'::timestamptz + $2::bigint * interval '1 microsecond', updated_at = now()
WHERE name = $1 AND missed_at IS NULL
  AND (extract(epoch FROM coalesce(last_checkin_at, watched_since)) * 1000000)::bigint = $3
)sql";

// A check-in: the row (created when missing), locked, then updated.
constexpr const char* kCreateRowSql = R"sql(
INSERT INTO receiver_heartbeats (name, watched_since)
VALUES ($1, 'epoch'::timestamptz + $2::bigint * interval '1 microsecond')
ON CONFLICT (name) DO NOTHING
)sql";
constexpr const char* kLockRowSql = R"sql(
SELECT (extract(epoch FROM missed_at) * 1000000)::bigint FROM receiver_heartbeats WHERE name = $1
FOR UPDATE
)sql";
constexpr const char* kCheckInSql = R"sql(
UPDATE receiver_heartbeats
SET last_checkin_at = greatest(last_checkin_at,
                               'epoch'::timestamptz + $2::bigint * interval '1 microsecond'),
    missed_at = NULL, updated_at = now()
WHERE name = $1
)sql";

std::optional<int64_t> OptMicros(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<int64_t>();
}

// "{a,b}": names are [a-z0-9_-], nothing to quote.
std::string NameArray(const std::vector<HeartbeatConfig>& heartbeats) {
  std::string out = "{";
  for (const HeartbeatConfig& h : heartbeats) out += (out.size() > 1 ? "," : "") + h.name;
  return out + "}";
}

}  // namespace

int64_t HeartbeatDeadline(const HeartbeatConfig& h, const HeartbeatRow& row) {
  return row.last_checkin_us.value_or(row.watched_since_us) + h.interval_us + h.grace_us;
}

HeartbeatState DecideHeartbeat(const HeartbeatConfig& h, const HeartbeatRow& row, int64_t now_us) {
  if (row.missed_at_us) return HeartbeatState::kMissed;
  return now_us > HeartbeatDeadline(h, row) ? HeartbeatState::kDue : HeartbeatState::kHealthy;
}

IncomingAlert HeartbeatAlert(const HeartbeatConfig& h, const HeartbeatRow& row, bool firing,
                             int64_t now_us) {
  IncomingAlert a;
  notifier::AlertView& v = a.view;
  v.source = SourceName(Source::kHeartbeat);
  v.status = firing ? "firing" : "resolved";
  v.dedup_key = "heartbeat/" + h.name;
  v.alertname = "HeartbeatMissed";
  v.labels = {{"alertname", v.alertname}, {"heartbeat", h.name}, {"severity", "critical"}};
  for (const auto& [k, value] : h.labels) v.labels[k] = value;
  a.raw_severity = v.labels["severity"];
  const int64_t since = row.last_checkin_us.value_or(row.watched_since_us);
  if (!h.summary.empty()) {
    v.summary = h.summary;
  } else if (firing) {
    v.summary = "No check-in from " + h.name + " since " + FormatAlertTime(since);
  } else {
    v.summary = h.name + " checked in again at " + FormatAlertTime(now_us);
  }
  v.description = "Heartbeat " + h.name + " expects a check-in (POST /v1/heartbeat/" + h.name +
                  ") every " + incidents::HumanDuration(h.interval_us) + "; it is missed " +
                  incidents::HumanDuration(h.grace_us) + " after that." +
                  (row.last_checkin_us ? "" : " It has never checked in.");
  v.runbook_url = "https://github.com/bpm-centr/bpmc/blob/main/docs/RUNBOOK.md#heartbeatmissed";
  v.annotations = {
      {"summary", v.summary}, {"description", v.description}, {"runbook_url", v.runbook_url}};
  if (!firing) a.ends_at_us = now_us;
  return a;
}

HeartbeatMonitor::HeartbeatMonitor(const ReceiverConfig& config, Deps deps)
    : config_(config), deps_(std::move(deps)), pool_(config.database_url, 2) {
  for (const HeartbeatConfig& h : config_.heartbeats) deps_.metrics->InitHeartbeat(h.name);
}

HeartbeatMonitor::~HeartbeatMonitor() { Stop(); }

const HeartbeatConfig* HeartbeatMonitor::Find(std::string_view name) const {
  auto it =
      std::lower_bound(config_.heartbeats.begin(), config_.heartbeats.end(), name,
                       [](const HeartbeatConfig& h, std::string_view n) { return h.name < n; });
  return it != config_.heartbeats.end() && it->name == name ? &*it : nullptr;
}

std::optional<HeartbeatMonitor::CheckInResult> HeartbeatMonitor::CheckIn(const HeartbeatConfig& h) {
  const int64_t now = deps_.clock->NowMicros();
  HeartbeatRow row;
  row.last_checkin_us = now;
  const Json body = {{"heartbeat", h.name}, {"event", "checkin"}, {"at", FormatAlertTime(now)}};
  const std::string text = body.dump();
  Webhook webhook;
  webhook.source = Source::kHeartbeat;
  webhook.alerts.push_back(HeartbeatAlert(h, row, /*firing=*/false, now));
  const std::vector<PlannedAlert> planned = {
      PlanAlert(webhook.alerts[0], config_.routes, config_.notifier, config_.default_severity)};
  bool was_missed = false;
  const StoreClaim claim = [&](pqxx::work& txn) {
    txn.exec_params(kCreateRowSql, h.name, now);
    const pqxx::result locked = txn.exec_params(kLockRowSql, h.name);
    was_missed = !locked.empty() && !locked[0][0].is_null();
    txn.exec_params(kCheckInSql, h.name, now);
    return was_missed;  // resolve only a missed heartbeat; a healthy one just moves its clock
  };
  try {
    std::optional<PgPool::Lease> lease = pool_.AcquireFor(std::chrono::seconds(5));
    if (!lease) throw std::runtime_error("no database connection free for 5 s");
    PgPool::Lease& conn = *lease;
    try {
      const std::optional<StoreResult> stored = StoreWebhookIf(
          *conn, WebhookToStore{&webhook, text, &planned, now, deps_.is_muted, deps_.is_silenced},
          claim,
          [this](const std::string& ch) { return notifier::HasChannel(config_.notifier, ch); });
      if (stored && deps_.stored) deps_.stored(*stored);
    } catch (...) {
      conn.MarkBroken();
      throw;
    }
  } catch (const std::exception& e) {
    spdlog::warn("heartbeat {}: cannot record the check-in: {}", h.name, e.what());
    deps_.metrics->CountFailure("heartbeat_checkin");
    return std::nullopt;
  }
  deps_.metrics->SetLastCheckin(h.name, static_cast<double>(now) / 1e6);
  if (was_missed) spdlog::info("heartbeat {} checked in again: resolved", h.name);
  return CheckInResult{now, was_missed};
}

bool HeartbeatMonitor::FireIfStillDue(pqxx::connection& conn, const HeartbeatConfig& h,
                                      const HeartbeatRow& row) {
  const int64_t deadline = HeartbeatDeadline(h, row);
  const int64_t basis = row.last_checkin_us.value_or(row.watched_since_us);
  Json body = {{"heartbeat", h.name},
               {"event", "missed"},
               {"deadline", FormatAlertTime(deadline)},
               {"last_checkin_at",
                row.last_checkin_us ? Json(FormatAlertTime(*row.last_checkin_us)) : Json()}};
  const std::string text = body.dump();
  Webhook webhook;
  webhook.source = Source::kHeartbeat;
  webhook.alerts.push_back(HeartbeatAlert(h, row, /*firing=*/true, deadline));
  const std::vector<PlannedAlert> planned = {
      PlanAlert(webhook.alerts[0], config_.routes, config_.notifier, config_.default_severity)};
  const StoreClaim claim = [&](pqxx::work& txn) {
    return txn.exec_params(kClaimMissedSql, h.name, deadline, basis).affected_rows() == 1;
  };
  // now_us = the deadline: the episode (starts_at) begins when the check-in was missed.
  const std::optional<StoreResult> stored = StoreWebhookIf(
      conn, WebhookToStore{&webhook, text, &planned, deadline, deps_.is_muted, deps_.is_silenced},
      claim, [this](const std::string& ch) { return notifier::HasChannel(config_.notifier, ch); });
  if (!stored) return false;
  spdlog::warn("heartbeat {} missed: no check-in since {}", h.name, FormatAlertTime(basis));
  deps_.metrics->CountMissed(h.name);
  if (deps_.stored) deps_.stored(*stored);
  return true;
}

int HeartbeatMonitor::CheckOnce() {
  if (config_.heartbeats.empty()) return 0;
  PgPool::Lease conn = pool_.Acquire();
  try {
    const std::string names = NameArray(config_.heartbeats);
    if (!rows_created_) {
      pqxx::work txn(*conn);
      txn.exec_params(kCreateRowsSql, names, deps_.clock->NowMicros());
      txn.commit();
      rows_created_ = true;
    }
    std::map<std::string, HeartbeatRow> rows;
    {
      pqxx::nontransaction txn(*conn);
      for (const auto& r : txn.exec_params(kReadRowsSql, names))
        rows[r[0].as<std::string>()] = {OptMicros(r[1]), r[2].as<int64_t>(), OptMicros(r[3])};
    }
    const int64_t now = deps_.clock->NowMicros();
    int fired = 0;
    for (const auto& [name, row] : rows) {
      const HeartbeatConfig* h = Find(name);
      if (!h) continue;
      if (row.last_checkin_us)
        deps_.metrics->SetLastCheckin(name, static_cast<double>(*row.last_checkin_us) / 1e6);
      if (DecideHeartbeat(*h, row, now) == HeartbeatState::kDue && FireIfStillDue(*conn, *h, row))
        ++fired;
    }
    return fired;
  } catch (...) {
    conn.MarkBroken();
    throw;
  }
}

void HeartbeatMonitor::Start(std::chrono::milliseconds poll) {
  if (config_.heartbeats.empty() || thread_.joinable()) return;
  thread_ = std::thread([this, poll] { Loop(poll); });
}

void HeartbeatMonitor::Loop(std::chrono::milliseconds poll) {
  for (;;) {
    try {
      if (!deps_.ready || deps_.ready()) CheckOnce();
    } catch (const std::exception& e) {
      spdlog::warn("heartbeat check failed: {}", e.what());
      deps_.metrics->CountFailure("heartbeat_check");
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, poll, [this] { return stop_; })) return;
  }
}

void HeartbeatMonitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace bpmc::webhook_receiver
