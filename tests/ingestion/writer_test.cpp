// The writer's paths against an in-memory EventStore (ingestion_testing):
// the group commit with event ids (a request refused with 409 does not fail
// the requests committed with it), the split of a refused group, and the
// spool while the database is down with its replay -- in order, once, event
// by event when a chunk is refused, conflicts kept. Only newly stored events
// are counted.
#include "ingestion/writer.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/testing/temp_dir.h"
#include "ingestion/ingest_metrics.h"
#include "ingestion/spool.h"
#include "ingestion_testing/fake_event_store.h"

namespace bpmc::ingestion {
namespace {

using testing::FakeEventDatabase;
using Kind = StoreResult::Kind;

std::string Id(int n) {
  std::string tail = std::to_string(n);
  return "00000000-0000-4000-8000-" + std::string(12 - tail.size(), '0') + tail;
}

UsageEvent Event(int n, const std::string& operation = "getContact") {
  UsageEvent e;
  e.id = Id(n);
  e.api_key_id = "11111111-1111-4111-8111-111111111111";
  e.connector = "crm-connector";
  e.operation = operation;
  e.make_account_id = "1";
  e.timestamp_us = 1'764'000'000'000'000;
  return e;
}

// Polls `done` until it holds or 10 s have passed.
bool Eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return done();
}

// The sum of a family's counters and gauges; with `reason`, of that reason's.
double Value(prometheus::Registry& registry, const std::string& name,
             const std::string& reason = "") {
  double sum = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      bool match = reason.empty();
      for (const auto& label : m.label) match = match || label.value == reason;
      if (match) sum += m.counter.value + m.gauge.value;
    }
  }
  return sum;
}

class WriterTest : public ::testing::Test {
 protected:
  ~WriterTest() override {
    writer_.reset();
    spool_.reset();
    dir_.reset();
  }

  // A writer on db_ (one writer thread unless told), with a spool when asked.
  Writer& Start(bool with_spool, uint64_t max_commit_events = 20000, int connections = 1) {
    if (with_spool) {
      dir_ = std::make_unique<bpmc::testing::TempDir>("bpmc-writer");
      std::string error;
      spool_ = Spool::Open(dir_->File("spool"), uint64_t{1} << 30, &error);
      EXPECT_NE(spool_, nullptr) << error;
    }
    Writer::Options options;
    options.connections = connections;
    options.max_commit_events = max_commit_events;
    options.probe_interval_ms = 5;
    writer_ = std::make_unique<Writer>(
        options, [this] { return db_.NewStore(); }, spool_.get(), &metrics_);
    return *writer_;
  }

  // Queues each request on its own thread while the database holds the first
  // commit, so that the rest form one group, in this order.
  std::vector<Writer::Result> SubmitAsOneGroup(std::vector<std::vector<UsageEvent>> requests) {
    std::vector<Writer::Result> results(requests.size());
    std::vector<std::thread> threads;
    db_.Hold();
    double queued = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      if (i > 0) queued += static_cast<double>(requests[i].size());
      threads.emplace_back([&, i] { results[i] = writer_->Submit(requests[i]); });
      // The first holds the only writer thread in its commit; each other is
      // queued before the next starts.
      EXPECT_TRUE(Eventually([&] {
        return i == 0 ? db_.held() == 1
                      : Value(*registry_, "bpmc_exporter_queue_depth_events") == queued;
      }));
    }
    db_.Release();
    for (auto& t : threads) t.join();
    return results;
  }

  double Metric(const std::string& name, const std::string& reason = "") {
    // The connector_* families are written by IngestMetrics, not kept in the
    // registry (issue 17 §5): read them from its exposition.
    if (name.rfind("connector_", 0) != 0) return Value(*registry_, name, reason);
    double sum = 0;
    std::istringstream in(metrics_.Exposition());
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
      if (!reason.empty() && line.find("=\"" + reason + "\"") == std::string::npos) continue;
      sum += std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    }
    return sum;
  }

  FakeEventDatabase db_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  IngestMetrics metrics_{registry_, 100};
  std::unique_ptr<bpmc::testing::TempDir> dir_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Writer> writer_;
};

