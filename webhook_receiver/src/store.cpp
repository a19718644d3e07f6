#include "webhook_receiver/store.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "common/ids.h"
#include "common/pg_statements.h"
#include "notifier/outbox.h"
#include "webhook_receiver/severity.h"

namespace bpmc::webhook_receiver {
namespace {

using Json = nlohmann::json;

// Per-alert transaction lock, taken in ascending key order (so two webhooks
// holding the same alerts cannot deadlock) and held until COMMIT. Everything
// below that reads before it writes (duplicate check, current state, the
// firing's recipients) is race-free under it.
constexpr const char* kLockSql =
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, n)";

// The batch's webhooks, in order (ids come from one sequence, so they ascend
// in the order of the SELECT). `json`, not `jsonb`: payloads stay verbatim.
constexpr const char* kInsertWebhooksSql = R"sql(
INSERT INTO receiver_webhooks (source, group_key, alerts, truncated, payload)
SELECT source, group_key, alerts, truncated, payload::json
FROM json_to_recordset($1::json)
     AS x(n int, source text, group_key text, alerts int, truncated bigint, payload text)
ORDER BY n
RETURNING id
)sql";

// Current state of the alerts whose source has no stable start (LIMIT 1 keeps
// the lateral subquery an index probe per alert).
constexpr const char* kCurrentStateSql = R"sql(
SELECT x.source, x.dedup_key, a.status, (extract(epoch FROM a.starts_at) * 1000000)::bigint
FROM jsonb_to_recordset($1::jsonb) AS x(source text, dedup_key text)
CROSS JOIN LATERAL (SELECT status, starts_at FROM receiver_alerts r
                    WHERE r.source = x.source AND r.dedup_key = x.dedup_key LIMIT 1) a
)sql";

// For each candidate, the statuses stored for its episode (a scalar subquery:
// one index probe per candidate; an EXISTS here may become a hashed subplan
// that scans the whole table).
constexpr const char* kExistingSql = R"sql(
SELECT x.i,
       (SELECT array_agg(e.status) FROM receiver_alert_events e
        WHERE e.source = x.source AND e.dedup_key = x.dedup_key AND e.starts_at = x.starts_at)
FROM jsonb_to_recordset($1::jsonb) AS x(i int, source text, dedup_key text, starts_at timestamptz)
)sql";

// The new state changes, and the latest of them per alert into receiver_alerts.
constexpr const char* kInsertEventsSql = R"sql(
WITH x AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
    source text, dedup_key text, status text, starts_at timestamptz, ends_at timestamptz,
    severity text, outcome text, notifications int, alert jsonb, routing jsonb, webhook_id bigint)
), ins AS (
  INSERT INTO receiver_alert_events (source, dedup_key, status, starts_at, ends_at, severity,
                                     outcome, notifications, alert, routing, webhook_id,
                                     incident_pending)
  SELECT source, dedup_key, status, starts_at, ends_at, severity, outcome, notifications,
         alert, routing, webhook_id,
         -- What the incident engine (incidents/) must look at: firings routed to an
         -- escalation policy or about a connector (its subscribers' notices wait on the
         -- incident's acknowledgement), and every resolution (it may close an incident).
         -- Other firings are plain notifications, as in Alertmanager: no incident.
         status = 'resolved'
           OR coalesce(jsonb_array_length(routing->'escalation_policies'), 0) > 0
           OR coalesce(alert->'labels'->>'connector', '') <> ''
  FROM x ORDER BY source, dedup_key, status, starts_at
  ON CONFLICT DO NOTHING
  RETURNING id, source, dedup_key, status, starts_at, ends_at, severity, alert, routing
)
INSERT INTO receiver_alerts AS a (source, dedup_key, status, starts_at, ends_at, severity,
                                  alertname, labels, escalation_policies, last_event_id)
SELECT DISTINCT ON (source, dedup_key)
       source, dedup_key, status, starts_at, ends_at, severity,
       coalesce(alert->>'alertname', ''), coalesce(alert->'labels', '{}'::jsonb),
       ARRAY(SELECT jsonb_array_elements_text(routing->'escalation_policies')), id
FROM ins
ORDER BY source, dedup_key, starts_at DESC, (status = 'resolved') DESC
ON CONFLICT (source, dedup_key) DO UPDATE
SET status = EXCLUDED.status, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
    severity = EXCLUDED.severity, alertname = EXCLUDED.alertname, labels = EXCLUDED.labels,
    escalation_policies = EXCLUDED.escalation_policies,
    last_event_id = EXCLUDED.last_event_id, updated_at = now()
WHERE (EXCLUDED.starts_at, EXCLUDED.status = 'resolved') > (a.starts_at, a.status = 'resolved')
)sql";

