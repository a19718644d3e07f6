#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "notifier/notification.h"

namespace bpmc::webhook_receiver {

// The webhook formats the receiver accepts, one endpoint each (docs/RECEIVER.md),
// and kHeartbeat: the alerts the receiver makes itself when a heartbeat is
// missed or checks in again (heartbeats.h; not a webhook format).
enum class Source { kAlertmanager, kGeneric, kSentry, kDatadog, kNewRelic, kHeartbeat };

// "alertmanager", "generic", "sentry", "datadog", "newrelic", "heartbeat"
// (AlertView::source, metric label).
const char* SourceName(Source source);

// One alert as an intake parsed it, before classification and routing.
struct IncomingAlert {
  // Filled by the parser except `severity`, which Classify() sets from raw_severity.
  // view.status is "firing" or "resolved"; view.dedup_key is non-empty.
  notifier::AlertView view;
  std::string raw_severity;  // as the source sent it ("" when it sent none)
  // When the current episode of this alert started, if the source says so
  // (Alertmanager startsAt, New Relic createdAt). nullopt: the source has no
  // stable start, and the receiver tracks firing/resolved by dedup_key alone
  // (like PagerDuty's Events API): a firing while the key is already firing is
  // a duplicate, and so is a resolved while it is not.
  std::optional<int64_t> starts_at_us;
  std::optional<int64_t> ends_at_us;  // resolved alerts, when known
};

// A parsed webhook: zero or more alerts (a Sentry "assigned" action carries none).
struct Webhook {
  Source source = Source::kGeneric;
  std::vector<IncomingAlert> alerts;
  std::string group_key;         // Alertmanager groupKey ("" elsewhere)
  int64_t truncated_alerts = 0;  // Alertmanager max_alerts: alerts left out of this payload
  std::string ignored_reason;    // non-empty when the payload was valid but carries no alert
};

// A payload the receiver refuses (400, or 413 past kMaxAlertsPerWebhook):
// nothing is stored. `field` is a JSON path ("alerts[3].labels") or "" for
// the body as a whole.
struct IntakeError {
  std::string message;
  std::string field;
  int status = 400;
};

// Limits of every webhook, whatever its source (docs/RECEIVER.md "Limits").
// A payload past one is refused whole, nothing stored: alerts per webhook with
// 413, the others with 400 naming the field. Besides these, the body is at
// most `max_body_bytes` and nests JSON at most kMaxJsonDepth (common/json_depth.h).
inline constexpr size_t kMaxAlertsPerWebhook = 1000;
inline constexpr size_t kMaxLabelsPerAlert = 128;     // labels, and annotations apart
inline constexpr size_t kMaxLabelNameBytes = 256;     // label and annotation names
inline constexpr size_t kMaxLabelValueBytes = 16384;  // label values
inline constexpr size_t kMaxAnnotationValueBytes = 65536;

// The first limit `webhook` exceeds, or nullopt. Pure.
std::optional<IntakeError> CheckIntakeLimits(const Webhook& webhook);

using IntakeResult = std::variant<Webhook, IntakeError>;

// Alertmanager webhook payload version 4. Tolerates unknown keys, the zero
// endsAt of firing alerts, truncatedAlerts and a regex-escaped receiver name.
// Requires version "4", an `alerts` array, and for each alert a status
// (firing|resolved), a labels object and an RFC 3339 startsAt. dedup_key is
// the fingerprint (or, from an Alertmanager too old to send one, a hash of
// the sorted labels). Pure.
IntakeResult ParseAlertmanager(std::string_view body);

// The generic JSON intake: one object or an array of up to 1000 objects with
//   summary (required for firing), severity, source, dedup_key, status
//   ("firing"|"resolved", also "trigger"/"resolve"), description, details
//   (any JSON, shown as annotations), runbook_url, link, labels, starts_at.
// Without dedup_key the key is a hash of (source, summary). Pure.
IntakeResult ParseGeneric(std::string_view body);

// Sentry: issue alert webhooks (legacy plugin payload with `url`/`event`, and
// the integration platform's `data.event`), and issue webhooks
// (`data.issue`, action created|unresolved -> firing, resolved -> resolved,
// anything else is accepted and ignored). dedup_key "sentry:<issue id>". Pure.
IntakeResult ParseSentry(std::string_view body);

// Datadog monitor webhooks with the payload template from docs/RECEIVER.md
// ($ALERT_ID, $ALERT_TRANSITION, $ALERT_TYPE, ...). "Recovered" -> resolved,
// any other transition -> firing. dedup_key "datadog:<aggreg_key or alert_id>". Pure.
IntakeResult ParseDatadog(std::string_view body);

// New Relic: workflow webhooks (the default payload: id, state
// CREATED|ACTIVATED|CLOSED, priority, createdAt ms) and legacy alert channel
// webhooks (incident_id, current_state open|acknowledged|closed, severity).
// dedup_key "newrelic:<issue or incident id>". Pure.
IntakeResult ParseNewRelic(std::string_view body);

// Dispatches to the parser of `source`, then checks CheckIntakeLimits: the
// path of every request. kHeartbeat has no parser: an IntakeError.
IntakeResult ParseWebhook(Source source, std::string_view body);

// RFC 3339 with whole seconds when the fraction is zero ("2026-11-25T10:00:00Z"),
// else microseconds. The form AlertView carries.
std::string FormatAlertTime(int64_t micros);

}  // namespace bpmc::webhook_receiver
