// The writer's group commit with event ids, against a fake EventStore: a
// request refused with 409 does not fail the requests committed with it, and
// only newly stored events are counted.
#include "ingestion/writer.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ingestion/event_ids.h"
#include "ingestion/ingest_metrics.h"
#include "ingestion/store.h"

namespace bpmc::ingestion {
namespace {

UsageEvent Event(const std::string& id, const std::string& operation = "getContact") {
  UsageEvent e;
  e.id = id;
  e.api_key_id = "11111111-1111-4111-8111-111111111111";
  e.connector = "crm-connector";
  e.operation = operation;
  e.make_account_id = "1";
  e.timestamp_us = 1'764'000'000'000'000;
  return e;
}

// What the fake store has seen and holds; shared with the test.
struct FakeState {
  std::mutex mu;
  std::condition_variable cv;
  bool gate_open = false;  // the first Insert waits for it
  int calls = 0;
  std::vector<std::vector<size_t>> group_ends;  // per Insert call
  StoredEvents stored;
};

// Decides with PlanEventIds against `stored`, as the PostgreSQL store does,
// and stores the new events.
class FakeStore final : public EventStore {
 public:
  explicit FakeStore(FakeState* state) : state_(state) {}
  StoreResult Insert(const std::vector<const UsageEvent*>& events,
                     const std::vector<size_t>& group_ends) override {
    std::unique_lock<std::mutex> lock(state_->mu);
    if (++state_->calls == 1) state_->cv.wait(lock, [&] { return state_->gate_open; });
    state_->group_ends.push_back(group_ends);
    IdPlan plan = PlanEventIds(events, group_ends, state_->stored);
    StoreResult r;
    r.inserted.assign(events.size(), false);
    for (size_t i = 0; i < events.size(); ++i) {
      if (plan.verdicts[i] != IdVerdict::kNew) continue;
      r.inserted[i] = true;
      state_->stored[events[i]->id] = *events[i];
    }
    r.verdicts = std::move(plan.verdicts);
    r.difference = std::move(plan.difference);
    return r;
  }
  bool Quarantine(const std::vector<const UsageEvent*>&, std::string*) override { return true; }
  bool Probe() override { return true; }

 private:
  FakeState* state_;
};

double Value(prometheus::Registry& registry, const std::string& name) {
  double sum = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) sum += m.counter.value + m.gauge.value;
  }
  return sum;
}

TEST(WriterTest, AConflictRefusesOnlyItsRequestInAGroupCommit) {
  auto registry = std::make_shared<prometheus::Registry>();
  IngestMetrics metrics(registry, 100);
  FakeState state;
  state.stored["00000000-0000-4000-8000-000000000009"] =
      Event("00000000-0000-4000-8000-000000000009");
  Writer::Options options;
  options.connections = 1;
  Writer writer(
      options, [&] { return std::make_unique<FakeStore>(&state); }, nullptr, &metrics);

  std::vector<Writer::Result> results(4);
  std::vector<std::thread> threads;
  // Request 0 holds the only writer thread in its (gated) commit...
  threads.emplace_back(
      [&] { results[0] = writer.Submit({Event("00000000-0000-4000-8000-000000000001")}); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto wait_for = [&](const std::function<bool()>& done) {
    while (!done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return done();
  };
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard<std::mutex> lock(state.mu);
    return state.calls == 1;
  }));
  // ... while three more queue up and are then committed together: one reuses
  // a stored id for another operation, one is a batch of two new events, one
  // repeats the stored event.
  // Each is queued before the next starts, so the group's order is fixed.
  auto queued = [&](double depth) {
    return wait_for([&] { return Value(*registry, "bpmc_exporter_queue_depth_events") == depth; });
  };
  threads.emplace_back([&] {
    results[1] = writer.Submit({Event("00000000-0000-4000-8000-000000000009", "listDeals")});
  });
  ASSERT_TRUE(queued(1));
  threads.emplace_back([&] {
    results[2] = writer.Submit({Event("00000000-0000-4000-8000-000000000002"),
                                Event("00000000-0000-4000-8000-000000000003")});
  });
  ASSERT_TRUE(queued(3));
  threads.emplace_back(
      [&] { results[3] = writer.Submit({Event("00000000-0000-4000-8000-000000000009")}); });
  ASSERT_TRUE(queued(4));
  {
    std::lock_guard<std::mutex> lock(state.mu);
    state.gate_open = true;
  }
  state.cv.notify_all();
  for (auto& t : threads) t.join();

  ASSERT_EQ(state.group_ends.size(), 2u);
  EXPECT_EQ(state.group_ends[1], (std::vector<size_t>{1, 3, 4}));  // one commit, three requests
  EXPECT_EQ(results[0].outcome, Writer::Outcome::kStored);
  EXPECT_EQ(results[1].outcome, Writer::Outcome::kConflict);
  EXPECT_EQ(results[1].event_index, 0u);
  EXPECT_EQ(results[1].difference, "operation");
  EXPECT_EQ(results[2].outcome, Writer::Outcome::kStored);
  EXPECT_EQ(results[3].outcome, Writer::Outcome::kStored);
  // Counted: the three new events, not the conflict nor the duplicate.
  EXPECT_EQ(Value(*registry, "connector_operations_total"), 3);
  EXPECT_EQ(Value(*registry, "bpmc_exporter_duplicate_events_total"), 1);
  writer.Stop();
}

}  // namespace
}  // namespace bpmc::ingestion
