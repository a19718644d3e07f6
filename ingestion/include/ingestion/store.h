#pragma once

#include <cstdint>
#include <memory>
#include <pqxx/connection>
#include <set>
#include <string>
#include <vector>

#include "ingestion/event.h"
#include "ingestion/event_ids.h"

namespace bpmc::ingestion {

// The result of one storage attempt, as a value (never thrown).
struct StoreResult {
  enum class Kind {
    kOk,           // committed; `inserted[i]` tells whether events[i] was new
    kUnavailable,  // the database could not be reached or the outcome is unknown
    kRejected,     // the data was refused (e.g. a foreign key); nothing stored
  };
  Kind kind = Kind::kOk;
  std::vector<bool> inserted;
  // For kOk: what became of each event (kNew = inserted; kDuplicate, and
  // kConflict / kWithdrawn with `difference` for the conflicting event, are
  // not stored). Empty means every event was kNew.
  std::vector<IdVerdict> verdicts;
  std::vector<std::string> difference;
  std::string error;     // for logs; never contains the connection string
  std::string sqlstate;  // when the server answered with an error
};

// Durable storage of usage events. One object per connection: not
// thread-safe; the writer gives each of its threads its own.
class EventStore {
 public:
  virtual ~EventStore() = default;
  // Stores `events` in one transaction. An event id names one event
  // (event_ids.h): an event whose id already names the same event is not
  // stored again (kDuplicate), one whose id names a different event is not
  // stored (kConflict) and neither is the rest of its request (kWithdrawn).
  // `group_ends` splits `events` into requests as PlanEventIds takes them
  // (empty: each event on its own). Returns when the transaction has
  // committed (or failed).
  virtual StoreResult Insert(const std::vector<const UsageEvent*>& events,
                             const std::vector<size_t>& group_ends) = 0;
  // Keeps events that could not be stored because their id names a different
  // event (a spool replay) in connector_usage_conflicts, once each. Returns
  // false (with `error`) when the database could not take them.
  virtual bool Quarantine(const std::vector<const UsageEvent*>& events, std::string* error) = 0;
  // True when a connection is up or can be made now.
  virtual bool Probe() = 0;
};

// PostgreSQL implementation. Creates the day partitions an insert needs
// (CREATE TABLE IF NOT EXISTS ... PARTITION OF, under an advisory lock) and
// reconnects lazily after a failure.
std::unique_ptr<EventStore> NewPgEventStore(std::string database_url);

// Day partitions: connector_usage_pYYYYMMDD covers [day, day+1) UTC.
// Creates the partitions for the UTC days from `from_us` to `to_us` inclusive.
void EnsureDayPartitions(pqxx::connection& conn, int64_t from_us, int64_t to_us);
// Drops partitions whose whole day is older than `now_us - retention_days`,
// then forgets the ids (connector_usage_ids) and quarantined conflicts
// (connector_usage_conflicts) of those days, in chunks of 50,000 rows.
// Returns the names dropped. Skips (returns {}) when another process holds
// the maintenance lock.
std::vector<std::string> DropExpiredPartitions(pqxx::connection& conn, int64_t now_us,
                                               int retention_days);

// Days since the epoch of a UTC timestamp in microseconds (floor).
int64_t UtcDay(int64_t micros);

// SQL array literal helpers for unnest()-based bulk statements.
// Elements are double-quoted with backslash escapes; nullopt -> NULL.
void AppendArrayElement(std::string* out, std::string_view value);
void AppendArrayNull(std::string* out);

}  // namespace bpmc::ingestion
