#pragma once

// Exports of analytics reports: a format-neutral `Report` value and its CSV,
// XLSX and PDF renderings. An analytics endpoint builds a Report from the same
// numbers it puts in its JSON, picks the format with ChooseFormat and answers
// with the Rendered body. Every function here is pure (no clock, no globals
// besides the fonts cairo finds through fontconfig) and thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "common/request_error.h"

namespace bpmc::report {

// One value. monostate = empty cell. Numbers keep their type in every format:
// int64 is written exactly (CSV, PDF) or as a numeric cell (XLSX); a double
// that is NaN or infinite is written as an empty cell.
struct Cell {
  using Value = std::variant<std::monostate, int64_t, double, std::string>;
  Value v;

  // Implicit on purpose, so tables can be written as literals: {"crm", 12, 0.5}.
  // Any integer becomes int64_t (an unsigned value above INT64_MAX wraps: the
  // caller's bug), any floating-point value a double.
  Cell() = default;
  Cell(Value value) : v(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Cell(T i) : v(static_cast<int64_t>(i)) {}  // NOLINT(google-explicit-constructor)
  template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Cell(T d) : v(static_cast<double>(d)) {}    // NOLINT(google-explicit-constructor)
  Cell(std::string s) : v(std::move(s)) {}    // NOLINT(google-explicit-constructor)
  Cell(const char* s) : v(std::string(s)) {}  // NOLINT(google-explicit-constructor)
};

// A named table. Rows shorter than `columns` are padded with empty cells.
struct Table {
  std::string name;  // also the XLSX sheet name (sanitised) and the CSV section name
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;
};

// A chart of one table: x labels from `label_column`, one series per entry of
// `value_columns` (series named by the column header; non-numeric cells are
// gaps). A chart that names a missing table or column is drawn as "no data"
// (PDF) or left out (XLSX); it never fails the export.
struct Chart {
  enum Kind { kLine, kBar };
  std::string title;
  std::string table;  // name of a Table of the same Report
  size_t label_column = 0;
  std::vector<size_t> value_columns;
  Kind kind = kLine;
};

struct Report {
  std::string title;   // e.g. "Обзор использования коннекторов"
  std::string period;  // e.g. "2026-10-26 — 2026-11-25 (Europe/Moscow)"
  std::vector<std::pair<std::string, Cell>> summary;  // key figures, shown first
  std::vector<Table> tables;
  std::vector<Chart> charts;
  // Base of the download file name, e.g. "overview-2026-10-26-2026-11-25".
  // Characters other than [A-Za-z0-9._-] become '-'. Empty: derived from the
  // title the same way (ASCII only), "report" if nothing is left.
  std::string file_stem;
};

enum class ExportFormat { kJson, kCsv, kXlsx, kPdf };

// Picks the response format. `format_param` (the `format` query parameter:
// json|csv|xlsx|pdf, case-insensitive) wins when non-empty; an unknown value is
// a 400 with field "format". Otherwise the Accept header is negotiated
// (RFC 9110 §12.5.1: q-values, type/* and */* wildcards, the most specific
// range decides a type's q; among equal q an exact media type beats a
// wildcard, then earlier in the header wins, then JSON, CSV, XLSX, PDF).
// Recognised types: application/json, text/csv,
// application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,
// application/pdf. An empty Accept means JSON; an Accept that allows none of
// them is a 406 with field "Accept".
std::variant<ExportFormat, RequestError> ChooseFormat(const std::string& format_param,
                                                      const std::string& accept_header);

// A rendered export. On failure (only XLSX and PDF can fail: temporary file or
// cairo errors) `error` says why and `body` is empty: answer 500 and count it.
struct Rendered {
  std::string content_type;
  std::string body;
  std::string filename;  // ASCII, safe inside a quoted Content-Disposition
  std::string error;     // empty on success

  bool ok() const { return error.empty(); }
};

// "attachment; filename=\"<filename>\"" (quotes and backslashes in the name
// are replaced by '_').
std::string ContentDisposition(const std::string& filename);

// CSV, RFC 4180: CRLF line ends, every field that contains , " CR or LF is
// quoted, quotes doubled. Encoding UTF-8 *with* a byte order mark, because the
// people who download these reports open them in Excel, which reads UTF-8
// without a BOM as the ANSI code page and garbles Cyrillic; csv readers that
// know UTF-8 (Python "utf-8-sig", pandas, LibreOffice) skip it.
// Layout, one file for the whole report; sections are separated by one empty
// line and each starts with a line holding only the section name, then its
// header line, then its rows:
//   Summary            header "Metric,Value"; rows "Report,<title>",
//                      "Period,<period>", then the summary pairs
//   <table name>       the table's columns, then its rows
// Numbers: integers exactly, doubles in the shortest form that reads back to
// the same double, always with '.', never with thousands separators.
// A record that would be an empty line is written as "" so that empty lines
// only ever separate sections. Rows shorter than the header are padded.
// Text cells that start with = + - @ TAB or CR get a leading apostrophe so a
// spreadsheet never runs them as formulas (error messages come from outside);
// numeric cells are never changed. Invalid UTF-8 becomes U+FFFD (all formats).
Rendered RenderCsv(const Report& report);

// XLSX (libxlsxwriter): a "Summary" sheet (title, period, key figures) and one
// sheet per table in order, header row bold and frozen, with an autofilter;
// integers are numeric cells formatted "#,##0", doubles numeric cells in the
// General format, text is text (never a formula), line breaks stored as LF.
// Sheet names are the table names with []:*?/\' and control characters
// replaced by '_', cut to 31 characters and made unique case-insensitively
// ("Name (2)"); "History" (reserved by Excel) becomes "History_". Integers
// beyond ±2^53 do not fit a spreadsheet number exactly and are stored as text.
// Each Chart becomes a native Excel chart beside its table. Text longer than
// Excel's 32,767 characters is cut.
Rendered RenderXlsx(const Report& report);

// PDF (cairo, A4, DejaVu Sans): title, period, key figures as cards, one drawn
// chart per Chart (line or grouped bars, y axis from 0, legend), then the
// tables (header repeated on every page, zebra rows, numeric columns
// right-aligned). Numbers: integers exactly, with thin-space thousands
// separators; doubles with two decimals (four significant digits, at least two
// decimals, below 1; exponent form beyond 1e15). Tables too wide for portrait
// get landscape pages; cells too wide for their column end in "…"; tables
// longer than 2,000 rows show the first 2,000 and say how many were left out.
// Footer: title, period and "Page N of M".
Rendered RenderPdf(const Report& report);

}  // namespace bpmc::report
