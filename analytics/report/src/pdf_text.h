#pragma once

// The text and number formatting of the PDF pages, and their pure layout decisions
// (axis steps, column widths): functions of their inputs only, apart from cairo.

#include <string>
#include <string_view>
#include <vector>

#include "report/report.h"

namespace bpmc::report::pdf_internal {

// Text safe for cairo: valid UTF-8, control characters as spaces, at most
// 500 characters (no line of a page holds more; keeps measuring cheap).
std::string Printable(std::string_view s);
// "-1234567" -> "-1 234 567" with thin spaces; decimals kept as they are.
std::string GroupThousands(const std::string& digits);
// Human display of a cell (see report.h): grouped integers, two decimals, "" for NaN.
std::string Display(const Cell& cell);
bool IsNumber(const Cell& cell);
double NumberOf(const Cell& cell);  // NaN for text and empty cells
// 1, 2, 2.5 or 5 times a power of ten, at least `raw`.
double NiceStep(double raw);
// The label of axis value `v` on an axis of `step`: as many decimals as the step needs.
std::string AxisLabel(double v, double step);

// Narrowest column a table gets unless even that would run off the page (points).
constexpr double kMinColumnWidth = 28;
// Widths for columns of `natural` width in `avail`. When they fit: full width, the spare
// room going to the text columns (numbers stay compact), or evenly when there are none.
// When not: water-filling, narrow columns keep their width and wide ones share the rest,
// never narrower than kMinColumnWidth unless even that would run off the page.
std::vector<double> ColumnWidths(const std::vector<double>& natural,
                                 const std::vector<bool>& numeric, double avail);

}  // namespace bpmc::report::pdf_internal
