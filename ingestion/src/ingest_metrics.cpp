#include "ingestion/ingest_metrics.h"

#include <prometheus/counter.h>

#include <algorithm>
#include <cstring>

#include "http/exposition.h"

namespace bpmc::ingestion {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// The connector_* families: written by AppendExposition, not registered.
constexpr std::string_view kOperationsName = "connector_operations_total";
constexpr std::string_view kOperationsHelp = "Connector operations stored, by outcome.";
constexpr std::string_view kDurationName = "connector_operation_duration_seconds";
constexpr std::string_view kDurationHelp =
    "Execution time of connector operations that reported duration_ms.";
constexpr std::string_view kErrorsName = "connector_errors_total";
constexpr std::string_view kErrorsHelp =
    "Connector operations stored with status=error, by error type.";
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

// name="value",name="value" with the values escaped.
std::string LabelText(std::initializer_list<std::pair<std::string_view, std::string_view>> labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    if (!out.empty()) out.push_back(',');
    out.append(name).append("=\"");
    http::AppendEscapedLabelValue(value, &out);
    out.push_back('"');
  }
  return out;
}

// Writers hold IngestMetrics::mu_, so load + store is an increment.
void Bump(std::atomic<uint64_t>& a, uint64_t n = 1) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

double FromBits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

uint64_t ToBits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof d);
  return bits;
}

// `_bucket{` ... `,le="0.005"} ` for each bound, then +Inf: formatted once.
const std::array<std::string, IngestMetrics::kDurationBounds.size() + 1>& LeSuffixes() {
  static const auto* const kSuffixes = [] {
    auto* a = new std::array<std::string, IngestMetrics::kDurationBounds.size() + 1>;
    for (size_t i = 0; i < a->size(); ++i) {
      std::string& s = (*a)[i];
      s = ",le=\"";
      if (i < IngestMetrics::kDurationBounds.size()) {
        http::AppendMetricValue(IngestMetrics::kDurationBounds[i], &s);
      } else {
        s.append("+Inf");
      }
      s.append("\"} ");
    }
    return a;
  }();
  return *kSuffixes;
}

}  // namespace

IngestMetrics::IngestMetrics(std::shared_ptr<prometheus::Registry> registry,
                             uint64_t max_label_sets)
    : registry_(std::move(registry)),
      max_label_sets_(max_label_sets),
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

IngestMetrics::OperationSeries& IngestMetrics::SeriesFor(const std::string& connector,
                                                         const std::string& operation) {
  const std::string key = Key({connector, operation});
  auto it = operations_.find(key);
  if (it != operations_.end()) return *it->second;
  std::string label = operation;
  if (operations_.size() >= max_label_sets_) {
    label = "other";
    const std::string other_key = Key({connector, label});
    auto other = operations_.find(other_key);
    if (other != operations_.end()) return *other->second;
  }
  OperationSeries& s = operation_series_.emplace_back();
  s.labels = LabelText({{"connector", connector}, {"operation", label}});
  s.operation_label = std::move(label);
  // The "other" series is keyed by its own name; an overflowing operation is
  // looked up on each event (a miss plus the other lookup), which is cheap.
  return *operations_.emplace(Key({connector, s.operation_label}), &s).first->second;
}

IngestMetrics::ErrorSeries& IngestMetrics::ErrorCounter(const std::string& connector,
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
  ErrorSeries& e = error_series_.emplace_back();
  // Label names in prometheus-cpp's order (sorted): connector, error_type, operation.
  e.labels = LabelText({{"connector", connector}, {"error_type", type}, {"operation", operation}});
  errors_.emplace(Key({connector, operation, type}), &e);
  return e;
}

