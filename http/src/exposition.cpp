#include "http/exposition.h"

#include <prometheus/text_serializer.h>

#include <cmath>
#include <cstdio>
#include <sstream>

namespace bpmc::http {
namespace {

void AppendHead(const prometheus::MetricFamily& family, const prometheus::ClientMetric& metric,
                std::string_view suffix, std::string* out) {
  out->append(family.name).append(suffix);
  if (!metric.label.empty()) {
    out->push_back('{');
    const char* sep = "";
    for (const auto& l : metric.label) {
      out->append(sep).append(l.name).append("=\"");
      AppendEscapedLabelValue(l.value, out);
      out->push_back('"');
      sep = ",";
    }
    out->push_back('}');
  }
  out->push_back(' ');
}

// A histogram line with the extra `le` label.
void AppendBucketHead(const prometheus::MetricFamily& family,
                      const prometheus::ClientMetric& metric, std::string* out) {
  out->append(family.name).append("_bucket{");
  for (const auto& l : metric.label) {
    out->append(l.name).append("=\"");
    AppendEscapedLabelValue(l.value, out);
    out->append("\",");
  }
  out->append("le=\"");
}

void AppendTail(const prometheus::ClientMetric& metric, std::string* out) {
  if (metric.timestamp_ms != 0) {
    out->push_back(' ');
    out->append(std::to_string(metric.timestamp_ms));
  }
  out->push_back('\n');
}

}  // namespace

void AppendMetricValue(double value, std::string* out) {
  if (std::isnan(value)) {
    out->append("Nan");
  } else if (std::isinf(value)) {
    out->append(value < 0 ? "-Inf" : "+Inf");
  } else if (value >= 0 && value < 1e15 && value == std::floor(value) && !std::signbit(value)) {
    // "%.16g" of an integral value below 10^15 is its decimal digits.
    AppendUnsigned(static_cast<uint64_t>(value), out);
  } else {
    char buf[64];
    const int n = std::snprintf(buf, sizeof buf, "%.16g", value);
    out->append(buf, static_cast<size_t>(n));
  }
}

void AppendMetricCount(uint64_t value, std::string* out) {
  if (value < 1'000'000'000'000'000ULL) {
    AppendUnsigned(value, out);
  } else {
    AppendMetricValue(static_cast<double>(value), out);
  }
}

void AppendUnsigned(uint64_t value, std::string* out) {
  char buf[24];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  out->append(p, static_cast<size_t>(buf + sizeof buf - p));
}

void AppendEscapedLabelValue(std::string_view value, std::string* out) {
  size_t start = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out->append(value.data() + start, i - start);
    out->push_back('\\');
    out->push_back(c == '\n' ? 'n' : c);
    start = i + 1;
  }
  out->append(value.data() + start, value.size() - start);
}

void AppendFamilyHeader(std::string_view name, std::string_view help, std::string_view type,
                        std::string* out) {
  if (!help.empty()) out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void AppendFamily(const prometheus::MetricFamily& family, std::string* out) {
  if (family.metric.empty()) return;
  switch (family.type) {
    case prometheus::MetricType::Counter:
      AppendFamilyHeader(family.name, family.help, "counter", out);
      for (const auto& m : family.metric) {
        AppendHead(family, m, "", out);
        AppendMetricValue(m.counter.value, out);
        AppendTail(m, out);
      }
      return;
    case prometheus::MetricType::Gauge:
      AppendFamilyHeader(family.name, family.help, "gauge", out);
      for (const auto& m : family.metric) {
        AppendHead(family, m, "", out);
        AppendMetricValue(m.gauge.value, out);
        AppendTail(m, out);
      }
      return;
    case prometheus::MetricType::Untyped:
      AppendFamilyHeader(family.name, family.help, "untyped", out);
      for (const auto& m : family.metric) {
        AppendHead(family, m, "", out);
        AppendMetricValue(m.untyped.value, out);
        AppendTail(m, out);
      }
      return;
    case prometheus::MetricType::Histogram:
      AppendFamilyHeader(family.name, family.help, "histogram", out);
      for (const auto& m : family.metric) {
        const auto& h = m.histogram;
        AppendHead(family, m, "_count", out);
        AppendUnsigned(h.sample_count, out);
        AppendTail(m, out);
        AppendHead(family, m, "_sum", out);
        AppendMetricValue(h.sample_sum, out);
        AppendTail(m, out);
        double last = -INFINITY;
        for (const auto& b : h.bucket) {
          AppendBucketHead(family, m, out);
          AppendMetricValue(b.upper_bound, out);
          out->append("\"} ");
          AppendUnsigned(b.cumulative_count, out);
          AppendTail(m, out);
          last = b.upper_bound;
        }
        if (last != INFINITY) {
          AppendBucketHead(family, m, out);
          out->append("+Inf\"} ");
          AppendUnsigned(h.sample_count, out);
          AppendTail(m, out);
        }
      }
      return;
    default: {
      // Summaries: rare and small here; the library writes them.
      std::ostringstream s;
      prometheus::TextSerializer().Serialize(s, {family});
      out->append(s.str());
      return;
    }
  }
}

void AppendExposition(const std::vector<prometheus::MetricFamily>& families, std::string* out) {
  for (const auto& f : families) AppendFamily(f, out);
}

void AppendExposition(const std::vector<prometheus::MetricFamily>& families, ExpositionSink& out) {
  for (const auto& f : families) {
    AppendFamily(f, out.buf());
    out.Checkpoint();
  }
}

}  // namespace bpmc::http
