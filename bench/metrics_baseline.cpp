// The baseline of bench/metrics_bench.sh: a minimal prometheus-cpp program that
// registers the exporter's per connector x operation families with the same
// series and label shapes (bench/metrics_shape.h) and serializes them with
// prometheus::TextSerializer, as the library is meant to be used.
//
//   bpmc-bench-metrics-baseline LABEL_SETS RENDERS [OUT_FILE]
// prints one line: label_sets= series= bytes= render_ms_min= render_ms_median=
// render_ms_max= rss_kb_start= rss_kb_populated= rss_kb_after= hwm_kb=

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include "metrics_shape.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s LABEL_SETS RENDERS [OUT_FILE]\n", argv[0]);
    return 2;
  }
  const int n = std::atoi(argv[1]);
  const int renders = std::max(1, std::atoi(argv[2]));
  const long rss_start = bpmc::bench::StatusKb("VmRSS");
  prometheus::Registry registry;
  auto& ops = prometheus::BuildCounter()
                  .Name("connector_operations_total")
                  .Help("Connector operations stored, by outcome.")
                  .Register(registry);
  auto& dur = prometheus::BuildHistogram()
                  .Name("connector_operation_duration_seconds")
                  .Help("Execution time of connector operations that reported duration_ms.")
                  .Register(registry);
  auto& errs = prometheus::BuildCounter()
                   .Name("connector_errors_total")
                   .Help("Connector operations stored with status=error, by error type.")
                   .Register(registry);
  const prometheus::Histogram::BucketBoundaries buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                           0.5,   1,    2.5,   5,    10,  30};
  for (int i = 0; i < n; ++i) {
    const auto s = bpmc::bench::Shape(i);
    ops.Add({{"connector", s.connector}, {"operation", s.operation}, {"status", "success"}})
        .Increment(3);
    auto& e =
        ops.Add({{"connector", s.connector}, {"operation", s.operation}, {"status", "error"}});
    auto& h = dur.Add({{"connector", s.connector}, {"operation", s.operation}}, buckets);
    for (double d : bpmc::bench::kDurations) h.Observe(d);
    if (s.error) {
      e.Increment();
      errs.Add({{"connector", s.connector}, {"operation", s.operation}, {"error_type", "timeout"}})
          .Increment();
    }
  }
  const long rss_populated = bpmc::bench::StatusKb("VmRSS");
  std::vector<double> ms;
  std::string text;
  for (int r = 0; r < renders; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    text = prometheus::TextSerializer().Serialize(registry.Collect());
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const long rss_after = bpmc::bench::StatusKb("VmRSS");
  long series = 0;
  for (size_t p = 0; p < text.size();) {
    const size_t e = text.find('\n', p);
    if (text[p] != '#') ++series;
    p = e == std::string::npos ? text.size() : e + 1;
  }
  if (argc > 3) std::ofstream(argv[3]) << text;
  std::sort(ms.begin(), ms.end());
  std::printf(
      "label_sets=%d series=%ld bytes=%zu render_ms_min=%.1f render_ms_median=%.1f "
      "render_ms_max=%.1f rss_kb_start=%ld rss_kb_populated=%ld rss_kb_after=%ld hwm_kb=%ld\n",
      n, series, text.size(), ms.front(), ms[ms.size() / 2], ms.back(), rss_start, rss_populated,
      rss_after, bpmc::bench::StatusKb("VmHWM"));
}
