#pragma once
// Test-only (bpmc::ingestion_testing): an in-memory database behind the
// EventStore interface (ingestion/store.h), with faults the test switches on.

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "ingestion/event.h"
#include "ingestion/event_ids.h"
#include "ingestion/store.h"

namespace bpmc::ingestion::testing {

// Usage events held in memory, shared by the EventStores it hands out (the
// writer gives each of its threads one, as NewPgEventStore makes one per
// connection). Decides each Insert with PlanEventIds, as the PostgreSQL store
// does, and stores the kNew events; a transaction is all or nothing.
// Thread-safe; must outlive its stores.
class FakeEventDatabase {
 public:
  // One answered Insert, as the database saw it.
  struct InsertCall {
    std::vector<std::string> ids;  // the events' ids, in order
    std::vector<size_t> group_ends;
    StoreResult::Kind kind = StoreResult::Kind::kOk;  // what it answered
  };

  // A new store (a connection) on this database.
  std::unique_ptr<EventStore> NewStore();

  // Stores `event` as if an earlier Insert had.
  void Put(const UsageEvent& event);

  // Faults. While down, Insert answers kUnavailable, Quarantine fails and
  // Probe answers false.
  void SetDown(bool down);
  // Goes down by itself once `inserts` more Inserts have committed.
  void GoDownAfter(int inserts);
  // Refuses (kRejected, SQLSTATE 23503, nothing stored) every transaction
  // that holds an event with this id.
  void Refuse(const std::string& id);
  // While held, every Insert waits (counted in held()) before it is decided.
  void Hold();
  void Release();

  // What happened.
  std::vector<std::string> StoredIds() const;  // in the order they were stored
  StoredEvents Stored() const;
  std::vector<InsertCall> Inserts() const;      // answered ones, in order
  std::vector<UsageEvent> Quarantined() const;  // in the order they were kept
  int held() const;                             // Inserts waiting now
  bool down() const;

 private:
  class Store;
  StoreResult Insert(const std::vector<const UsageEvent*>& events,
                     const std::vector<size_t>& group_ends);
  bool Quarantine(const std::vector<const UsageEvent*>& events, std::string* error);
  bool Probe() const;

  mutable std::mutex mu_;
  std::condition_variable release_cv_;
  bool held_ = false;
  int waiting_ = 0;
  bool down_ = false;
  int down_after_ = -1;  // < 0: never by itself
  std::set<std::string> refused_;
  StoredEvents stored_;
  std::vector<std::string> stored_ids_;
  std::vector<InsertCall> inserts_;
  std::vector<UsageEvent> quarantined_;
};

}  // namespace bpmc::ingestion::testing
