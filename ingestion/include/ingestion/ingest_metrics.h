#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

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

 private:
  struct OperationSeries {
    prometheus::Counter* success;
    prometheus::Counter* error;
    prometheus::Histogram* duration;
    std::string operation_label;  // the operation, or "other"
  };
  const OperationSeries& SeriesFor(const std::string& connector, const std::string& operation);
  prometheus::Counter& ErrorCounter(const std::string& connector, const std::string& operation,
                                    const std::string& error_type);

  std::shared_ptr<prometheus::Registry> registry_;
  const uint64_t max_label_sets_;

  prometheus::Family<prometheus::Counter>& operations_family_;
  prometheus::Family<prometheus::Histogram>& duration_family_;
  prometheus::Family<prometheus::Counter>& errors_family_;
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

  std::mutex mu_;           // guards operations_, errors_, failures_
  std::mutex requests_mu_;  // guards requests_
  std::unordered_map<std::string, OperationSeries> operations_;     // key: connector \0 operation
  std::unordered_map<std::string, prometheus::Counter*> errors_;    // connector \0 op \0 type
  std::unordered_map<std::string, prometheus::Counter*> requests_;  // route \0 code
  std::unordered_map<std::string, prometheus::Counter*> failures_;
};

}  // namespace bpmc::ingestion
