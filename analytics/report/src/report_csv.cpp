// RFC 4180 CSV rendering of a Report (layout documented in report.h).

#include <algorithm>
#include <string>
#include <vector>

#include "report/report.h"
#include "report_internal.h"

namespace bpmc::report {

namespace {

using report_internal::CellText;
using report_internal::ValidUtf8;

// Text that a spreadsheet would evaluate as a formula when opening the file.
bool LooksLikeFormula(const std::string& s) {
  return !s.empty() &&
         (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r');
}

void AppendField(std::string* out, const std::string& raw) {
  bool quote = raw.find_first_of(",\"\r\n") != std::string::npos;
  if (!quote) {
    *out += raw;
    return;
  }
  *out += '"';
  for (char c : raw) {
    if (c == '"') *out += '"';
    *out += c;
  }
  *out += '"';
}

void AppendText(std::string* out, const std::string& text) {
  std::string valid = ValidUtf8(text);
  if (LooksLikeFormula(valid)) valid.insert(0, 1, '\'');
  AppendField(out, valid);
}

void AppendCell(std::string* out, const Cell& cell) {
  if (auto* s = std::get_if<std::string>(&cell.v)) {
    AppendText(out, *s);
  } else {
    AppendField(out, CellText(cell));  // numbers and empty cells never need quoting
  }
}

// Ends a record. A record that would be an empty line (one empty field) is
// written as "" so that empty lines only ever separate sections.
void EndLine(std::string* out) {
  if (out->size() >= 2 && out->compare(out->size() - 2, 2, "\r\n") == 0) *out += "\"\"";
  *out += "\r\n";
}

void Separator(std::string* out) { *out += "\r\n"; }

}  // namespace

Rendered RenderCsv(const Report& report) {
  std::string out = "\xEF\xBB\xBF";  // UTF-8 byte order mark: see report.h

  AppendText(&out, "Summary");
  EndLine(&out);
  AppendText(&out, "Metric");
  out += ',';
  AppendText(&out, "Value");
  EndLine(&out);
  AppendText(&out, "Report");
  out += ',';
  AppendText(&out, report.title);
  EndLine(&out);
  AppendText(&out, "Period");
  out += ',';
  AppendText(&out, report.period);
  EndLine(&out);
  for (const auto& [key, value] : report.summary) {
    AppendText(&out, key);
    out += ',';
    AppendCell(&out, value);
    EndLine(&out);
  }

  for (const Table& table : report.tables) {
    Separator(&out);
    AppendText(&out, table.name);
    EndLine(&out);
    for (size_t i = 0; i < table.columns.size(); ++i) {
      if (i > 0) out += ',';
      AppendText(&out, table.columns[i]);
    }
    EndLine(&out);
    for (const std::vector<Cell>& row : table.rows) {
      size_t width = std::max(row.size(), table.columns.size());
      for (size_t i = 0; i < width; ++i) {
        if (i > 0) out += ',';
        if (i < row.size()) AppendCell(&out, row[i]);
      }
      EndLine(&out);
    }
  }

  Rendered rendered;
  rendered.content_type = "text/csv; charset=utf-8; header=present";
  rendered.filename = report_internal::FileStem(report.file_stem, report.title) + ".csv";
  rendered.body = std::move(out);
  return rendered;
}

}  // namespace bpmc::report
