// IngestMetrics' own writer of the connector_* families (issue 17 §5): the
// same text as prometheus-cpp families fed the same events and serialized by
// TextSerializer (series order within a family aside: prometheus-cpp's is
// its hash map's), a real parser (promtool) accepts it, and it can be
// rendered while events are recorded.

#include "ingestion/ingest_metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "common/testing/temp_dir.h"

namespace bpmc::ingestion {
namespace {

UsageEvent Ev(const std::string& connector, const std::string& operation, bool error = false,
              std::optional<double> duration_ms = std::nullopt,
              const std::string& error_type = "") {
  UsageEvent e;
  e.connector = connector;
  e.operation = operation;
  e.status = error ? EventStatus::kError : EventStatus::kSuccess;
  e.error_type = error_type;
  e.duration_ms = duration_ms;
  return e;
}

// The connector_* families as IngestMetrics kept them before issue 17 §5:
// prometheus-cpp families with the same cap (its code, condensed).
std::string Reference(const std::vector<UsageEvent>& events, uint64_t cap) {
  prometheus::Registry r;
  auto& ops = prometheus::BuildCounter()
                  .Name("connector_operations_total")
                  .Help("Connector operations stored, by outcome.")
                  .Register(r);
  auto& dur = prometheus::BuildHistogram()
                  .Name("connector_operation_duration_seconds")
                  .Help("Execution time of connector operations that reported duration_ms.")
                  .Register(r);
  auto& errs = prometheus::BuildCounter()
                   .Name("connector_errors_total")
                   .Help("Connector operations stored with status=error, by error type.")
                   .Register(r);
  const prometheus::Histogram::BucketBoundaries bounds(IngestMetrics::kDurationBounds.begin(),
                                                       IngestMetrics::kDurationBounds.end());
  std::map<std::pair<std::string, std::string>, std::string> op_label;  // -> label used
  std::map<std::vector<std::string>, bool> error_sets;
  for (const auto& e : events) {
    std::string label = e.operation;
    if (!op_label.count({e.connector, e.operation})) {
      if (op_label.size() >= cap) label = "other";
      if (!op_label.count({e.connector, label})) op_label[{e.connector, label}] = label;
    } else {
      label = op_label[{e.connector, e.operation}];
    }
    auto& success =
        ops.Add({{"connector", e.connector}, {"operation", label}, {"status", "success"}});
    auto& error = ops.Add({{"connector", e.connector}, {"operation", label}, {"status", "error"}});
    auto& h = dur.Add({{"connector", e.connector}, {"operation", label}}, bounds);
    if (e.status == EventStatus::kError) {
      error.Increment();
      std::string type = e.error_type.empty() ? "unknown" : e.error_type;
      if (!error_sets.count({e.connector, label, type})) {
        if (error_sets.size() >= cap) type = "other";
        error_sets[{e.connector, label, type}] = true;
      }
      errs.Add({{"connector", e.connector}, {"operation", label}, {"error_type", type}})
          .Increment();
    } else {
      success.Increment();
    }
    if (e.duration_ms) h.Observe(*e.duration_ms / 1000.0);
  }
  return prometheus::TextSerializer().Serialize(r.Collect());
}

// Families in order of appearance, each its header lines and its series
// sorted (a histogram's lines stay together, in their order); only `names`.
std::string Normalize(const std::string& text, const std::vector<std::string>& names) {
  std::vector<std::string> order;
  std::map<std::string, std::pair<std::string, std::map<std::string, std::string>>> families;
  std::istringstream in(text);
  std::string line;
  std::string family;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);  // "# HELP x" / "# TYPE x"
      if (!families.count(family)) order.push_back(family);
      families[family].first += line + "\n";
      continue;
    }
    std::string key = line.substr(0, line.rfind(' '));
    const size_t brace = key.find('{');
    std::string labels = brace == std::string::npos ? "" : key.substr(brace);
    if (const size_t le = labels.find(",le=\""); le != std::string::npos) labels.erase(le);
    if (const size_t le = labels.find("{le=\""); le != std::string::npos) labels.erase(le);
    families[family].second[labels] += line + "\n";
  }
  std::string out;
  for (const auto& f : order) {
    if (std::find(names.begin(), names.end(), f) == names.end()) continue;
    out += families[f].first;
    for (const auto& [k, v] : families[f].second) out += v;
  }
  return out;
}

