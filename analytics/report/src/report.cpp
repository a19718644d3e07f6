// Format negotiation and the helpers the report renderers share.

#include "report/report.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "report_internal.h"

namespace bpmc::report {

namespace report_internal {

namespace {

// Length of the valid UTF-8 sequence at the start of `s`, 0 if invalid.
size_t ValidSequenceLength(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char c = byte(0);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t min;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2, min = 0x80, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min = 0x800, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  // Overlong forms, UTF-16 surrogates and values above U+10FFFF are invalid.
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    size_t n = ValidSequenceLength(text);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      n = 1;
    } else {
      out.append(text.data(), n);
    }
    text.remove_prefix(n);
  }
  return out;
}

size_t Utf8Length(std::string_view text) {
  size_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string Utf8Prefix(std::string_view text, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (chars == max_chars) return std::string(text.substr(0, i));
      ++chars;
    }
  }
  return std::string(text);
}

std::string FormatInt(int64_t value) {
  char buf[32];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

std::string FormatDouble(double value) {
  if (!std::isfinite(value)) return "";
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

std::string CellText(const Cell& cell) {
  if (auto* i = std::get_if<int64_t>(&cell.v)) return FormatInt(*i);
  if (auto* d = std::get_if<double>(&cell.v)) return FormatDouble(*d);
  if (auto* s = std::get_if<std::string>(&cell.v)) return *s;
  return "";
}

std::string FileStem(const std::string& stem, const std::string& title) {
  const std::string& source = stem.empty() ? title : stem;
  std::string out;
  bool dash = false;
  for (char c : source) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-';
    if (keep && c != '-') {
      if (dash && !out.empty()) out += '-';
      dash = false;
      out += c;
    } else {
      dash = true;
    }
  }
  // A leading dot would make a hidden file ("../x" becomes "x").
  while (!out.empty() && (out.front() == '.' || out.front() == '-')) out.erase(0, 1);
  if (out.size() > 120) out.resize(120);
  return out.empty() ? "report" : out;
}

}  // namespace report_internal

std::string ContentDisposition(const std::string& filename) {
  std::string safe;
  for (char c : filename) {
    unsigned char u = static_cast<unsigned char>(c);
    safe += (c == '"' || c == '\\' || u < 0x20 || u >= 0x7F) ? '_' : c;
  }
  return "attachment; filename=\"" + safe + "\"";
}

namespace {

constexpr std::string_view kXlsxType =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

struct Candidate {
  ExportFormat format;
  std::string_view type;
  std::string_view subtype;
};

// In server preference order: the tie-breaker of last resort.
constexpr Candidate kCandidates[] = {
    {ExportFormat::kJson, "application", "json"},
    {ExportFormat::kCsv, "text", "csv"},
    {ExportFormat::kXlsx, "application", kXlsxType.substr(12)},
    {ExportFormat::kPdf, "application", "pdf"},
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits on `sep` outside double-quoted strings (parameter values may be quoted).
std::vector<std::string_view> SplitOutsideQuotes(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') {
      quoted = !quoted;
    } else if (s[i] == '\\' && quoted) {
      ++i;
    } else if (s[i] == sep && !quoted) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

// RFC 9110 qvalue: 0[.ddd] or 1[.000]. nullopt when malformed.
std::optional<double> ParseQ(std::string_view v) {
  if (v.empty() || v.size() > 5 || (v[0] != '0' && v[0] != '1')) return std::nullopt;
  if (v.size() > 1) {
    if (v[1] != '.') return std::nullopt;
    for (size_t i = 2; i < v.size(); ++i) {
      if (v[i] < '0' || v[i] > '9' || (v[0] == '1' && v[i] != '0')) return std::nullopt;
    }
  }
  return std::strtod(std::string(v).c_str(), nullptr);
}

struct MediaRange {
  std::string type;     // lowercase, "*" for a wildcard
  std::string subtype;  // lowercase, "*" for a wildcard
  double q = 1;
};

std::vector<MediaRange> ParseAccept(std::string_view header) {
  std::vector<MediaRange> ranges;
  for (std::string_view item : SplitOutsideQuotes(header, ',')) {
    std::vector<std::string_view> parts = SplitOutsideQuotes(item, ';');
    std::string_view media = Trim(parts[0]);
    if (media.empty()) continue;
    MediaRange range;
    if (media == "*") {  // not valid HTTP, but some clients send it for */*
      range.type = range.subtype = "*";
    } else {
      size_t slash = media.find('/');
      if (slash == std::string_view::npos || slash == 0 || slash + 1 == media.size()) continue;
      range.type = Lower(Trim(media.substr(0, slash)));
      range.subtype = Lower(Trim(media.substr(slash + 1)));
      if (range.type == "*" && range.subtype != "*") continue;
    }
    bool valid = true;
    for (size_t i = 1; i < parts.size(); ++i) {
      std::string_view param = Trim(parts[i]);
      size_t eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      if (Lower(Trim(param.substr(0, eq))) != "q") continue;
      std::optional<double> q = ParseQ(Trim(param.substr(eq + 1)));
      if (!q)
        valid = false;
      else
        range.q = *q;
      break;  // parameters after q are accept-extensions
    }
    if (valid) ranges.push_back(std::move(range));
  }
  return ranges;
}

}  // namespace

std::variant<ExportFormat, RequestError> ChooseFormat(const std::string& format_param,
                                                      const std::string& accept_header) {
  std::string format = Lower(Trim(format_param));
  if (!format.empty()) {
    if (format == "json") return ExportFormat::kJson;
    if (format == "csv") return ExportFormat::kCsv;
    if (format == "xlsx") return ExportFormat::kXlsx;
    if (format == "pdf") return ExportFormat::kPdf;
    return RequestError{400, "format must be one of json, csv, xlsx, pdf", "format"};
  }
  if (Trim(accept_header).empty()) return ExportFormat::kJson;

  std::vector<MediaRange> ranges = ParseAccept(accept_header);
  struct Score {
    double q = -1;
    int specificity = -1;  // 2 exact, 1 type/*, 0 */*
    size_t position = 0;   // index in the header of the range that decided q
  };
  std::optional<ExportFormat> best;
  Score best_score;
  for (const Candidate& c : kCandidates) {
    Score score;
    for (size_t i = 0; i < ranges.size(); ++i) {
      const MediaRange& r = ranges[i];
      int specificity = -1;
      if (r.type == c.type && r.subtype == c.subtype)
        specificity = 2;
      else if (r.type == c.type && r.subtype == "*")
        specificity = 1;
      else if (r.type == "*")
        specificity = 0;
      // The most specific range decides; among equally specific ones the first.
      if (specificity > score.specificity) score = Score{r.q, specificity, i};
    }
    if (score.specificity < 0 || score.q <= 0) continue;
    bool better = !best || score.q > best_score.q ||
                  (score.q == best_score.q && score.specificity > best_score.specificity) ||
                  (score.q == best_score.q && score.specificity == best_score.specificity &&
                   score.position < best_score.position);
    if (better) {
      best = c.format;
      best_score = score;
    }
  }
  if (!best) {
    return RequestError{406,
                        "none of the acceptable types is available: application/json, text/csv, "
                        "application/pdf, " +
                            std::string(kXlsxType),
                        "Accept"};
  }
  return *best;
}

}  // namespace bpmc::report
