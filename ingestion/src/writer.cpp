#include "ingestion/writer.h"

#include <spdlog/spdlog.h>

#include <chrono>

// Database errors may quote event values ("Failing row contains ..."): they
// are logged through ScrubPii, so no e-mail address or phone number is logged.
#include "common/pii.h"

namespace bpmc::ingestion {
namespace {
double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Writer::Writer(Options options, StoreFactory factory, Spool* spool, IngestMetrics* metrics)
    : options_(options), factory_(std::move(factory)), spool_(spool), metrics_(metrics) {
  metrics_->SetDatabaseUp(true);
  for (int i = 0; i < options_.connections; ++i) threads_.emplace_back([this] { WriterLoop(); });
  replay_thread_ = std::thread([this] { ReplayLoop(); });
}

Writer::~Writer() { Stop(); }

Writer::Result Writer::Submit(std::vector<UsageEvent> events) {
  Pending p;
  p.events = std::move(events);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Result{Outcome::kShuttingDown, "", 0, ""};
    queue_.push_back(&p);
    queued_events_ += p.events.size();
    metrics_->SetQueueDepth(static_cast<double>(queued_events_));
  }
  work_cv_.notify_one();
  std::unique_lock<std::mutex> lock(p.done_mu);
  p.done_cv.wait(lock, [&] { return p.done; });
  return p.result;
}

void Writer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
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

void Writer::WriterLoop() {
  std::unique_ptr<EventStore> store = factory_();
  for (;;) {
    std::vector<Pending*> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      uint64_t n = 0;
      while (!queue_.empty() &&
             (batch.empty() || n + queue_.front()->events.size() <= options_.max_commit_events)) {
        n += queue_.front()->events.size();
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
      queued_events_ -= n;
      metrics_->SetQueueDepth(static_cast<double>(queued_events_));
    }
    if (db_up_.load()) {
      StoreBatch(*store, batch);
    } else {
      SpoolBatch(batch);
    }
    Complete(batch);
  }
}

void Writer::Complete(std::vector<Pending*>& batch) {
  // Notified under done_mu: the submitter owns *p and may destroy it as soon
  // as it sees done, so nothing may touch p after the lock is released.
  for (Pending* p : batch) {
    std::lock_guard<std::mutex> lock(p->done_mu);
    p->done = true;
    p->done_cv.notify_one();
  }
}

void Writer::StoreBatch(EventStore& store, std::vector<Pending*>& batch) {
  std::vector<const UsageEvent*> all;
  std::vector<size_t> group_ends;  // one request per Pending
  for (Pending* p : batch) {
    for (const UsageEvent& e : p->events) all.push_back(&e);
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
      for (Pending* p : batch) {
        p->result = Result{Outcome::kStored, "", 0, ""};
        for (size_t k = 0; k < p->events.size() && !r.verdicts.empty(); ++k) {
          if (r.verdicts[first + k] != IdVerdict::kConflict) continue;
          p->result.outcome = Outcome::kConflict;
          p->result.event_index = k;
          p->result.difference = r.difference[first + k];
          break;
        }
        first += p->events.size();
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
        for (Pending* p : batch) {
          std::vector<Pending*> one{p};
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

void Writer::SpoolBatch(std::vector<Pending*>& batch) {
  if (spool_ == nullptr) {
    for (Pending* p : batch) p->result = Result{Outcome::kUnavailable, "", 0, ""};
    return;
  }
  std::vector<std::string> records;
  for (Pending* p : batch)
    for (const UsageEvent& e : p->events) records.push_back(EncodeEventRecord(e));
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
  for (Pending* p : batch) p->result = Result{outcome, "", 0, ""};
  UpdateGauges();
  replay_cv_.notify_all();
}

void Writer::ReplayLoop() {
  std::unique_ptr<EventStore> store = factory_();
  const auto interval = std::chrono::milliseconds(options_.probe_interval_ms);
  auto wait = [&] {
    std::unique_lock<std::mutex> lock(replay_mu_);
    replay_cv_.wait_for(lock, interval, [&] { return replay_stop_.load(); });
  };
  while (!replay_stop_.load()) {
    UpdateGauges();
    if (!db_up_.load()) {
      if (!store->Probe()) {
        wait();
        continue;
      }
      MarkDatabase(true);
    }
    if (spool_ == nullptr || spool_->PendingRecords() == 0) {
      wait();
      continue;
    }
    spool_->Seal();
    std::optional<Spool::Segment> segment = spool_->OldestSealed();
    if (!segment) {
      wait();
      continue;
    }
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
    bool complete = true;
    for (size_t from = 0; from < events.size() && complete; from += options_.max_commit_events) {
      const size_t to = std::min(events.size(), from + options_.max_commit_events);
      std::vector<const UsageEvent*> chunk;
      for (size_t i = from; i < to; ++i) chunk.push_back(&events[i]);
      StoreResult r = store->Insert(chunk, {});  // each event on its own
      if (r.kind == StoreResult::Kind::kRejected) {
        // Store one by one: keep every event that can be stored.
        r.kind = StoreResult::Kind::kOk;
        r.inserted.assign(chunk.size(), false);
        r.verdicts.assign(chunk.size(), IdVerdict::kDuplicate);
        r.difference.assign(chunk.size(), "");
        for (size_t i = 0; i < chunk.size() && r.kind == StoreResult::Kind::kOk; ++i) {
          StoreResult one = store->Insert({chunk[i]}, {});
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
      }
      if (r.kind != StoreResult::Kind::kOk) {
        metrics_->CountFailure("database_unavailable");
        MarkDatabase(false);
        complete = false;
        break;
      }
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
      if (!conflicts.empty()) {
        // Acknowledged, but its id names a different event: not lost
        // silently. Kept whole in connector_usage_conflicts; the log names
        // only the id and the differing field (no personal data).
        std::string error;
        if (!store->Quarantine(conflicts, &error)) {
          metrics_->CountFailure("database_unavailable");
          spdlog::warn("keeping {} conflicting spooled events failed: {}", conflicts.size(),
                       ScrubPii(error));
          MarkDatabase(false);
          complete = false;
          break;
        }
        for (size_t i = 0; i < conflicts.size(); ++i) {
          metrics_->CountFailure("replay_event_id_conflict");
          spdlog::error(
              "spooled event {} was not stored: its event_id names a different stored event "
              "({} differs); kept in connector_usage_conflicts",
              conflicts[i]->id, differences[i]);
        }
      }
    }
    if (complete) {
      spool_->Release(segment->seq);
      spool_full_ = false;
      spdlog::info("replayed spool segment {} ({} events)", segment->seq, events.size());
    }
  }
}

}  // namespace bpmc::ingestion