// One alert on its way through StoreWebhooks.
struct Work {
  size_t job = 0;  // index of its webhook in the batch
  const PlannedAlert* planned = nullptr;
  notifier::AlertView view;  // starts_at / ends_at final
  int64_t starts_us = 0;
  bool decided = false;  // outcome known before the duplicate check
  AlertOutcome outcome = AlertOutcome::kDuplicate;
  std::vector<std::pair<std::string, std::string>> recipients;
};

}  // namespace

int64_t AlertLockKey(const std::string& source, const std::string& dedup_key) {
  const std::string h = Sha256(source + '\xff' + dedup_key);
  uint64_t k = 0;
  for (int i = 0; i < 8; ++i) k = (k << 8) | static_cast<unsigned char>(h[i]);
  return static_cast<int64_t>(k);
}

namespace {

// The store's statements (prepared per connection, or unnamed behind PgBouncer
// in transaction mode: the mode is read at the first use).
const PgStatements& Statements() {
  static const PgStatements statements = [] {
    PgStatements s;
    s.Add("receiver_lock", kLockSql);
    s.Add("receiver_insert_webhooks", kInsertWebhooksSql);
    s.Add("receiver_current_state", kCurrentStateSql);
    s.Add("receiver_existing", kExistingSql);
    s.Add("receiver_insert_events", kInsertEventsSql);
    return s;
  }();
  return statements;
}

void LockAlerts(pqxx::work& txn, const std::vector<Work>& work) {
  std::set<int64_t> keys;
  for (const Work& w : work) keys.insert(AlertLockKey(w.view.source, w.view.dedup_key));
  if (keys.empty()) return;
  std::string arr = "{";
  for (int64_t k : keys) arr += (arr.size() > 1 ? "," : "") + std::to_string(k);
  arr += "}";
  Statements().Exec(txn, "receiver_lock", arr);
}

std::vector<int64_t> InsertWebhooks(pqxx::work& txn, const std::vector<WebhookToStore>& jobs) {
  Json rows = Json::array();
  for (const WebhookToStore& j : jobs)
    rows.push_back({{"n", rows.size()},
                    {"source", SourceName(j.webhook->source)},
                    {"group_key", j.webhook->group_key},
                    {"alerts", j.alerts->size()},
                    {"truncated", j.webhook->truncated_alerts},
                    {"payload", j.body}});
  std::vector<int64_t> ids;
  for (const auto& row : Statements().Exec(txn, "receiver_insert_webhooks", rows.dump()))
    ids.push_back(row[0].as<int64_t>());
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::string AlertId(const std::string& source, const std::string& dedup_key) {
  return source + '\xff' + dedup_key;
}

// Gives the alerts of start-less sources their episode start from the current
// state, in batch order (a payload may fire and resolve one key), like
// PagerDuty's dedup_key: a firing while firing and a resolution while not
// firing are duplicates; a firing otherwise opens an episode at its receipt time.
void DecideImplicitStarts(pqxx::work& txn, std::vector<Work>& work,
                          const std::vector<WebhookToStore>& jobs) {
  Json keys = Json::array();
  for (const Work& w : work)
    if (!w.planned->alert.starts_at_us)
      keys.push_back({{"source", w.view.source}, {"dedup_key", w.view.dedup_key}});
  if (keys.empty()) return;
  struct State {
    bool firing;
    int64_t starts_us;
  };
  std::map<std::string, State> state;
  for (const auto& row : Statements().Exec(txn, "receiver_current_state", keys.dump()))
    state[AlertId(row[0].as<std::string>(), row[1].as<std::string>())] = {
        row[2].as<std::string>() == "firing", row[3].as<int64_t>()};
  for (Work& w : work) {
    if (w.planned->alert.starts_at_us) continue;
    const std::string id = AlertId(w.view.source, w.view.dedup_key);
    auto it = state.find(id);
    const bool firing_now = it != state.end() && it->second.firing;
    if (w.view.status == "firing") {
      if (firing_now) {
        w.decided = true;  // duplicate
        continue;
      }
      w.starts_us = jobs[w.job].now_us;
      state[id] = {true, w.starts_us};
    } else {
      if (!firing_now) {
        w.decided = true;  // duplicate
        continue;
      }
      w.starts_us = it->second.starts_us;
      it->second.firing = false;
    }
  }
}

// Final times of the undecided: the episode start, and the end of a resolution
// (its endsAt, else the receipt time).
void SetTimes(std::vector<Work>& work, const std::vector<WebhookToStore>& jobs) {
  for (Work& w : work) {
    if (w.decided) continue;
    w.view.starts_at = FormatAlertTime(w.starts_us);
    if (w.view.status == "firing") {
      w.view.ends_at.clear();
    } else {
      w.view.ends_at = FormatAlertTime(w.planned->alert.ends_at_us.value_or(jobs[w.job].now_us));
    }
  }
}

// Marks duplicates and stale firings among the undecided.
void CheckExisting(pqxx::work& txn, std::vector<Work>& work) {
  Json rows = Json::array();
  for (size_t i = 0; i < work.size(); ++i) {
    if (work[i].decided) continue;
    rows.push_back({{"i", i},
                    {"source", work[i].view.source},
                    {"dedup_key", work[i].view.dedup_key},
                    {"starts_at", work[i].view.starts_at}});
  }
  if (rows.empty()) return;
  for (const auto& row : Statements().Exec(txn, "receiver_existing", rows.dump())) {
    if (row[1].is_null()) continue;
    Work& w = work[row[0].as<size_t>()];
    const std::string stored = row[1].as<std::string>();  // "{firing}", "{firing,resolved}"
    const bool has_firing = stored.find("firing") != std::string::npos;
    const bool has_resolved = stored.find("resolved") != std::string::npos;
    if (w.view.status == "firing" ? has_firing : has_resolved) {
      w.decided = true;
      w.outcome = AlertOutcome::kDuplicate;
    } else if (w.view.status == "firing" && has_resolved) {
      w.decided = true;
      w.outcome = AlertOutcome::kStale;
    }
  }
}

// A batch may repeat one state change (two copies of a webhook, or an array to
// the generic intake): only its first copy is new.
void MarkRepeats(std::vector<Work>& work) {
  std::set<std::string> seen;
  for (Work& w : work) {
    if (w.decided) continue;
    const std::string id = AlertId(w.view.source, w.view.dedup_key) + '\xff' + w.view.status +
                           '\xff' + std::to_string(w.starts_us);
    if (!seen.insert(id).second) w.decided = true;  // duplicate
  }
}

// Recipients and outcome of each new state change. A resolution goes to
// everyone its firing was enqueued for: earlier (FiringRecipients) or earlier
// in this same batch.
void ChooseRecipients(pqxx::work& txn, std::vector<Work>& work,
                      const std::vector<WebhookToStore>& jobs,
                      const std::function<bool(const std::string&)>& channel_exists) {
  using Recipients = std::vector<std::pair<std::string, std::string>>;
  std::map<std::string, Recipients> fired_here;  // dedup_key + start -> recipients
  for (Work& w : work) {
    if (w.decided) continue;
    const std::string episode = w.view.dedup_key + '\xff' + w.view.starts_at;
    if (w.view.status == "firing") {
      const MuteCheck* silenced = jobs[w.job].is_silenced;
      if (silenced && *silenced && (*silenced)(txn, w.view.labels, jobs[w.job].now_us)) {
        w.outcome = AlertOutcome::kSilenced;  // no recipients, like kMuted
        continue;
      }
      const MuteCheck* muted = jobs[w.job].is_muted;
      if (muted && *muted && (*muted)(txn, w.view.labels, jobs[w.job].now_us)) {
        w.outcome = AlertOutcome::kMuted;  // no recipients: its resolution is not_notified
        continue;
      }
      w.recipients = w.planned->recipients;
      w.outcome = w.recipients.empty() ? AlertOutcome::kUnrouted : AlertOutcome::kNotified;
      fired_here[episode] = w.recipients;
      continue;
    }
    Recipients all = notifier::FiringRecipients(txn, w.view.dedup_key, w.view.starts_at);
    if (auto it = fired_here.find(episode); it != fired_here.end())
      all.insert(all.end(), it->second.begin(), it->second.end());
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    for (auto& r : all)
      if (channel_exists(r.first)) w.recipients.push_back(std::move(r));
    w.outcome = w.recipients.empty() ? AlertOutcome::kNotNotified : AlertOutcome::kNotified;
  }
}

// Enqueues the notifications of the new state changes and counts them per job.
void EnqueueAll(pqxx::work& txn, const std::vector<Work>& work, std::vector<StoreResult>* results) {
  std::vector<notifier::OutboxEntry> entries;
  for (const Work& w : work) {
    if (w.decided) continue;
    for (const auto& [channel, destination] : w.recipients) {
      entries.push_back({channel, destination, w.view});
      ++(*results)[w.job].enqueued[channel];
    }
  }
  // One order for every transaction: fewer lock waits between concurrent batches.
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.channel, a.destination, a.alert.dedup_key) <
           std::tie(b.channel, b.destination, b.alert.dedup_key);
  });
  if (!entries.empty()) notifier::Enqueue(txn, entries);
}

