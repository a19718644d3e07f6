#pragma once
// The Prometheus text format (0.0.4) written straight into one string, byte for
// byte what prometheus-cpp 1.0.1's TextSerializer writes for the same families
// (tests/http/exposition_test.cpp compares them), without its copies: no
// ostringstream, no second string. The pieces are public for writers of their
// own series (ingestion::IngestMetrics).

#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace bpmc::http {

// Appends `value` as TextSerializer does: "%.16g", "Nan", "+Inf", "-Inf".
void AppendMetricValue(double value, std::string* out);
// Appends a count kept as an integer but exposed as a double value (a
// counter): the same text as AppendMetricValue(double(value)).
void AppendMetricCount(uint64_t value, std::string* out);
// Appends an integer as TextSerializer does for histogram counts ("%llu").
void AppendUnsigned(uint64_t value, std::string* out);
// Appends a label value escaped as the format asks: \ as \\, " as \", newline as \n.
void AppendEscapedLabelValue(std::string_view value, std::string* out);
// "# HELP name help\n# TYPE name type\n" (the help text is not escaped, as
// TextSerializer does not; no HELP line when help is empty).
void AppendFamilyHeader(std::string_view name, std::string_view help, std::string_view type,
                        std::string* out);

// Appends one family (nothing when it has no series, as Registry::Collect
// leaves such families out).
void AppendFamily(const prometheus::MetricFamily& family, std::string* out);
void AppendExposition(const std::vector<prometheus::MetricFamily>& families, std::string* out);

// Where an exposition is written. Writers append to buf() and call
// Checkpoint() between series (or families); with a flush function the text
// is handed on in pieces of about kChunkBytes and buf() stays small (the
// /metrics route streams the pieces to the client), without one it all stays
// in the string.
class ExpositionSink {
 public:
  static constexpr size_t kChunkBytes = 64 * 1024;
  using Flush = std::function<bool(std::string_view piece)>;  // false: stop sending

  explicit ExpositionSink(std::string* out) : buf_(out) {}
  ExpositionSink(std::string* buf, Flush flush) : buf_(buf), flush_(std::move(flush)) {}

  std::string* buf() { return buf_; }
  void Checkpoint() {
    if (flush_ && buf_->size() >= kChunkBytes) Hand();
  }
  // Hands on what is left; call once at the end.
  void Finish() {
    if (flush_ && !buf_->empty()) Hand();
  }
  // The flush function refused a piece (the client is gone): the rest is dropped.
  bool stopped() const { return stopped_; }

 private:
  void Hand() {
    if (!stopped_ && !flush_(*buf_)) stopped_ = true;
    buf_->clear();
  }
  std::string* buf_;
  Flush flush_;
  bool stopped_ = false;
};

// Appends each family (AppendFamily), with a checkpoint after each.
void AppendExposition(const std::vector<prometheus::MetricFamily>& families, ExpositionSink& out);

// Writes the whole /metrics body. Called on request threads; must be thread-safe.
using MetricsRenderer = std::function<void(ExpositionSink& out)>;

}  // namespace bpmc::http
