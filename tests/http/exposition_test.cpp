// bpmc::http's text writer against prometheus-cpp's TextSerializer: the same
// families (from the same Registry::Collect) must give the same bytes.

#include "http/exposition.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <limits>

namespace bpmc::http {
namespace {

std::string Ours(const std::vector<prometheus::MetricFamily>& families) {
  std::string out;
  AppendExposition(families, &out);
  return out;
}

TEST(ExpositionTest, ValuesAreWrittenAsTextSerializerWritesThem) {
  const double cases[] = {0,
                          -0.0,
                          1,
                          3,
                          0.1,
                          0.1 + 0.2,
                          1.0 / 3,
                          1.5e-7,
                          2.5e-5,
                          123.456,
                          999999999999999.0,
                          1e15,
                          1e15 + 1,
                          1e16,
                          1e17,
                          -42,
                          -0.5,
                          1e300,
                          std::numeric_limits<double>::quiet_NaN(),
                          std::numeric_limits<double>::infinity(),
                          -std::numeric_limits<double>::infinity()};
  for (double v : cases) {
    prometheus::Registry r;
    prometheus::BuildGauge().Name("g").Help("G.").Register(r).Add({}).Set(v);
    const auto families = r.Collect();
    EXPECT_EQ(Ours(families), prometheus::TextSerializer().Serialize(families)) << v;
  }
  for (uint64_t n :
       {0ULL, 1ULL, 999ULL, 999999999999999ULL, 1000000000000000ULL, 123456789012345678ULL}) {
    std::string a, b;
    AppendMetricCount(n, &a);
    AppendMetricValue(static_cast<double>(n), &b);
    EXPECT_EQ(a, b) << n;
  }
}

TEST(ExpositionTest, FamiliesAreWrittenAsTextSerializerWritesThem) {
  prometheus::Registry r;
  prometheus::BuildCounter().Name("empty_total").Help("Never used.").Register(r);
  auto& c = prometheus::BuildCounter()
                .Name("c_total")
                .Help("Help with \\ and \"quotes\" is not escaped.")
                .Register(r);
  c.Add({{"b", R"(back\slash)"}, {"a", "1"}}).Increment(7);
  c.Add({{"b", R"(a "quote")"}, {"a", "2"}}).Increment(0.5);
  c.Add({{"b", "new\nline"}, {"a", "3"}});  // stays at 0
  c.Add({{"b", "all \\ \" \n three\\n"}, {"a", ""}}).Increment(1e6);
  c.Add({{"b", "utf-8 ✓ кириллица"}, {"a", "4"}}).Increment(2);
  prometheus::BuildCounter().Name("nolabels_total").Help("").Register(r).Add({}).Increment(3);
  prometheus::BuildGauge().Name("g").Help("G.").Register(r).Add({{"x", "y"}}).Set(-1.25);
  auto& h = prometheus::BuildHistogram().Name("h_seconds").Help("H.").Register(r);
  auto& h1 = h.Add({{"z", "1"}, {"a", "q\"\\\n"}},
                   prometheus::Histogram::BucketBoundaries{0.005, 0.01, 1, 2.5, 30, 20000});
  for (double v : {0.005, 0.1, 0.3, 2.5, 31.0, 1e6}) h1.Observe(v);
  h.Add({{"z", "2"}}, prometheus::Histogram::BucketBoundaries{1, 2});  // no observation
  prometheus::BuildHistogram()
      .Name("nolabels_seconds")
      .Help("H.")
      .Register(r)
      .Add({}, prometheus::Histogram::BucketBoundaries{0.5})
      .Observe(0.25);
  prometheus::BuildSummary()
      .Name("s")
      .Help("S.")
      .Register(r)
      .Add({{"k", "v"}}, prometheus::Summary::Quantiles{{0.5, 0.05}})
      .Observe(1);
  const auto families = r.Collect();
  EXPECT_EQ(Ours(families), prometheus::TextSerializer().Serialize(families));
  EXPECT_EQ(Ours(families).find("empty_total"), std::string::npos);
}

TEST(ExpositionTest, LabelValuesAreEscaped) {
  const std::pair<std::string, std::string> cases[] = {
      {"plain", "plain"},         {"a\\b", "a\\\\b"},        {"say \"hi\"", "say \\\"hi\\\""},
      {"l1\nl2", "l1\\nl2"},      {"\\\"\n", "\\\\\\\"\\n"}, {"", ""},
      {"tab\tcr\r", "tab\tcr\r"},  // only \, " and newline are escaped
  };
  for (const auto& [in, want] : cases) {
    std::string out = "x";
    AppendEscapedLabelValue(in, &out);
    EXPECT_EQ(out, "x" + want) << in;
  }
}

TEST(ExpositionTest, SinkHandsOnPiecesAndKeepsTheTextWhole) {
  prometheus::Registry r;
  auto& c = prometheus::BuildCounter().Name("c_total").Help("C.").Register(r);
  for (int i = 0; i < 5000; ++i) c.Add({{"i", std::to_string(i)}}).Increment(i);
  const auto families = r.Collect();
  std::string buf;
  std::string joined;
  int pieces = 0;
  ExpositionSink sink(&buf, [&](std::string_view piece) {
    joined.append(piece);
    ++pieces;
    return true;
  });
  // One family per checkpoint: this one family is one piece; a writer of many
  // series checks in between (IngestMetrics).
  AppendExposition(families, sink);
  sink.Finish();
  EXPECT_EQ(joined, prometheus::TextSerializer().Serialize(families));
  EXPECT_EQ(pieces, 1);
  EXPECT_TRUE(buf.empty());

  // A refused piece stops the sending; the rest is dropped.
  int calls = 0;
  std::string buf2;
  ExpositionSink stopping(&buf2, [&](std::string_view) { return ++calls < 2; });
  for (int i = 0; i < 10; ++i) {
    buf2.append(ExpositionSink::kChunkBytes, 'x');
    stopping.Checkpoint();
  }
  stopping.Finish();
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(stopping.stopped());
}

}  // namespace
}  // namespace bpmc::http