Json RoutingJson(const RoutingDecision& d) {
  Json channels = Json::array();
  for (const auto& t : d.targets) channels.push_back(t.channel);
  return {
      {"routes", d.routes}, {"channels", channels}, {"escalation_policies", d.escalation_policies}};
}

void InsertEvents(pqxx::work& txn, const std::vector<Work>& work,
                  const std::vector<StoreResult>& results) {
  Json rows = Json::array();
  for (const Work& w : work) {
    if (w.decided && w.outcome != AlertOutcome::kStale) continue;  // duplicates leave no row
    rows.push_back({{"source", w.view.source},
                    {"dedup_key", w.view.dedup_key},
                    {"status", w.view.status},
                    {"starts_at", w.view.starts_at},
                    {"ends_at", w.view.ends_at.empty() ? Json() : Json(w.view.ends_at)},
                    {"severity", w.view.severity},
                    {"outcome", OutcomeName(w.outcome)},
                    {"notifications", w.recipients.size()},
                    {"alert", notifier::ToJson(w.view)},
                    {"routing", RoutingJson(w.planned->routing)},
                    {"webhook_id", results[w.job].webhook_id}});
  }
  if (!rows.empty()) Statements().Exec(txn, "receiver_insert_events", rows.dump());
}

// Declares the statements on `conn` (idempotent: pqxx keeps them per connection and
// prepares each on the server at its first use). Saves parsing and planning the
// larger statements on every webhook. Nothing behind PgBouncer in transaction
// mode: Statements() are then sent unnamed.
void Prepare(pqxx::connection& conn) { Statements().PrepareOn(conn); }

