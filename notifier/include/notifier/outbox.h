#pragma once

#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "notifier/notification.h"

namespace bpmc::notifier {

// One row to deliver: one alert state change for one (channel, destination).
struct OutboxEntry {
  std::string channel;      // channel name from the config
  std::string destination;  // recipient within the channel ("" = the channel's single target);
                            // rate limits and bundling are per (channel, destination)
  AlertView alert;
};

// Inserts entries inside the caller's transaction (so the webhook and its notifications commit
// together). Idempotent on (channel, destination, alert.dedup_key, alert.status, alert.starts_at):
// a repeated entry is skipped. starts_at is normalised (RFC 3339 → UTC microseconds form) so two
// spellings of one instant are one key. Returns nothing; throws pqxx exceptions.
void Enqueue(pqxx::work& txn, const std::vector<OutboxEntry>& entries);

// The (channel, destination) pairs that were sent, or are still queued to be sent, the firing
// notice of the alert `dedup_key` that started at `starts_at` (any spelling of the instant; ""
// matches the rows enqueued with an empty starts_at). Rows that failed permanently are left out.
// The receiver enqueues the resolution notice to exactly these. Throws pqxx exceptions.
std::vector<std::pair<std::string, std::string>> FiringRecipients(pqxx::work& txn,
                                                                  const std::string& dedup_key,
                                                                  const std::string& starts_at);

}  // namespace bpmc::notifier
