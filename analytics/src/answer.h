#pragma once
// Private to bpmc::analytics: an endpoint's answer (the JSON document and the
// same numbers as a report::Report for the exports) and the helpers that put
// numbers into both.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "report/report.h"
#include "shared_reads.h"

namespace bpmc::analytics::analytics_internal {

using nlohmann::json;
using report::Cell;
using report::Chart;
using report::Report;
using report::Table;

// An endpoint's answer: the JSON document and the same numbers as a Report.
struct Answer {
  json body;
  Report report;
};

// The number, or JSON null.
json OptionalNumber(const std::optional<double>& v);

// operations_total, error_count, error_rate, unique_users,
// avg_response_time_ms and p95_response_time_ms of `u`.
json UsageJson(const Usage& u);

// UsageJson of each bucket, with its "bucket".
json SeriesJson(const std::vector<Usage>& series);

// Report cells.
inline Cell Num(int64_t v) { return Cell{v}; }
inline Cell Num(double v) { return Cell{v}; }
inline Cell Str(std::string v) { return Cell{std::move(v)}; }
inline Cell Opt(const std::optional<double>& v) { return v ? Cell{*v} : Cell{}; }

// The table of a usage series: a row per bucket.
Table SeriesTable(const std::string& name, const std::vector<Usage>& series);

}  // namespace bpmc::analytics::analytics_internal
