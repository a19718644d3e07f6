#include "ingestion_testing/fake_event_store.h"

namespace bpmc::ingestion::testing {

class FakeEventDatabase::Store final : public EventStore {
 public:
  explicit Store(FakeEventDatabase* db) : db_(db) {}
  StoreResult Insert(const std::vector<const UsageEvent*>& events,
                     const std::vector<size_t>& group_ends) override {
    return db_->Insert(events, group_ends);
  }
  bool Quarantine(const std::vector<const UsageEvent*>& events, std::string* error) override {
    return db_->Quarantine(events, error);
  }
  bool Probe() override { return db_->Probe(); }

 private:
  FakeEventDatabase* const db_;
};

std::unique_ptr<EventStore> FakeEventDatabase::NewStore() { return std::make_unique<Store>(this); }

void FakeEventDatabase::Put(const UsageEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  stored_[event.id] = event;
  stored_ids_.push_back(event.id);
}

void FakeEventDatabase::SetDown(bool down) {
  std::lock_guard<std::mutex> lock(mu_);
  down_ = down;
}

void FakeEventDatabase::GoDownAfter(int inserts) {
  std::lock_guard<std::mutex> lock(mu_);
  down_after_ = inserts;
}

void FakeEventDatabase::Refuse(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  refused_.insert(id);
}

void FakeEventDatabase::Hold() {
  std::lock_guard<std::mutex> lock(mu_);
  held_ = true;
}

void FakeEventDatabase::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
  }
  release_cv_.notify_all();
}

StoreResult FakeEventDatabase::Insert(const std::vector<const UsageEvent*>& events,
                                      const std::vector<size_t>& group_ends) {
  std::unique_lock<std::mutex> lock(mu_);
  ++waiting_;
  release_cv_.wait(lock, [&] { return !held_; });
  --waiting_;
  StoreResult r;
  for (const UsageEvent* e : events) {
    if (refused_.count(e->id) == 0) continue;
    r.kind = StoreResult::Kind::kRejected;
    r.sqlstate = "23503";
    r.error = "the fake refuses event " + e->id;
  }
  if (down_) {
    r.kind = StoreResult::Kind::kUnavailable;
    r.error = "the fake database is down";
  }
  InsertCall call{{}, group_ends, r.kind};
  for (const UsageEvent* e : events) call.ids.push_back(e->id);
  inserts_.push_back(std::move(call));
  if (r.kind != StoreResult::Kind::kOk) return r;

  IdPlan plan = PlanEventIds(events, group_ends, stored_);
  r.inserted.assign(events.size(), false);
  for (size_t i = 0; i < events.size(); ++i) {
    if (plan.verdicts[i] != IdVerdict::kNew) continue;
    r.inserted[i] = true;
    stored_[events[i]->id] = *events[i];
    stored_ids_.push_back(events[i]->id);
  }
  r.verdicts = std::move(plan.verdicts);
  r.difference = std::move(plan.difference);
  if (down_after_ > 0 && --down_after_ == 0) down_ = true;
  return r;
}

bool FakeEventDatabase::Quarantine(const std::vector<const UsageEvent*>& events,
                                   std::string* error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (down_) {
    *error = "the fake database is down";
    return false;
  }
  for (const UsageEvent* e : events) {
    bool kept = false;
    for (const UsageEvent& q : quarantined_) kept = kept || EventDifference(q, *e).empty();
    if (!kept) quarantined_.push_back(*e);
  }
  return true;
}

bool FakeEventDatabase::Probe() const { return !down(); }

std::vector<std::string> FakeEventDatabase::StoredIds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stored_ids_;
}

StoredEvents FakeEventDatabase::Stored() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stored_;
}

std::vector<FakeEventDatabase::InsertCall> FakeEventDatabase::Inserts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return inserts_;
}

std::vector<UsageEvent> FakeEventDatabase::Quarantined() const {
  std::lock_guard<std::mutex> lock(mu_);
  return quarantined_;
}

int FakeEventDatabase::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_;
}

bool FakeEventDatabase::down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return down_;
}

}  // namespace bpmc::ingestion::testing
