#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/migrate.h"
#include "notifier/config.h"
#include "webhook_receiver/intake.h"
#include "webhook_receiver/routing.h"

namespace bpmc::webhook_receiver {

// The schema modules of the libraries bpmc-receiver links (identity, billing —
// read by notices —, receiver, notifier, incidents, notices), for ApplySchema
// (common/migrate.h).
std::vector<const SchemaModule*> DatabaseSchema();

// One alert ready to store: classified, routed, and (when firing) with the
// recipients its routes expand to.
struct PlannedAlert {
  IncomingAlert alert;  // view.severity is set
  RoutingDecision routing;
  std::vector<std::pair<std::string, std::string>> recipients;  // (channel, destination)
};

// Classifies (default_severity for unknown words), routes and expands the
// route's channels into destinations (notifier::Destinations). Pure.
PlannedAlert PlanAlert(IncomingAlert alert, const std::vector<RouteNode>& routes,
                       const notifier::NotifierConfig& channels,
                       const std::string& default_severity);

// What became of one alert of a stored webhook.
enum class AlertOutcome {
  kNotified,     // a new state change; outbox rows were enqueued
  kDuplicate,    // this state change was stored before (HA pair, retry, repeat)
  kStale,        // a firing whose resolution is already stored: not notified
  kUnrouted,     // a new firing no route sends anywhere
  kNotNotified,  // a new resolution of a firing nobody was notified of
  kMuted,        // a new firing muted by the mute hook (maintenance): stored, nobody paged
  kSilenced,     // a new firing an active silence matched: stored, nobody paged, no incident
};
const char* OutcomeName(AlertOutcome outcome);  // "notified", "duplicate", ...

struct StoreResult {
  int64_t webhook_id = 0;
  std::vector<AlertOutcome> outcomes;   // one per planned alert, same order
  std::map<std::string, int> enqueued;  // outbox rows by channel
};

// The advisory-lock key of one alert: StoreWebhooks holds it (transaction level)
// while deciding an alert's state change; whoever changes that alert's stored
// events outside it takes it too.
int64_t AlertLockKey(const std::string& source, const std::string& dedup_key);

// The mute hook (notices::InMaintenance): true when a new firing with these labels
// must page nobody at `now_us`. Runs inside the storing transaction.
using MuteCheck = std::function<bool(pqxx::work&, const std::map<std::string, std::string>& labels,
                                     int64_t now_us)>;

// One webhook to store (pointers stay owned by the caller during the call).
struct WebhookToStore {
  const Webhook* webhook = nullptr;
  std::string_view body;                              // the payload as received
  const std::vector<PlannedAlert>* alerts = nullptr;  // PlanAlert of webhook->alerts
  int64_t now_us = 0;  // receipt time: the start of episodes of sources without one
  const MuteCheck* is_muted = nullptr;     // null or empty: never muted
  const MuteCheck* is_silenced = nullptr;  // silences (silences.h: Silenced); null: none
};

// Stores a batch of webhooks in ONE transaction and commits it (group commit),
// exactly as if they were stored one after another in this order: each
// payload, each alert's state change once (duplicates of a stored change are
// recognised under per-alert advisory locks, taken in ascending key order, so
// concurrent copies from an HA pair serialise without deadlocks), the current
// state of each alert, and the outbox rows (notifier::Enqueue): a new firing
// goes to its planned recipients (to nobody when its job's is_silenced says so:
// kSilenced, or else its is_muted: kMuted), a new resolution to everyone notified of
// that firing (notifier::FiringRecipients) whose channel still exists
// (`channel_exists`). Returns one result per webhook, in order. Throws pqxx
// exceptions; then nothing of the batch is stored. Deadlocks and
// serialisation failures are retried inside (3 attempts).
std::vector<StoreResult> StoreWebhooks(
    pqxx::connection& conn, const std::vector<WebhookToStore>& jobs,
    const std::function<bool(const std::string&)>& channel_exists);

// StoreWebhooks of a single webhook.
StoreResult StoreWebhook(pqxx::connection& conn, const Webhook& webhook, std::string_view body,
                         const std::vector<PlannedAlert>& alerts, int64_t now_us,
                         const std::function<bool(const std::string&)>& channel_exists);

// A decision taken in the storing transaction itself, before anything of the
// webhook is written (StoreWebhookIf): true stores the webhook, false stores
// nothing of it. What the claim wrote is committed either way. It may run
// more than once (the transaction is retried after a deadlock); each run sees
// a fresh transaction.
using StoreClaim = std::function<bool(pqxx::work&)>;

// StoreWebhook of `job`, in one transaction that runs `claim` first: nullopt
// when the claim said no (then only the claim's own writes are committed).
// Heartbeats decide "missed" and "resolved" this way, so that the decision and
// the alert it stores commit together (docs/RECEIVER.md "Heartbeats"). Throws
// like StoreWebhooks.
std::optional<StoreResult> StoreWebhookIf(
    pqxx::connection& conn, const WebhookToStore& job, const StoreClaim& claim,
    const std::function<bool(const std::string&)>& channel_exists);

// Deletes webhooks received more than `days` ago; returns how many. Alert
// events and states stay (they are small and escalation needs them).
int64_t DeleteOldWebhooks(pqxx::connection& conn, int days);

}  // namespace bpmc::webhook_receiver