TEST_F(WriterTest, AConflictRefusesOnlyItsRequestInAGroupCommit) {
  db_.Put(Event(9));
  Start(/*with_spool=*/false);
  // After the first: one reuses a stored id for another operation, one is a
  // batch of two new events, one repeats the stored event.
  std::vector<Writer::Result> results =
      SubmitAsOneGroup({{Event(1)}, {Event(9, "listDeals")}, {Event(2), Event(3)}, {Event(9)}});

  const auto inserts = db_.Inserts();
  ASSERT_EQ(inserts.size(), 2u);
  EXPECT_EQ(inserts[1].group_ends, (std::vector<size_t>{1, 3, 4}));  // one commit, 3 requests
  EXPECT_EQ(results[0].outcome, Writer::Outcome::kStored);
  EXPECT_EQ(results[1].outcome, Writer::Outcome::kConflict);
  EXPECT_EQ(results[1].event_index, 0u);
  EXPECT_EQ(results[1].difference, "operation");
  EXPECT_EQ(results[2].outcome, Writer::Outcome::kStored);
  EXPECT_EQ(results[3].outcome, Writer::Outcome::kStored);
  EXPECT_EQ(db_.StoredIds(), (std::vector<std::string>{Id(9), Id(1), Id(2), Id(3)}));
  // Counted: the three new events, not the conflict nor the duplicate.
  EXPECT_EQ(Metric("connector_operations_total"), 3);
  EXPECT_EQ(Metric("bpmc_exporter_duplicate_events_total"), 1);
}

TEST_F(WriterTest, ARefusedGroupIsSplitSoOnlyTheBadRequestIsRefused) {
  db_.Refuse(Id(5));
  Start(/*with_spool=*/false);
  std::vector<Writer::Result> results =
      SubmitAsOneGroup({{Event(1)}, {Event(2)}, {Event(4), Event(5)}, {Event(6)}});

  EXPECT_EQ(results[0].outcome, Writer::Outcome::kStored);
  EXPECT_EQ(results[1].outcome, Writer::Outcome::kStored);
  EXPECT_EQ(results[2].outcome, Writer::Outcome::kRejected);
  EXPECT_EQ(results[2].sqlstate, "23503");
  EXPECT_EQ(results[3].outcome, Writer::Outcome::kStored);
  // The group was refused whole, then each request went alone.
  const auto inserts = db_.Inserts();
  ASSERT_EQ(inserts.size(), 5u);
  EXPECT_EQ(inserts[1].ids, (std::vector<std::string>{Id(2), Id(4), Id(5), Id(6)}));
  EXPECT_EQ(inserts[1].kind, Kind::kRejected);
  EXPECT_EQ(inserts[2].ids, (std::vector<std::string>{Id(2)}));
  EXPECT_EQ(inserts[3].ids, (std::vector<std::string>{Id(4), Id(5)}));
  EXPECT_EQ(inserts[3].kind, Kind::kRejected);
  EXPECT_EQ(inserts[4].ids, (std::vector<std::string>{Id(6)}));
  EXPECT_EQ(db_.StoredIds(), (std::vector<std::string>{Id(1), Id(2), Id(6)}));
  EXPECT_EQ(Metric("bpmc_exporter_failures_total", "rejected"), 1);
  EXPECT_EQ(Metric("connector_operations_total"), 3);
  EXPECT_TRUE(writer_->database_up());  // a refusal is not an outage
}