// nullopt: `claim` (may be null) said no; its writes are committed.
std::optional<std::vector<StoreResult>> StoreOnce(
    pqxx::connection& conn, const std::vector<WebhookToStore>& jobs,
    const std::function<bool(const std::string&)>& channel_exists, const StoreClaim* claim) {
  std::vector<Work> work;
  for (size_t j = 0; j < jobs.size(); ++j) {
    for (const PlannedAlert& p : *jobs[j].alerts) {
      Work w;
      w.job = j;
      w.planned = &p;
      w.view = p.alert.view;
      w.starts_us = p.alert.starts_at_us.value_or(0);
      work.push_back(std::move(w));
    }
  }
  std::vector<StoreResult> results(jobs.size());
  Prepare(conn);
  pqxx::work txn(conn);
  if (claim && !(*claim)(txn)) {
    txn.commit();
    return std::nullopt;
  }
  const std::vector<int64_t> ids = InsertWebhooks(txn, jobs);
  for (size_t j = 0; j < jobs.size(); ++j) results[j].webhook_id = ids.at(j);
  LockAlerts(txn, work);
  DecideImplicitStarts(txn, work, jobs);
  SetTimes(work, jobs);
  MarkRepeats(work);
  CheckExisting(txn, work);
  ChooseRecipients(txn, work, jobs, channel_exists);
  EnqueueAll(txn, work, &results);
  InsertEvents(txn, work, results);
  txn.commit();
  for (const Work& w : work) results[w.job].outcomes.push_back(w.outcome);
  return results;
}

}  // namespace