const std::vector<std::string> kFamilies = {"connector_operations_total", "connector_errors_total",
                                            "connector_operation_duration_seconds"};

std::vector<UsageEvent> TableEvents() {
  return {
      Ev("crm", "getContact", false, 12.0),
      Ev("crm", "getContact", false, 5.0),                   // exactly on the 0.005 bound
      Ev("crm", "getContact", true, 30000.0, "auth_error"),  // exactly on the last bound
      Ev("crm", "getContact", true, 31000.0, "auth_error"),  // only in +Inf
      Ev("crm", "listDeals"),                                // no duration: a histogram of zeros
      Ev("crm", "listDeals", true),                          // error_type "unknown"
      Ev("back\\slash", "say \"hi\"", false, 0.001),
      Ev("new\nline", "all \\ \" \n", true, 100.0, "type \"q\" \\ \n"),
      Ev("utf8", "кириллица ✓", false, 2500.0),
      Ev("crm", "sum", false, 100.0),
      Ev("crm", "sum", false, 200.0),  // sum 0.30000000000000004 as "%.16g"
  };
}

TEST(IngestMetricsTest, ConnectorFamiliesAreWhatPrometheusCppWrites) {
  const std::vector<UsageEvent> events = TableEvents();
  auto registry = std::make_shared<prometheus::Registry>();
  IngestMetrics m(registry, 100);
  for (const auto& e : events) m.RecordStored(e);
  const std::string ours = m.Exposition();
  const std::string reference = Reference(events, 100);
  EXPECT_EQ(Normalize(ours, kFamilies), Normalize(reference, kFamilies));
  EXPECT_NE(ours.find(R"(connector_operations_total{connector="back\\slash",)"
                      R"(operation="say \"hi\"",status="error"} 0)"),
            std::string::npos)
      << ours;
}

TEST(IngestMetricsTest, OverflowToOtherIsWhatPrometheusCppWrites) {
  std::vector<UsageEvent> events;
  for (int i = 0; i < 6; ++i) {
    events.push_back(
        Ev("crm", "op" + std::to_string(i), i % 2 == 1, 10.0 * i, "type" + std::to_string(i)));
    events.push_back(Ev("erp", "op" + std::to_string(i), true, 1.0, "t"));
  }
  auto registry = std::make_shared<prometheus::Registry>();
  IngestMetrics m(registry, 3);
  for (const auto& e : events) m.RecordStored(e);
  const std::string ours = m.Exposition();
  EXPECT_EQ(Normalize(ours, kFamilies), Normalize(Reference(events, 3), kFamilies));
  EXPECT_NE(ours.find(R"(connector_operations_total{connector="erp",operation="other",)"
                      R"(status="error"} )"),
            std::string::npos)
      << ours;
}