TEST_F(WriterTest, WhileTheDatabaseIsDownEventsAreSpooledThenReplayedInOrderOnce) {
  db_.SetDown(true);
  Writer& writer = Start(/*with_spool=*/true, /*max_commit_events=*/2);
  // The first fails its commit and is spooled; the second goes to the spool
  // straight away. Both are acknowledged.
  EXPECT_EQ(writer.Submit({Event(1), Event(2)}).outcome, Writer::Outcome::kStored);
  EXPECT_FALSE(writer.database_up());
  EXPECT_EQ(writer.Submit({Event(3)}).outcome, Writer::Outcome::kStored);
  EXPECT_EQ(db_.Inserts().size(), 1u);
  EXPECT_EQ(spool_->PendingRecords(), 3u);
  EXPECT_EQ(Metric("bpmc_exporter_spooled_events_total"), 3);
  EXPECT_TRUE(writer.Ready());

  // The database comes back and fails again after the first chunk of two:
  // the segment is kept whole...
  db_.GoDownAfter(1);
  db_.SetDown(false);
  ASSERT_TRUE(Eventually([&] { return db_.Inserts().size() == 3; }));
  EXPECT_EQ(db_.Inserts()[1].ids, (std::vector<std::string>{Id(1), Id(2)}));
  EXPECT_TRUE(db_.Inserts()[1].group_ends.empty());  // each event on its own
  EXPECT_EQ(db_.Inserts()[2].kind, Kind::kUnavailable);
  EXPECT_EQ(spool_->PendingRecords(), 3u);
  // ... and replayed from its start once the database is back: the first two
  // are recognised as stored, nothing is stored twice.
  db_.SetDown(false);
  ASSERT_TRUE(Eventually([&] { return spool_->PendingRecords() == 0; }));
  EXPECT_EQ(db_.StoredIds(), (std::vector<std::string>{Id(1), Id(2), Id(3)}));
  EXPECT_TRUE(writer.database_up());
  EXPECT_EQ(Metric("connector_operations_total"), 3);
  EXPECT_EQ(Metric("bpmc_exporter_replayed_events_total"), 3);
  EXPECT_EQ(Metric("bpmc_exporter_duplicate_events_total"), 2);
  // Stored directly again.
  EXPECT_EQ(writer.Submit({Event(4)}).outcome, Writer::Outcome::kStored);
  EXPECT_EQ(db_.StoredIds().back(), Id(4));
}

TEST_F(WriterTest, AReplayedChunkTheDatabaseRefusesIsStoredEventByEvent) {
  db_.Put(Event(1));
  db_.Refuse(Id(3));
  db_.SetDown(true);
  Writer& writer = Start(/*with_spool=*/true);
  EXPECT_EQ(writer.Submit({Event(1), Event(2), Event(3), Event(4)}).outcome,
            Writer::Outcome::kStored);
  db_.SetDown(false);
  ASSERT_TRUE(Eventually([&] { return spool_->PendingRecords() == 0; }));

  const auto inserts = db_.Inserts();
  ASSERT_EQ(inserts.size(), 6u);
  EXPECT_EQ(inserts[1].kind, Kind::kRejected);  // the chunk
  for (size_t i = 2; i < 6; ++i) EXPECT_EQ(inserts[i].ids, (std::vector<std::string>{Id(i - 1)}));
  EXPECT_EQ(inserts[4].kind, Kind::kRejected);
  // Every event that can be stored is, in order; the refused one is counted.
  EXPECT_EQ(db_.StoredIds(), (std::vector<std::string>{Id(1), Id(2), Id(4)}));
  EXPECT_EQ(Metric("bpmc_exporter_failures_total", "replay_rejected"), 1);
  EXPECT_EQ(Metric("bpmc_exporter_replayed_events_total"), 2);
  EXPECT_EQ(Metric("bpmc_exporter_duplicate_events_total"), 1);
  EXPECT_EQ(Metric("connector_operations_total"), 2);
}

TEST_F(WriterTest, ASpooledEventWhoseIdNamesAnotherEventIsKeptAsAConflict) {
  db_.Put(Event(9));
  db_.SetDown(true);
  Writer& writer = Start(/*with_spool=*/true);
  // Acknowledged while the database cannot be asked.
  EXPECT_EQ(writer.Submit({Event(9, "listDeals"), Event(1)}).outcome, Writer::Outcome::kStored);
  db_.SetDown(false);
  ASSERT_TRUE(Eventually([&] { return spool_->PendingRecords() == 0; }));

  EXPECT_EQ(db_.StoredIds(), (std::vector<std::string>{Id(9), Id(1)}));
  ASSERT_EQ(db_.Quarantined().size(), 1u);
  EXPECT_EQ(db_.Quarantined()[0].operation, "listDeals");
  EXPECT_EQ(Metric("bpmc_exporter_failures_total", "replay_event_id_conflict"), 1);
  EXPECT_EQ(Metric("connector_operations_total"), 1);
}

}  // namespace
}  // namespace bpmc::ingestion
