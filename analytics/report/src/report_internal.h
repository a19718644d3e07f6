#pragma once

// Helpers shared by the report renderers (report_*.cpp). Private to the library.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "report/report.h"

namespace bpmc::report::report_internal {

// `text` with every invalid UTF-8 sequence replaced by U+FFFD.
std::string ValidUtf8(std::string_view text);

// Number of code points of valid UTF-8 `text`.
size_t Utf8Length(std::string_view text);

// The first `max_chars` code points of valid UTF-8 `text`.
std::string Utf8Prefix(std::string_view text, size_t max_chars);

// Exact decimal integer.
std::string FormatInt(int64_t value);

// Shortest decimal that parses back to the same double, '.' as the decimal
// point, independent of the locale. Empty for NaN and infinities.
std::string FormatDouble(double value);

// Cell value as machine text: FormatInt / FormatDouble / the string (not
// UTF-8 checked) / "" for an empty cell.
std::string CellText(const Cell& cell);

// `stem` (or, when empty, `title`) reduced to [A-Za-z0-9._-], runs of other
// characters as one '-', trimmed of '-'; "report" when nothing is left.
std::string FileStem(const std::string& stem, const std::string& title);

}  // namespace bpmc::report::report_internal