// Registry::Collect gives counters, gauges, histograms, each in registration
// order; TextSerializer wrote the families in that order, and so do we.
TEST(IngestMetricsTest, FamiliesKeepTheirOrderAmongTheRegistrys) {
  auto registry = std::make_shared<prometheus::Registry>();
  IngestMetrics m(registry, 100);
  m.RecordStored(Ev("crm", "a", true, 1.0, "x"));
  m.RecordRequest("usage", 201);
  m.CountFailure("commit");
  m.ObserveCommit(3, 0.01);
  std::vector<std::string> types;
  std::istringstream in(m.Exposition());
  for (std::string line; std::getline(in, line);)
    if (line.rfind("# TYPE ", 0) == 0) types.push_back(line.substr(7));
  const std::vector<std::string> want = {
      "connector_operations_total counter",
      "connector_errors_total counter",
      "bpmc_exporter_http_requests_total counter",
      "bpmc_exporter_failures_total counter",
      "bpmc_exporter_label_overflow_total counter",
      "bpmc_exporter_duplicate_events_total counter",
      "bpmc_exporter_spooled_events_total counter",
      "bpmc_exporter_replayed_events_total counter",
      "bpmc_exporter_queue_depth_events gauge",
      "bpmc_exporter_spool_backlog_events gauge",
      "bpmc_exporter_spool_backlog_bytes gauge",
      "bpmc_exporter_database_up gauge",
      "bpmc_exporter_build_info gauge",
      "connector_operation_duration_seconds histogram",
      "bpmc_exporter_commit_batch_events histogram",
      "bpmc_exporter_commit_duration_seconds histogram",
  };
  EXPECT_EQ(types, want);
  // Before any event the connector_* families are absent, as empty
  // prometheus-cpp families are.
  auto fresh = std::make_shared<prometheus::Registry>();
  EXPECT_EQ(IngestMetrics(fresh, 100).Exposition().find("# TYPE connector_"), std::string::npos);
}

TEST(IngestMetricsTest, PromtoolParsesTheExposition) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "no promtool";
  auto registry = std::make_shared<prometheus::Registry>();
  IngestMetrics m(registry, 3);  // with "other"
  for (const auto& e : TableEvents()) m.RecordStored(e);
  m.RecordRequest("usage", 201);
  bpmc::testing::TempDir dir("ingest-metrics");
  const std::string file = dir.path() + "/metrics.txt";
  std::ofstream(file) << m.Exposition();
  const std::string cmd = "promtool check metrics < " + file + " > " + file + ".out 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream out(file + ".out");
  const std::string said((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << said;
}

// Renders while four threads record events (new label sets and existing
// ones): no crash, and every histogram is consistent in itself.
TEST(IngestMetricsTest, RendersWhileEventsAreRecorded) {
  auto registry = std::make_shared<prometheus::Registry>();
  IngestMetrics m(registry, 500);
  std::atomic<int> done{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        m.RecordStored(Ev("c" + std::to_string(t), "op" + std::to_string(i % 700), i % 3 == 0,
                          static_cast<double>(i % 40000), "e" + std::to_string(i % 5)));
      }
      ++done;
    });
  }
  int renders = 0;
  int checked = 0;
  do {
    std::string buf;
    std::string text;
    http::ExpositionSink sink(&buf, [&](std::string_view piece) {
      EXPECT_LE(piece.size(), 2 * http::ExpositionSink::kChunkBytes);
      text.append(piece);
      return true;
    });
    m.AppendExposition(sink);
    sink.Finish();
    ++renders;
    // Per histogram series: cumulative buckets never fall, +Inf == _count.
    std::istringstream in(text);
    uint64_t count = 0, last = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("connector_operation_duration_seconds_", 0) != 0) continue;
      const uint64_t v = std::strtoull(line.c_str() + line.rfind(' ') + 1, nullptr, 10);
      if (line.find("_count{") != std::string::npos) {
        count = v;
        last = 0;
      } else if (line.find("_bucket{") != std::string::npos) {
        ASSERT_GE(v, last) << line;
        last = v;
        if (line.find("le=\"+Inf\"") != std::string::npos) {
          ASSERT_EQ(v, count) << line;
          ++checked;
        }
      }
    }
  } while (done < 4 && renders < 1000);
  for (auto& w : writers) w.join();
  EXPECT_GT(renders, 0);
  EXPECT_GT(checked, 0);
  // After the writers: every event is in the text.
  // After the writers: 4 x 20,000 events, one line per outcome and label set.
  std::istringstream in(m.Exposition());
  double total = 0;
  for (std::string line; std::getline(in, line);)
    if (line.rfind("connector_operations_total{", 0) == 0)
      total += std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
  EXPECT_EQ(total, 80000);
}

}  // namespace
}  // namespace bpmc::ingestion
