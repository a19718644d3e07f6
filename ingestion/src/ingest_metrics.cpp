#include "ingestion/ingest_metrics.h"

#include <prometheus/counter.h>

namespace bpmc::ingestion {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// 5 ms .. 30 s, as the issue asks; roughly x2-x2.5 steps.
const prometheus::Histogram::BucketBoundaries kDurationBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
const prometheus::Histogram::BucketBoundaries kBatchBuckets = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000};
const prometheus::Histogram::BucketBoundaries kCommitBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

std::string Key(std::initializer_list<std::string_view> parts) {
  std::string k;
  for (auto p : parts) {
    k.append(p);
    k.push_back('\0');
  }
  return k;
}

}  // namespace

IngestMetrics::IngestMetrics(std::shared_ptr<prometheus::Registry> registry,
                             uint64_t max_label_sets)
    : registry_(std::move(registry)),
      max_label_sets_(max_label_sets),
      operations_family_(BuildCounter()
                             .Name("connector_operations_total")
                             .Help("Connector operations stored, by outcome.")
                             .Register(*registry_)),
      duration_family_(
          BuildHistogram()
              .Name("connector_operation_duration_seconds")
              .Help("Execution time of connector operations that reported duration_ms.")
              .Register(*registry_)),
      errors_family_(BuildCounter()
                         .Name("connector_errors_total")
                         .Help("Connector operations stored with status=error, by error type.")
                         .Register(*registry_)),
      requests_family_(BuildCounter()
                           .Name("bpmc_exporter_http_requests_total")
                           .Help("HTTP requests answered, by route and status code.")
                           .Register(*registry_)),
      failures_family_(BuildCounter()
                           .Name("bpmc_exporter_failures_total")
                           .Help("Failures the exporter survived, by reason.")
                           .Register(*registry_)),
      overflow_family_(
          BuildCounter()
              .Name("bpmc_exporter_label_overflow_total")
              .Help("Events whose labels were folded into \"other\" by the label-set cap.")
              .Register(*registry_)),
      batch_size_(BuildHistogram()
                      .Name("bpmc_exporter_commit_batch_events")
                      .Help("Events per committed transaction (group commit).")
                      .Register(*registry_)
                      .Add({}, kBatchBuckets)),
      commit_seconds_(BuildHistogram()
                          .Name("bpmc_exporter_commit_duration_seconds")
                          .Help("Time to insert and commit one batch.")
                          .Register(*registry_)
                          .Add({}, kCommitBuckets)),
      queue_depth_(BuildGauge()
                       .Name("bpmc_exporter_queue_depth_events")
                       .Help("Events waiting for a commit.")
                       .Register(*registry_)
                       .Add({})),
      spool_records_(BuildGauge()
                         .Name("bpmc_exporter_spool_backlog_events")
                         .Help("Acknowledged events in the on-disk spool, not yet in PostgreSQL.")
                         .Register(*registry_)
                         .Add({})),
      spool_bytes_(BuildGauge()
                       .Name("bpmc_exporter_spool_backlog_bytes")
                       .Help("Bytes of the on-disk spool.")
                       .Register(*registry_)
                       .Add({})),
      database_up_(BuildGauge()
                       .Name("bpmc_exporter_database_up")
                       .Help("1 when the last PostgreSQL operation succeeded.")
                       .Register(*registry_)
                       .Add({})),
      duplicates_(BuildCounter()
                      .Name("bpmc_exporter_duplicate_events_total")
                      .Help("Events acknowledged again but not stored: their id was stored before.")
                      .Register(*registry_)
                      .Add({})),
      spooled_(BuildCounter()
                   .Name("bpmc_exporter_spooled_events_total")
                   .Help("Events written to the spool because PostgreSQL was unreachable.")
                   .Register(*registry_)
                   .Add({})),
      replayed_(BuildCounter()
                    .Name("bpmc_exporter_replayed_events_total")
                    .Help("Spooled events replayed into PostgreSQL.")
                    .Register(*registry_)
                    .Add({})),
      overflow_operations_(overflow_family_.Add({{"family", "connector_operations_total"}})),
      overflow_errors_(overflow_family_.Add({{"family", "connector_errors_total"}})) {
  BuildGauge()
      .Name("bpmc_exporter_build_info")
      .Help("Build information; always 1.")
      .Register(*registry_)
      .Add({{"version", BPMC_VERSION}, {"revision", BPMC_REVISION}})
      .Set(1);
}

const IngestMetrics::OperationSeries& IngestMetrics::SeriesFor(const std::string& connector,
                                                               const std::string& operation) {
  const std::string key = Key({connector, operation});
  auto it = operations_.find(key);
  if (it != operations_.end()) return it->second;
  std::string label = operation;
  if (operations_.size() >= max_label_sets_) {
    label = "other";
    const std::string other_key = Key({connector, label});
    auto other = operations_.find(other_key);
    if (other != operations_.end()) return other->second;
  }
  OperationSeries s{
      &operations_family_.Add(
          {{"connector", connector}, {"operation", label}, {"status", "success"}}),
      &operations_family_.Add(
          {{"connector", connector}, {"operation", label}, {"status", "error"}}),
      &duration_family_.Add({{"connector", connector}, {"operation", label}}, kDurationBuckets),
      label};
  // The "other" series is keyed by its own name; an overflowing operation is
  // looked up on each event (a miss plus the other lookup), which is cheap.
  return operations_.emplace(Key({connector, label}), s).first->second;
}

prometheus::Counter& IngestMetrics::ErrorCounter(const std::string& connector,
                                                 const std::string& operation,
                                                 const std::string& error_type) {
  const std::string key = Key({connector, operation, error_type});
  auto it = errors_.find(key);
  if (it != errors_.end()) return *it->second;
  std::string type = error_type;
  if (errors_.size() >= max_label_sets_) {
    type = "other";
    overflow_errors_.Increment();
    auto other = errors_.find(Key({connector, operation, type}));
    if (other != errors_.end()) return *other->second;
  }
  auto* c = &errors_family_.Add(
      {{"connector", connector}, {"operation", operation}, {"error_type", type}});
  errors_.emplace(Key({connector, operation, type}), c);
  return *c;
}

void IngestMetrics::RecordStored(const UsageEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  const OperationSeries& s = SeriesFor(event.connector, event.operation);
  if (s.operation_label != event.operation) overflow_operations_.Increment();
  if (event.status == EventStatus::kError) {
    s.error->Increment();
    ErrorCounter(event.connector, s.operation_label,
                 event.error_type.empty() ? "unknown" : event.error_type)
        .Increment();
  } else {
    s.success->Increment();
  }
  if (event.duration_ms) s.duration->Observe(*event.duration_ms / 1000.0);
}

void IngestMetrics::RecordRequest(const std::string& route, int code) {
  const std::string key = Key({route, std::to_string(code)});
  std::lock_guard<std::mutex> lock(requests_mu_);
  auto it = requests_.find(key);
  if (it == requests_.end()) {
    it =
        requests_
            .emplace(key, &requests_family_.Add({{"route", route}, {"code", std::to_string(code)}}))
            .first;
  }
  it->second->Increment();
}

void IngestMetrics::ObserveCommit(size_t events, double seconds) {
  batch_size_.Observe(static_cast<double>(events));
  commit_seconds_.Observe(seconds);
}

void IngestMetrics::CountFailure(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(reason);
  if (it == failures_.end())
    it = failures_.emplace(reason, &failures_family_.Add({{"reason", reason}})).first;
  it->second->Increment();
}

}  // namespace bpmc::ingestion