const char* OutcomeName(AlertOutcome outcome) {
  switch (outcome) {
    case AlertOutcome::kNotified:
      return "notified";
    case AlertOutcome::kDuplicate:
      return "duplicate";
    case AlertOutcome::kStale:
      return "stale";
    case AlertOutcome::kUnrouted:
      return "unrouted";
    case AlertOutcome::kNotNotified:
      return "not_notified";
    case AlertOutcome::kMuted:
      return "muted";
    case AlertOutcome::kSilenced:
      return "silenced";
  }
  return "unknown";
}

PlannedAlert PlanAlert(IncomingAlert alert, const std::vector<RouteNode>& routes,
                       const notifier::NotifierConfig& channels,
                       const std::string& default_severity) {
  PlannedAlert p;
  alert.view.severity = ClassifySeverity(alert.raw_severity, default_severity);
  if (alert.starts_at_us) alert.view.starts_at = FormatAlertTime(*alert.starts_at_us);
  p.routing = RouteAlert(routes, RoutingLabels(alert));
  for (const auto& target : p.routing.targets)
    for (std::string& d : notifier::Destinations(channels, target.channel))
      p.recipients.emplace_back(target.channel, std::move(d));
  p.alert = std::move(alert);
  return p;
}

namespace {

// StoreOnce, retried after deadlocks and serialisation failures.
std::optional<std::vector<StoreResult>> StoreRetrying(
    pqxx::connection& conn, const std::vector<WebhookToStore>& jobs,
    const std::function<bool(const std::string&)>& channel_exists, const StoreClaim* claim) {
  for (int attempt = 1;; ++attempt) {
    try {
      return StoreOnce(conn, jobs, channel_exists, claim);
    } catch (const pqxx::sql_error& e) {
      // 40P01 deadlock, 40001 serialization failure: nothing was stored; retry.
      const std::string state = e.sqlstate();
      if (attempt >= 3 || state.rfind("40", 0) != 0) throw;
    }
  }
}

}  // namespace

std::vector<StoreResult> StoreWebhooks(
    pqxx::connection& conn, const std::vector<WebhookToStore>& jobs,
    const std::function<bool(const std::string&)>& channel_exists) {
  if (jobs.empty()) return {};
  return *StoreRetrying(conn, jobs, channel_exists, nullptr);
}

std::optional<StoreResult> StoreWebhookIf(
    pqxx::connection& conn, const WebhookToStore& job, const StoreClaim& claim,
    const std::function<bool(const std::string&)>& channel_exists) {
  auto results = StoreRetrying(conn, {job}, channel_exists, &claim);
  if (!results) return std::nullopt;
  return results->at(0);
}

StoreResult StoreWebhook(pqxx::connection& conn, const Webhook& webhook, std::string_view body,
                         const std::vector<PlannedAlert>& alerts, int64_t now_us,
                         const std::function<bool(const std::string&)>& channel_exists) {
  return StoreWebhooks(conn, {WebhookToStore{&webhook, body, &alerts, now_us}}, channel_exists)
      .at(0);
}

int64_t DeleteOldWebhooks(pqxx::connection& conn, int days) {
  pqxx::work txn(conn);
  const auto r = txn.exec_params(
      "DELETE FROM receiver_webhooks WHERE received_at < now() - make_interval(days => $1)", days);
  txn.commit();
  return static_cast<int64_t>(r.affected_rows());
}

}  // namespace bpmc::webhook_receiver
