#include "ingestion/writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>

// Database errors may quote event values ("Failing row contains ..."): they
// are logged through ScrubPii, so no e-mail address or phone number is logged.
#include "common/logging.h"
#include "common/pii.h"

namespace bpmc::ingestion {
namespace {
double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Writer::Writer(Options options, StoreFactory factory, Spool* spool, IngestMetrics* metrics)
    : options_(options),
      factory_(std::move(factory)),
      spool_(spool),
      metrics_(metrics),
      commit_(options_.max_commit_events,
              [this](uint64_t events) { metrics_->SetQueueDepth(static_cast<double>(events)); }) {
  metrics_->SetDatabaseUp(true);
  commit_.Start(options_.connections, [this]() -> Commit::Handler {
    SetThreadLogFields({{"component", "ingestion-writer"}});
    std::shared_ptr<EventStore> store = factory_();  // this writer thread's connection
    return [this, store](Batch& batch) {
      if (db_up_.load()) {
        StoreBatch(*store, batch);
      } else {
        SpoolBatch(batch);
      }
    };
  });
  replay_thread_ = std::thread([this] { ReplayLoop(); });
}

Writer::~Writer() { Stop(); }

Writer::Result Writer::Submit(std::vector<UsageEvent> events) {
  const uint64_t n = events.size();
  std::optional<Result> r = commit_.Submit(std::move(events), n);
  if (!r) return Result{Outcome::kShuttingDown, "", 0, ""};
  return std::move(*r);
}

void Writer::Stop() {
  commit_.Stop();
  replay_stop_ = true;
  replay_cv_.notify_all();
  if (replay_thread_.joinable()) replay_thread_.join();
}

bool Writer::Ready() const {
  if (db_up_.load()) return true;
  return spool_ != nullptr && !spool_full_.load();
}

void Writer::MarkDatabase(bool up) {
  const bool was = db_up_.exchange(up);
  if (was == up) return;
  metrics_->SetDatabaseUp(up);
  if (up) {
    spdlog::info("PostgreSQL is reachable again; storing directly");
  } else {
    spdlog::warn("PostgreSQL is unreachable; acknowledging through the spool");
  }
  replay_cv_.notify_all();
}

void Writer::UpdateGauges() {
  if (spool_) metrics_->SetSpoolBacklog(spool_->PendingRecords(), spool_->BytesOnDisk());
}

void Writer::StoreBatch(EventStore& store, Batch& batch) {
  std::vector<const UsageEvent*> all;
  std::vector<size_t> group_ends;  // one request per item
  for (Commit::Item* p : batch) {
    for (const UsageEvent& e : p->job) all.push_back(&e);
    group_ends.push_back(all.size());
  }
  const auto t0 = std::chrono::steady_clock::now();
  StoreResult r = store.Insert(all, group_ends);
  switch (r.kind) {
    case StoreResult::Kind::kOk: {
      metrics_->ObserveCommit(all.size(), SecondsSince(t0));
      uint64_t duplicates = 0;
      for (size_t i = 0; i < all.size(); ++i) {
        if (r.inserted[i]) {
          metrics_->RecordStored(*all[i]);
        } else if (r.verdicts.empty() || r.verdicts[i] == IdVerdict::kDuplicate) {
          ++duplicates;
        }
      }
      if (duplicates) metrics_->RecordDuplicates(duplicates);
      size_t first = 0;
      for (Commit::Item* p : batch) {
        p->result = Result{Outcome::kStored, "", 0, ""};
        for (size_t k = 0; k < p->job.size() && !r.verdicts.empty(); ++k) {
          if (r.verdicts[first + k] != IdVerdict::kConflict) continue;
          p->result.outcome = Outcome::kConflict;
          p->result.event_index = k;
          p->result.difference = r.difference[first + k];
          break;
        }
        first += p->job.size();
      }
      MarkDatabase(true);
      return;
    }
    case StoreResult::Kind::kUnavailable:
      metrics_->CountFailure("database_unavailable");
      spdlog::warn("storing {} events failed: {}", all.size(), ScrubPii(r.error));
      MarkDatabase(false);
      SpoolBatch(batch);
      return;
    case StoreResult::Kind::kRejected:
      if (batch.size() > 1) {
        // One request's data spoiled the shared transaction: store each
        // request on its own so only the bad one is refused.
        for (Commit::Item* p : batch) {
          Batch one{p};
          StoreBatch(store, one);
        }
        return;
      }
      metrics_->CountFailure("rejected");
      spdlog::warn("the database refused {} events (SQLSTATE {}): {}", all.size(), r.sqlstate,
                   ScrubPii(r.error));
      batch[0]->result = Result{Outcome::kRejected, r.sqlstate, 0, ""};
      return;
  }
}

void Writer::SpoolBatch(Batch& batch) {
  if (spool_ == nullptr) {
    for (Commit::Item* p : batch) p->result = Result{Outcome::kUnavailable, "", 0, ""};
    return;
  }
  std::vector<std::string> records;
  for (Commit::Item* p : batch)
    for (const UsageEvent& e : p->job) records.push_back(EncodeEventRecord(e));
  const Spool::AppendResult r = spool_->Append(records);
  Outcome outcome = Outcome::kStored;
  spool_full_ = r == Spool::AppendResult::kFull;
  if (r == Spool::AppendResult::kOk) {
    metrics_->CountSpooled(records.size());
  } else if (r == Spool::AppendResult::kFull) {
    metrics_->CountFailure("spool_full");
    outcome = Outcome::kSpoolFull;
  } else {
    metrics_->CountFailure("spool_io");
    outcome = Outcome::kUnavailable;
  }
  for (Commit::Item* p : batch) p->result = Result{outcome, "", 0, ""};
  UpdateGauges();
  replay_cv_.notify_all();
}

void Writer::ReplayLoop() {
  SetThreadLogFields({{"component", "ingestion-spool-replay"}});
  std::unique_ptr<EventStore> store = factory_();
  const auto interval = std::chrono::milliseconds(options_.probe_interval_ms);
  while (!replay_stop_.load()) {
    UpdateGauges();
    if (ReplayStep(*store)) continue;
    std::unique_lock<std::mutex> lock(replay_mu_);
    replay_cv_.wait_for(lock, interval, [&] { return replay_stop_.load(); });
  }
}

bool Writer::ReplayStep(EventStore& store) {
  if (!db_up_.load()) {
    if (!store.Probe()) return false;
    MarkDatabase(true);
  }
  if (spool_ == nullptr || spool_->PendingRecords() == 0) return false;
  spool_->Seal();
  std::optional<Spool::Segment> segment = spool_->OldestSealed();
  if (!segment) return false;
  std::vector<UsageEvent> events;
  events.reserve(segment->records.size());
  for (const std::string& rec : segment->records) {
    UsageEvent e;
    if (DecodeEventRecord(rec, &e)) {
      events.push_back(std::move(e));
    } else {
      metrics_->CountFailure("spool_corrupt_record");
    }
  }
  if (!ReplayEvents(store, events)) return true;  // kept: replayed again from its start
  spool_->Release(segment->seq);
  spool_full_ = false;
  spdlog::info("replayed spool segment {} ({} events)", segment->seq, events.size());
  return true;
}

bool Writer::ReplayEvents(EventStore& store, const std::vector<UsageEvent>& events) {
  for (size_t from = 0; from < events.size(); from += options_.max_commit_events) {
    const size_t to = std::min(events.size(), from + options_.max_commit_events);
    std::vector<const UsageEvent*> chunk;
    for (size_t i = from; i < to; ++i) chunk.push_back(&events[i]);
    const StoreResult r = InsertForReplay(store, chunk);
    if (r.kind != StoreResult::Kind::kOk) {
      metrics_->CountFailure("database_unavailable");
      MarkDatabase(false);
      return false;
    }
    if (!SettleReplayed(store, chunk, r)) return false;
  }
  return true;
}

StoreResult Writer::InsertForReplay(EventStore& store,
                                    const std::vector<const UsageEvent*>& chunk) {
  StoreResult r = store.Insert(chunk, {});  // each event on its own
  if (r.kind != StoreResult::Kind::kRejected) return r;
  // Store one by one: keep every event that can be stored.
  r.kind = StoreResult::Kind::kOk;
  r.inserted.assign(chunk.size(), false);
  r.verdicts.assign(chunk.size(), IdVerdict::kDuplicate);
  r.difference.assign(chunk.size(), "");
  for (size_t i = 0; i < chunk.size() && r.kind == StoreResult::Kind::kOk; ++i) {
    StoreResult one = store.Insert({chunk[i]}, {});
    if (one.kind == StoreResult::Kind::kOk) {
      r.inserted[i] = one.inserted[0];
      if (one.inserted[0]) r.verdicts[i] = IdVerdict::kNew;
      if (!one.verdicts.empty() && one.verdicts[0] == IdVerdict::kConflict) {
        r.verdicts[i] = IdVerdict::kConflict;
        r.difference[i] = one.difference[0];
      }
    } else if (one.kind == StoreResult::Kind::kRejected) {
      r.verdicts[i] = IdVerdict::kWithdrawn;  // neither stored nor a duplicate
      metrics_->CountFailure("replay_rejected");
      spdlog::error("spooled event {} cannot be stored (SQLSTATE {}): {}", chunk[i]->id,
                    one.sqlstate, ScrubPii(one.error));
    } else {
      r.kind = one.kind;
    }
  }
  return r;
}

bool Writer::SettleReplayed(EventStore& store, const std::vector<const UsageEvent*>& chunk,
                            const StoreResult& r) {
  uint64_t stored = 0, duplicates = 0;
  std::vector<const UsageEvent*> conflicts;
  std::vector<std::string> differences;
  for (size_t i = 0; i < chunk.size(); ++i) {
    if (r.inserted[i]) {
      metrics_->RecordStored(*chunk[i]);
      ++stored;
    } else if (r.verdicts.empty() || r.verdicts[i] == IdVerdict::kDuplicate) {
      ++duplicates;
    } else if (r.verdicts[i] == IdVerdict::kConflict) {
      conflicts.push_back(chunk[i]);
      differences.push_back(r.difference[i]);
    }
  }
  metrics_->CountReplayed(stored);
  if (duplicates) metrics_->RecordDuplicates(duplicates);
  if (conflicts.empty()) return true;
  // Acknowledged, but its id names a different event: not lost silently.
  // Kept whole in connector_usage_conflicts; the log names only the id and
  // the differing field (no personal data).
  std::string error;
  if (!store.Quarantine(conflicts, &error)) {
    metrics_->CountFailure("database_unavailable");
    spdlog::warn("keeping {} conflicting spooled events failed: {}", conflicts.size(),
                 ScrubPii(error));
    MarkDatabase(false);
    return false;
  }
  for (size_t i = 0; i < conflicts.size(); ++i) {
    metrics_->CountFailure("replay_event_id_conflict");
    spdlog::error(
        "spooled event {} was not stored: its event_id names a different stored event "
        "({} differs); kept in connector_usage_conflicts",
        conflicts[i]->id, differences[i]);
  }
  return true;
}

}  // namespace bpmc::ingestion