void IngestMetrics::RecordStored(const UsageEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  OperationSeries& s = SeriesFor(event.connector, event.operation);
  if (s.operation_label != event.operation) overflow_operations_.Increment();
  if (event.status == EventStatus::kError) {
    Bump(s.error);
    Bump(ErrorCounter(event.connector, s.operation_label,
                      event.error_type.empty() ? "unknown" : event.error_type)
             .count);
  } else {
    Bump(s.success);
  }
  if (event.duration_ms) {
    const double seconds = *event.duration_ms / 1000.0;
    // As prometheus::Histogram::Observe: the first bound >= the value.
    const size_t b = static_cast<size_t>(
        std::lower_bound(kDurationBounds.begin(), kDurationBounds.end(), seconds) -
        kDurationBounds.begin());
    Bump(s.buckets[b]);
    s.sum_bits.store(ToBits(FromBits(s.sum_bits.load(std::memory_order_relaxed)) + seconds),
                     std::memory_order_relaxed);
  }
}

std::string IngestMetrics::Exposition() const {
  std::string text;
  http::ExpositionSink sink(&text);
  AppendExposition(sink);
  return text;
}

void IngestMetrics::AppendExposition(http::ExpositionSink& sink) const {
  std::string* const out = sink.buf();
  std::vector<const OperationSeries*> ops;
  std::vector<const ErrorSeries*> errors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ops.reserve(operation_series_.size());
    for (const auto& s : operation_series_) ops.push_back(&s);
    errors.reserve(error_series_.size());
    for (const auto& e : error_series_) errors.push_back(&e);
  }
  const auto relaxed = std::memory_order_relaxed;
  // Registry::Collect gives counters, then gauges, then histograms, each in
  // registration order; the connector_* families were registered first of
  // their kind, and are written where TextSerializer put them.
  if (!ops.empty()) {
    http::AppendFamilyHeader(kOperationsName, kOperationsHelp, "counter", out);
    for (const OperationSeries* s : ops) {
      for (const bool success : {true, false}) {
        out->append(kOperationsName).push_back('{');
        out->append(s->labels).append(success ? ",status=\"success\"} " : ",status=\"error\"} ");
        http::AppendMetricCount((success ? s->success : s->error).load(relaxed), out);
        out->push_back('\n');
      }
      sink.Checkpoint();
    }
  }
  if (!errors.empty()) {
    http::AppendFamilyHeader(kErrorsName, kErrorsHelp, "counter", out);
    for (const ErrorSeries* e : errors) {
      out->append(kErrorsName).push_back('{');
      out->append(e->labels).append("} ");
      http::AppendMetricCount(e->count.load(relaxed), out);
      out->push_back('\n');
      sink.Checkpoint();
    }
  }
  auto durations = [&] {
    if (ops.empty()) return;
    http::AppendFamilyHeader(kDurationName, kDurationHelp, "histogram", out);
    const auto& le = LeSuffixes();
    for (const OperationSeries* s : ops) {
      std::array<uint64_t, kDurationBounds.size() + 1> b;
      uint64_t count = 0;
      for (size_t i = 0; i < b.size(); ++i) count += b[i] = s->buckets[i].load(relaxed);
      out->append(kDurationName).append("_count{").append(s->labels).append("} ");
      http::AppendUnsigned(count, out);
      out->push_back('\n');
      out->append(kDurationName).append("_sum{").append(s->labels).append("} ");
      http::AppendMetricValue(FromBits(s->sum_bits.load(relaxed)), out);
      out->push_back('\n');
      uint64_t cumulative = 0;
      for (size_t i = 0; i < b.size(); ++i) {
        cumulative += b[i];
        out->append(kDurationName).append("_bucket{").append(s->labels).append(le[i]);
        http::AppendUnsigned(cumulative, out);
        out->push_back('\n');
      }
      sink.Checkpoint();
    }
  };
  bool durations_written = false;
  for (const auto& family : registry_->Collect()) {
    if (!durations_written && family.type == prometheus::MetricType::Histogram) {
      durations();
      durations_written = true;
    }
    http::AppendFamily(family, out);
    sink.Checkpoint();
  }
  if (!durations_written) durations();
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
