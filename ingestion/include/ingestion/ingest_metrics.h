#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/exposition.h"
#include "ingestion/event.h"

namespace bpmc::ingestion {

// The exporter's Prometheus metrics: the seed's connector_* families (counted
// once per event newly stored in PostgreSQL) and the bpmc_exporter_* self
// metrics. Counters are per process; PostgreSQL holds the truth.
//
// make_account_id is never a label. The number of (connector, operation)
// label sets is capped: past `max_label_sets`, new operations are reported as
// operation="other" (and new error types as error_type="other"), and
// bpmc_exporter_label_overflow_total counts each event so folded.
//
// The three connector_* families hold one series per label set (17 per
// connector x operation, tens of thousands at a raised cap), so they are not
// prometheus-cpp families: a flat table of counters and fixed histogram
// buckets per label set, its label text stored once, escaped, and written
// straight into the /metrics stream by AppendExposition (README.md, "Metrics":
// what a label set costs). The low-cardinality bpmc_exporter_* families stay
// in the registry and are written around them, in the order and format
// prometheus-cpp's TextSerializer gives (tests/ingestion/ingest_metrics_test.cpp
// compares the two).
//
// Thread-safe.
class IngestMetrics {
 public:
  IngestMetrics(std::shared_ptr<prometheus::Registry> registry, uint64_t max_label_sets);

  // An event that was newly stored (not a duplicate).
  void RecordStored(const UsageEvent& event);
  void RecordDuplicates(uint64_t n) { duplicates_.Increment(static_cast<double>(n)); }

  // One HTTP request finished with `code` on `route` (a fixed route name).
  void RecordRequest(const std::string& route, int code);

  void ObserveCommit(size_t events, double seconds);
  void SetQueueDepth(double events) { queue_depth_.Set(events); }
  void SetSpoolBacklog(uint64_t records, uint64_t bytes) {
    spool_records_.Set(static_cast<double>(records));
    spool_bytes_.Set(static_cast<double>(bytes));
  }
  void SetDatabaseUp(bool up) { database_up_.Set(up ? 1 : 0); }

  // Failures the exporter survived, by reason ("connect", "commit",
  // "rejected", "spool_io", "spool_full", "replay_rejected", "key_refresh",
  // "replay_event_id_conflict": a spooled event whose id names a different
  // stored event, kept in connector_usage_conflicts).
  void CountFailure(const std::string& reason);
  void CountSpooled(uint64_t n) { spooled_.Increment(static_cast<double>(n)); }
  void CountReplayed(uint64_t n) { replayed_.Increment(static_cast<double>(n)); }

  prometheus::Registry& registry() { return *registry_; }

  // Appends the whole /metrics body: the connector_* families and the
  // registry's. Safe while events are recorded; a series created meanwhile may
  // be left out of this answer, and each histogram's _count is the sum of the
  // buckets it writes (so +Inf and _count agree even mid-update).
  void AppendExposition(http::ExpositionSink& out) const;
  std::string Exposition() const;  // the same, as one string (tests)

  // Upper bounds of connector_operation_duration_seconds (seconds; +Inf follows).
  static constexpr std::array<double, 12> kDurationBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                             0.5,   1,    2.5,   5,    10,  30};

 private:
  // One connector x operation label set. Written only under mu_ (so a
  // relaxed load + store is an increment); read without it by the renderer.
  struct OperationSeries {
    std::string operation_label;  // the operation, or "other"
    std::string labels;           // connector="…",operation="…", escaped
    std::atomic<uint64_t> success{0};
    std::atomic<uint64_t> error{0};
    std::array<std::atomic<uint64_t>, kDurationBounds.size() + 1> buckets{};  // not cumulative
    std::atomic<uint64_t> sum_bits{0};  // the sum of the durations (a double's bits)
  };
  struct ErrorSeries {
    std::string labels;  // connector="…",error_type="…",operation="…", escaped
    std::atomic<uint64_t> count{0};
  };
  OperationSeries& SeriesFor(const std::string& connector, const std::string& operation);
  ErrorSeries& ErrorCounter(const std::string& connector, const std::string& operation,
                            const std::string& error_type);

  std::shared_ptr<prometheus::Registry> registry_;
  const uint64_t max_label_sets_;

  prometheus::Family<prometheus::Counter>& requests_family_;
  prometheus::Family<prometheus::Counter>& failures_family_;
  prometheus::Family<prometheus::Counter>& overflow_family_;
  prometheus::Histogram& batch_size_;
  prometheus::Histogram& commit_seconds_;
  prometheus::Gauge& queue_depth_;
  prometheus::Gauge& spool_records_;
  prometheus::Gauge& spool_bytes_;
  prometheus::Gauge& database_up_;
  prometheus::Counter& duplicates_;
  prometheus::Counter& spooled_;
  prometheus::Counter& replayed_;
  prometheus::Counter& overflow_operations_;
  prometheus::Counter& overflow_errors_;

  // guards operations_, errors_, failures_, the series' values and the deques' growth
  mutable std::mutex mu_;
  std::mutex requests_mu_;                        // guards requests_
  std::deque<OperationSeries> operation_series_;  // in creation order; addresses are stable
  std::deque<ErrorSeries> error_series_;
  std::unordered_map<std::string, OperationSeries*> operations_;    // key: connector \0 operation
  std::unordered_map<std::string, ErrorSeries*> errors_;            // connector \0 op \0 type
  std::unordered_map<std::string, prometheus::Counter*> requests_;  // route \0 code
  std::unordered_map<std::string, prometheus::Counter*> failures_;
};

}  // namespace bpmc::ingestion
