#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ingestion/event.h"

namespace bpmc::ingestion {

// An event id names one event for as long as events are kept
// (retention_days): connector_usage_ids (migration 0009) registers every
// stored id. These pure functions decide what a repeated id means; the
// PostgreSQL store (store.cpp) applies them in the transaction that inserts.
//
// The *content* of an event, for this comparison, is: connector, operation,
// make_account_id, status, error_type, error_message and duration_ms, all
// exactly equal (an absent optional field equals only an absent one), and
// timestamp within kRetryWindowUs of the stored one. Not part of it: the API
// key that sent it (a retry after a key rotation is the same event), and the
// exact timestamp (a retry wrapper that rebuilds the body stamps it anew).

// How far apart the timestamps of two bodies with one event_id may be for the
// second to be a retry of the first.
inline constexpr int64_t kRetryWindowUs = 24LL * 3600 * 1000000;

// The first content field in which `incoming` differs from `stored` ("" when
// it is the same event): "connector", "operation", "make_account_id",
// "timestamp", "status", "error_type", "error_message" or "duration_ms".
std::string_view EventDifference(const UsageEvent& stored, const UsageEvent& incoming);

// What becomes of each event of one store call.
enum class IdVerdict {
  kNew,        // to be stored
  kDuplicate,  // its id already names the same event: not stored again (201)
  kConflict,   // its id already names a different event: not stored (409)
  kWithdrawn,  // fine itself, but its request holds a conflict: not stored
};

struct IdPlan {
  std::vector<IdVerdict> verdicts;      // one per event
  std::vector<std::string> difference;  // per event: EventDifference for kConflict
};

// What the database holds for an id: the stored event, or nullopt when the id
// is registered but its row is gone (its day expired between the partition
// drop and the pruning of connector_usage_ids): a repeat of it is a duplicate.
using StoredEvents = std::unordered_map<std::string, std::optional<UsageEvent>>;

// Decides every event of a store call. `group_ends` splits `events` into
// requests ([0, g0), [g0, g1), ...; empty: one request per event), taken in
// order: a request is stored whole or not at all. Each event is compared with
// the event its id names in `stored`, else with the first event of an
// accepted earlier request (or earlier in its own request) with that id, else
// it is new. The first conflict refuses its request: that event is kConflict,
// the request's others kWithdrawn (they then stand for no id). Pure, O(n).
IdPlan PlanEventIds(const std::vector<const UsageEvent*>& events,
                    const std::vector<size_t>& group_ends, const StoredEvents& stored);

}  // namespace bpmc::ingestion
