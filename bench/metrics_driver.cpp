// bench/metrics_bench.sh: the exporter's /metrics at a given number of
// connector x operation label sets. Fills IngestMetrics the way the writer
// does (RecordStored per event, bench/metrics_shape.h), then renders /metrics
// through the same route handler and renderer the exporter serves, and once over HTTP.
//
//   bpmc-bench-metrics LABEL_SETS RENDERS [OUT_FILE]
// prints one line: label_sets= series= bytes= render_ms_min= render_ms_median=
// render_ms_max= rss_kb_start= rss_kb_populated= rss_kb_after= hwm_kb= http_ms= record_ns=

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string_view>
#include <vector>

#include "http/route.h"
#include "http/server.h"
#include "httplib.h"
#include "ingestion/ingest_metrics.h"
#include "metrics_shape.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s LABEL_SETS RENDERS [OUT_FILE]\n", argv[0]);
    return 2;
  }
  const int n = std::atoi(argv[1]);
  const int renders = std::max(1, std::atoi(argv[2]));
  const long rss_start = bpmc::bench::StatusKb("VmRSS");
  auto registry = std::make_shared<prometheus::Registry>();
  auto metrics = std::make_unique<bpmc::ingestion::IngestMetrics>(registry, n);
  std::vector<bpmc::ingestion::UsageEvent> events;
  for (int i = 0; i < n; ++i) {
    const auto s = bpmc::bench::Shape(i);
    bpmc::ingestion::UsageEvent e;
    e.connector = s.connector;
    e.operation = s.operation;
    for (double d : bpmc::bench::kDurations) {
      e.duration_ms = d * 1000;
      events.push_back(e);
    }
    if (s.error) {
      e.status = bpmc::ingestion::EventStatus::kError;
      e.error_type = "timeout";
      e.duration_ms.reset();
      events.push_back(e);
    }
  }
  // Every event once (creates the series), then the same events again: the
  // second pass is the hot path of an existing series.
  for (const auto& e : events) metrics->RecordStored(e);
  const auto r0 = std::chrono::steady_clock::now();
  for (const auto& e : events) metrics->RecordStored(e);
  const double record_ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - r0).count() /
      static_cast<double>(events.size());
  events.clear();
  events.shrink_to_fit();
  const long rss_populated = bpmc::bench::StatusKb("VmRSS");

  std::vector<bpmc::http::Route> routes = bpmc::http::OperationalRoutes(
      *registry, [] { return true; },
      [m = metrics.get()](bpmc::http::ExpositionSink& out) { m->AppendExposition(out); });
  const bpmc::http::Route* route = bpmc::http::MatchRoute(routes, "/metrics");
  std::vector<double> ms;
  size_t bytes = 0;
  long series = 0;
  std::ofstream file;
  if (argc > 3) file.open(argv[3]);
  for (int r = 0; r < renders; ++r) {
    // The pieces go nowhere but a count (and the file on the last render):
    // what the renderer costs, without the socket.
    const bool last = r == renders - 1;
    bool line_start = true;
    size_t total = 0;
    long lines = 0;
    auto write = [&](std::string_view piece) {
      total += piece.size();
      if (last) {
        for (char ch : piece) {
          if (line_start && ch != '#') ++lines;
          line_start = ch == '\n';
        }
        if (file) file.write(piece.data(), static_cast<std::streamsize>(piece.size()));
      }
      return true;
    };
    const auto t0 = std::chrono::steady_clock::now();
    bpmc::http::Response resp = route->handler(bpmc::http::Request{});
    if (resp.stream) {
      resp.stream(write);
    } else {
      write(resp.body);
    }
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    bytes = total;
    if (last) series = lines;
  }
  file.close();
  const long rss_after = bpmc::bench::StatusKb("VmRSS");
  const long hwm = bpmc::bench::StatusKb("VmHWM");

  // Once over HTTP (the exporter's server, loopback): render + send + receive.
  double http_ms = -1;
  std::string error;
  bpmc::http::ServerOptions options;
  auto server = bpmc::http::Server::Start(options, std::move(routes), {}, *registry, &error);
  if (server) {
    httplib::Client client("127.0.0.1", server->port());
    client.set_read_timeout(60, 0);
    const auto t0 = std::chrono::steady_clock::now();
    auto res = client.Get("/metrics");
    http_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!res || res->status != 200) http_ms = -1;
  }
  std::sort(ms.begin(), ms.end());
  std::printf(
      "label_sets=%d series=%ld bytes=%zu render_ms_min=%.1f render_ms_median=%.1f "
      "render_ms_max=%.1f rss_kb_start=%ld rss_kb_populated=%ld rss_kb_after=%ld hwm_kb=%ld "
      "http_ms=%.1f "
      "record_ns=%.0f\n",
      n, series, bytes, ms.front(), ms[ms.size() / 2], ms.back(), rss_start, rss_populated,
      rss_after, hwm, http_ms, record_ns);
}
