// The PDF pages' text formatting and pure layout decisions (pdf_text.h).

#include "pdf_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "report_internal.h"

namespace bpmc::report::pdf_internal {
namespace {

using report_internal::FormatInt;

constexpr const char* kThinSpace = "\xE2\x80\x89";

std::string FixedDecimals(double v, int decimals) {
  char buf[400];
  auto result = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed, decimals);
  if (result.ec != std::errc()) return report_internal::FormatDouble(v);
  return std::string(buf, result.ptr);
}

// Human display of a double (see report.h).
std::string DisplayDouble(double v) {
  if (!std::isfinite(v)) return "";
  double a = std::fabs(v);
  if (a >= 1e15) {
    char buf[64];
    auto result = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 6);
    return std::string(buf, result.ptr);
  }
  if (a >= 1 || v == 0) return GroupThousands(FixedDecimals(v, 2));
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 4);
  std::string out(buf, result.ptr);
  // At least two decimals, like the values of 1 and more: "0.5" -> "0.50".
  size_t dot = out.find('.');
  if (out.find('e') == std::string::npos) {
    if (dot == std::string::npos)
      out += ".00";
    else if (out.size() - dot - 1 < 2)
      out.append(2 - (out.size() - dot - 1), '0');
  }
  return out;
}

}  // namespace

// Text safe for cairo: valid UTF-8, control characters as spaces, at most
// 500 characters (no line of a page holds more; keeps measuring cheap).
std::string Printable(std::string_view s) {
  std::string out = report_internal::Utf8Prefix(report_internal::ValidUtf8(s), 500);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  }
  return out;
}

// "-1234567" -> "-1 234 567" with thin spaces.
std::string GroupThousands(const std::string& digits) {
  size_t start = (!digits.empty() && digits[0] == '-') ? 1 : 0;
  size_t end = digits.find('.');
  if (end == std::string::npos) end = digits.size();
  std::string out = digits.substr(0, start);
  for (size_t i = start; i < end; ++i) {
    if (i > start && (end - i) % 3 == 0) out += kThinSpace;
    out += digits[i];
  }
  out += digits.substr(end);
  return out;
}

std::string Display(const Cell& cell) {
  if (auto* i = std::get_if<int64_t>(&cell.v)) return GroupThousands(FormatInt(*i));
  if (auto* d = std::get_if<double>(&cell.v)) return DisplayDouble(*d);
  if (auto* s = std::get_if<std::string>(&cell.v)) return Printable(*s);
  return "";
}

bool IsNumber(const Cell& cell) {
  return std::holds_alternative<int64_t>(cell.v) || std::holds_alternative<double>(cell.v);
}

double NumberOf(const Cell& cell) {
  if (auto* i = std::get_if<int64_t>(&cell.v)) return static_cast<double>(*i);
  if (auto* d = std::get_if<double>(&cell.v)) return *d;
  return std::numeric_limits<double>::quiet_NaN();
}

// 1, 2 or 5 times a power of ten, at least `raw`.
double NiceStep(double raw) {
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}

std::string AxisLabel(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0;
  if (step < 1e-4 || step >= 1e15) {
    char buf[64];
    auto result = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 3);
    return std::string(buf, result.ptr);
  }
  int decimals = 0;
  while (decimals < 6) {
    double scaled = step * std::pow(10.0, decimals);
    if (std::fabs(scaled - std::round(scaled)) < 1e-6 * scaled) break;
    ++decimals;
  }
  return GroupThousands(FixedDecimals(v, decimals));
}

std::vector<double> ColumnWidths(const std::vector<double>& natural,
                                 const std::vector<bool>& numeric, double avail) {
  const size_t ncols = natural.size();
  std::vector<double> widths = natural;
  double total = 0;
  for (double w : natural) total += w;
  if (total <= avail) {
    double text_total = 0;
    for (size_t c = 0; c < ncols; ++c) {
      if (!numeric[c]) text_total += natural[c];
    }
    for (size_t c = 0; c < ncols; ++c) {
      if (text_total > 0) {
        if (!numeric[c]) widths[c] += (avail - total) * natural[c] / text_total;
      } else {
        widths[c] += (avail - total) / static_cast<double>(ncols);
      }
    }
    return widths;
  }
  std::vector<double> sorted = natural;
  std::sort(sorted.begin(), sorted.end());
  double cap = avail / static_cast<double>(ncols);
  double used = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    double even = (avail - used) / static_cast<double>(sorted.size() - i);
    if (sorted[i] > even) {
      cap = even;
      break;
    }
    used += sorted[i];
  }
  double floor_w = std::min(kMinColumnWidth, avail / static_cast<double>(ncols));
  for (double& w : widths) w = std::min(w, std::max(cap, floor_w));
  return widths;
}

}  // namespace bpmc::report::pdf_internal
