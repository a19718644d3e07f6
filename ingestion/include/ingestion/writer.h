#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/group_commit.h"
#include "ingestion/event.h"
#include "ingestion/ingest_metrics.h"
#include "ingestion/spool.h"
#include "ingestion/store.h"

namespace bpmc::ingestion {

// Group commit (common/group_commit.h). Request threads Submit() their events
// and block; writer threads (one EventStore each) take everything queued, up
// to `max_commit_events`, and store it in one transaction, then wake each
// request. So N concurrent requests cost one INSERT + COMMIT, not N.
//
// When PostgreSQL is unreachable the batch is appended to the spool (one
// write + fdatasync) instead and acknowledged; later batches go straight to
// the spool until a probe succeeds. A replay thread then moves the spool into
// PostgreSQL oldest segment first, idempotently, while new batches go to the
// database again. An event counts in the connector_* metrics when it is
// newly stored in PostgreSQL (so replays and duplicates are counted once).
//
// An event id names one event (event_ids.h): a request holding an event whose
// id names a different stored event is refused whole (kConflict) without
// failing the requests committed with it. A spooled (acknowledged) event that
// meets such a conflict on replay is kept in connector_usage_conflicts and
// counted in bpmc_exporter_failures_total{reason="replay_event_id_conflict"}.
//
// Thread-safe.
class Writer {
 public:
  enum class Outcome {
    kStored,        // committed to PostgreSQL or fsync'ed to the spool
    kSpoolFull,     // not stored: database down and spool full (503, Retry-After)
    kRejected,      // not stored: the database refused the data (see error)
    kUnavailable,   // not stored: neither database nor spool could take it (503)
    kShuttingDown,  // not stored: Stop() has begun (503)
    kConflict,      // not stored: an event's id names a different event (409)
  };
  struct Result {
    Outcome outcome = Outcome::kStored;
    std::string sqlstate;    // for kRejected
    size_t event_index = 0;  // for kConflict: the event of the request
    std::string difference;  // for kConflict: the first field that differs
  };

  struct Options {
    int connections = 2;
    uint64_t max_commit_events = 20000;
    int probe_interval_ms = 500;
  };

  using StoreFactory = std::function<std::unique_ptr<EventStore>()>;

  // `spool` may be null (then a database outage answers kUnavailable).
  Writer(Options options, StoreFactory factory, Spool* spool, IngestMetrics* metrics);
  ~Writer();

  // Blocks until `events` are durable or refused. Events must be complete
  // (id and api_key_id set).
  Result Submit(std::vector<UsageEvent> events);

  // Stops taking new work, finishes what is queued, joins the threads.
  void Stop();

  // True while events can be made durable: the database is up, or the spool
  // has room.
  bool Ready() const;
  bool database_up() const { return db_up_.load(); }

 private:
  using Commit = GroupCommit<std::vector<UsageEvent>, Result>;
  using Batch = Commit::Batch;

  void StoreBatch(EventStore& store, Batch& batch);
  // Appends the batch's events to the spool; sets each result.
  void SpoolBatch(Batch& batch);
  void MarkDatabase(bool up);
  void UpdateGauges();

  // The replay thread: moves sealed spool segments into the database.
  void ReplayLoop();
  // Replays the oldest sealed segment when the database is up (probing it
  // when it was down); false when there was nothing to do (then wait).
  bool ReplayStep(EventStore& store);
  // Stores the segment's events in chunks of max_commit_events; false when
  // the database failed before all were stored (the segment is kept).
  bool ReplayEvents(EventStore& store, const std::vector<UsageEvent>& events);
  // One chunk, each event on its own; when the chunk is refused, event by
  // event so that every event that can be stored is.
  StoreResult InsertForReplay(EventStore& store, const std::vector<const UsageEvent*>& chunk);
  // Counts what became of a stored chunk and keeps its conflicting events
  // (connector_usage_conflicts); false when they could not be kept.
  bool SettleReplayed(EventStore& store, const std::vector<const UsageEvent*>& chunk,
                      const StoreResult& r);

  const Options options_;
  StoreFactory factory_;
  Spool* const spool_;
  IngestMetrics* const metrics_;

  std::atomic<bool> db_up_{true};
  std::atomic<bool> spool_full_{false};  // the last spool append was refused as full
  std::atomic<bool> replay_stop_{false};
  std::mutex replay_mu_;
  std::condition_variable replay_cv_;
  std::thread replay_thread_;
  // Last: its writer threads use the members above.
  Commit commit_;
};

}  // namespace bpmc::ingestion
