// XLSX rendering of a Report with libxlsxwriter (layout documented in report.h).
//
// libxlsxwriter 1.1.4 can only write to a file name, so the workbook goes to a
// private temporary directory (mkdtemp, 0700) that is removed before returning.

#include <unistd.h>
#include <xlsxwriter.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "report/report.h"
#include "report_internal.h"

namespace bpmc::report {

namespace {

using report_internal::CellText;
using report_internal::Utf8Length;
using report_internal::ValidUtf8;

constexpr size_t kMaxSheetName = 31;     // Excel, in UTF-16 code units
constexpr size_t kMaxCellChars = 32767;  // Excel's limit per cell
constexpr int64_t kMaxExactInt = int64_t{1} << 53;
constexpr size_t kWidthSampleRows = 1000;

// Decodes valid UTF-8 into code points.
std::vector<uint32_t> CodePoints(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[k])); };
    uint32_t c = b(i);
    if (c < 0x80) {
      out.push_back(c);
      i += 1;
    } else if ((c & 0xE0) == 0xC0) {
      out.push_back(((c & 0x1F) << 6) | (b(i + 1) & 0x3F));
      i += 2;
    } else if ((c & 0xF0) == 0xE0) {
      out.push_back(((c & 0x0F) << 12) | ((b(i + 1) & 0x3F) << 6) | (b(i + 2) & 0x3F));
      i += 3;
    } else {
      out.push_back(((c & 0x07) << 18) | ((b(i + 1) & 0x3F) << 12) | ((b(i + 2) & 0x3F) << 6) |
                    (b(i + 3) & 0x3F));
      i += 4;
    }
  }
  return out;
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Excel compares sheet names case-insensitively; fold ASCII and Cyrillic.
std::string FoldCase(const std::vector<uint32_t>& cps) {
  std::string out;
  for (uint32_t cp : cps) {
    if (cp >= 'A' && cp <= 'Z')
      cp += 0x20;
    else if (cp >= 0x410 && cp <= 0x42F)
      cp += 0x20;
    else if (cp >= 0x400 && cp <= 0x40F)
      cp += 0x50;
    AppendUtf8(&out, cp);
  }
  return out;
}

// The first code points of `cps` that fit in `units` UTF-16 code units.
std::vector<uint32_t> FitUnits(const std::vector<uint32_t>& cps, size_t units) {
  std::vector<uint32_t> out;
  size_t used = 0;
  for (uint32_t cp : cps) {
    size_t n = cp >= 0x10000 ? 2 : 1;
    if (used + n > units) break;
    used += n;
    out.push_back(cp);
  }
  return out;
}

std::string Encode(const std::vector<uint32_t>& cps) {
  std::string out;
  for (uint32_t cp : cps) AppendUtf8(&out, cp);
  return out;
}

// Valid, unique (case-insensitively, among `taken`) Excel sheet name for `wanted`.
std::string SheetName(const std::string& wanted, std::set<std::string>* taken) {
  std::vector<uint32_t> cps = CodePoints(ValidUtf8(wanted));
  for (uint32_t& cp : cps) {
    if (cp < 0x20 || cp == 0x7F || cp == '[' || cp == ']' || cp == ':' || cp == '*' || cp == '?' ||
        cp == '/' || cp == '\\' || cp == '\'') {
      cp = '_';
    }
  }
  while (!cps.empty() && cps.front() == ' ') cps.erase(cps.begin());
  while (!cps.empty() && cps.back() == ' ') cps.pop_back();
  if (cps.empty()) cps = CodePoints("Sheet");
  if (FoldCase(cps) == "history") cps.push_back('_');  // reserved by Excel
  std::vector<uint32_t> base = FitUnits(cps, kMaxSheetName);
  for (int n = 1;; ++n) {
    std::vector<uint32_t> candidate = base;
    if (n > 1) {
      std::vector<uint32_t> suffix = CodePoints(" (" + std::to_string(n) + ")");
      candidate = FitUnits(base, kMaxSheetName - suffix.size());
      candidate.insert(candidate.end(), suffix.begin(), suffix.end());
    }
    if (taken->insert(FoldCase(candidate)).second) return Encode(candidate);
  }
}

// Text for a cell: valid UTF-8, line breaks as LF (Excel's own; a CR would be
// stored as the escape _x000D_), cut to Excel's limit.
std::string CellString(const std::string& s) {
  std::string valid;
  std::string utf8 = ValidUtf8(s);
  valid.reserve(utf8.size());
  for (size_t i = 0; i < utf8.size(); ++i) {
    if (utf8[i] != '\r')
      valid += utf8[i];
    else if (i + 1 >= utf8.size() || utf8[i + 1] != '\n')
      valid += '\n';
  }
  if (Utf8Length(valid) > kMaxCellChars) {
    valid = report_internal::Utf8Prefix(valid, kMaxCellChars - 1) + "\xE2\x80\xA6";
  }
  return valid;
}

// Approximate display width of a value in Excel character units.
size_t DisplayChars(const Cell& cell) {
  if (auto* s = std::get_if<std::string>(&cell.v)) return Utf8Length(*s);
  if (std::holds_alternative<int64_t>(cell.v)) {
    size_t digits = CellText(cell).size();
    return digits + digits / 3;  // thousands separators
  }
  return std::min<size_t>(CellText(cell).size(), 12);  // General shows ~11 significant digits
}

double ColumnWidth(size_t chars) {
  return static_cast<double>(std::clamp<size_t>(chars + 2, 8, 60));
}

struct Formats {
  lxw_format* title = nullptr;
  lxw_format* period = nullptr;
  lxw_format* header = nullptr;
  lxw_format* integer = nullptr;
  lxw_format* text = nullptr;
};

Formats MakeFormats(lxw_workbook* wb) {
  Formats f;
  f.title = workbook_add_format(wb);
  format_set_bold(f.title);
  format_set_font_size(f.title, 14);
  f.period = workbook_add_format(wb);
  format_set_italic(f.period);
  format_set_font_color(f.period, 0x595959);
  f.header = workbook_add_format(wb);
  format_set_bold(f.header);
  format_set_bg_color(f.header, 0xDCE6F1);
  format_set_bottom(f.header, LXW_BORDER_THIN);
  format_set_text_wrap(f.header);
  format_set_align(f.header, LXW_ALIGN_VERTICAL_TOP);
  f.integer = workbook_add_format(wb);
  format_set_num_format(f.integer, "#,##0");
  f.text = workbook_add_format(wb);
  format_set_align(f.text, LXW_ALIGN_VERTICAL_TOP);
  return f;
}

// Writes one cell; the first failure is kept in *error.
void WriteCell(lxw_worksheet* ws, lxw_row_t row, lxw_col_t col, const Cell& cell, const Formats& f,
               lxw_error* error) {
  lxw_error err = LXW_NO_ERROR;
  if (auto* i = std::get_if<int64_t>(&cell.v)) {
    if (*i >= -kMaxExactInt && *i <= kMaxExactInt) {
      err = worksheet_write_number(ws, row, col, static_cast<double>(*i), f.integer);
    } else {
      err = worksheet_write_string(ws, row, col, CellText(cell).c_str(), f.text);
    }
  } else if (auto* d = std::get_if<double>(&cell.v)) {
    if (std::isfinite(*d)) err = worksheet_write_number(ws, row, col, *d, nullptr);
  } else if (auto* s = std::get_if<std::string>(&cell.v)) {
    if (!s->empty()) err = worksheet_write_string(ws, row, col, CellString(*s).c_str(), f.text);
  }
  if (err != LXW_NO_ERROR && *error == LXW_NO_ERROR) *error = err;
}

std::string TempDir() {
  const char* env = std::getenv("TMPDIR");
  return env != nullptr && *env != '\0' ? env : "/tmp";
}

// A chart title that libxlsxwriter would read as a cell reference ("=A1").
std::string ChartText(const std::string& s) {
  std::string valid = ValidUtf8(s);
  if (!valid.empty() && valid[0] == '=') valid.insert(0, 1, ' ');
  return valid;
}

// The workbook's private temporary directory (mkdtemp, 0700) and the file in
// it; both are removed when it goes out of scope.
class TempWorkbookFile {
 public:
  TempWorkbookFile() : dir_(TempDir() + "/bpmc-xlsx-XXXXXX") {
    created_ = mkdtemp(dir_.data()) != nullptr;
    path_ = dir_ + "/report.xlsx";
  }
  ~TempWorkbookFile() {
    if (!created_) return;
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  TempWorkbookFile(const TempWorkbookFile&) = delete;
  TempWorkbookFile& operator=(const TempWorkbookFile&) = delete;

  bool created() const { return created_; }
  // libxlsxwriter's tmpdir option takes a non-const char*.
  char* dir() { return dir_.data(); }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
  bool created_ = false;
};

// The Summary sheet: title, period and the key figures. The first failure is
// kept in *error.
void WriteSummarySheet(lxw_workbook* wb, const Report& report, const Formats& f,
                       std::set<std::string>* taken, lxw_error* error) {
  std::string summary_name = SheetName("Summary", taken);
  lxw_worksheet* summary = workbook_add_worksheet(wb, summary_name.c_str());
  if (summary == nullptr) {
    *error = LXW_ERROR_SHEETNAME_ALREADY_USED;
    return;
  }
  worksheet_write_string(summary, 0, 0, CellString(report.title).c_str(), f.title);
  worksheet_set_row(summary, 0, 20, nullptr);
  worksheet_write_string(summary, 1, 0, CellString(report.period).c_str(), f.period);
  worksheet_write_string(summary, 3, 0, "Metric", f.header);
  worksheet_write_string(summary, 3, 1, "Value", f.header);
  size_t key_chars = 6;
  size_t value_chars = 5;
  lxw_row_t row = 4;
  for (const auto& [key, value] : report.summary) {
    WriteCell(summary, row, 0, Cell(key), f, error);
    WriteCell(summary, row, 1, value, f, error);
    key_chars = std::max(key_chars, Utf8Length(key));
    value_chars = std::max(value_chars, DisplayChars(value));
    ++row;
  }
  worksheet_set_column(summary, 0, 0, ColumnWidth(key_chars), nullptr);
  worksheet_set_column(summary, 1, 1, ColumnWidth(value_chars), nullptr);
  worksheet_activate(summary);
}

// One table's rows on `ws`: a header row, column widths from the first
// kWidthSampleRows rows, frozen header and an autofilter. The first failure
// is kept in *error.
void WriteTable(lxw_worksheet* ws, const Table& table, const Formats& f, lxw_error* error) {
  size_t ncols = table.columns.size();
  for (const auto& row : table.rows) ncols = std::max(ncols, row.size());
  ncols = std::min<size_t>(ncols, LXW_COL_MAX);
  size_t nrows = std::min<size_t>(table.rows.size(), LXW_ROW_MAX - 1);
  std::vector<size_t> chars(ncols, 0);
  for (size_t c = 0; c < ncols && c < table.columns.size(); ++c) {
    worksheet_write_string(ws, 0, static_cast<lxw_col_t>(c), CellString(table.columns[c]).c_str(),
                           f.header);
    chars[c] = std::min<size_t>(Utf8Length(table.columns[c]), 30);
  }
  for (size_t r = 0; r < nrows; ++r) {
    const auto& row = table.rows[r];
    for (size_t c = 0; c < ncols && c < row.size(); ++c) {
      WriteCell(ws, static_cast<lxw_row_t>(r + 1), static_cast<lxw_col_t>(c), row[c], f, error);
      if (r < kWidthSampleRows) chars[c] = std::max(chars[c], DisplayChars(row[c]));
    }
  }
  for (size_t c = 0; c < ncols; ++c) {
    worksheet_set_column(ws, static_cast<lxw_col_t>(c), static_cast<lxw_col_t>(c),
                         ColumnWidth(chars[c]), nullptr);
  }
  if (ncols > 0) {
    worksheet_freeze_panes(ws, 1, 0);
    worksheet_autofilter(ws, 0, 0, static_cast<lxw_row_t>(nrows),
                         static_cast<lxw_col_t>(ncols - 1));
  }
}

// The sheets of the report's tables, in order; a sheet that could not be
// added is nullptr (and sets *error).
struct TableSheets {
  std::vector<std::string> names;
  std::vector<lxw_worksheet*> sheets;
};

// One sheet per table (WriteTable). The first failure is kept in *error.
TableSheets WriteTableSheets(lxw_workbook* wb, const Report& report, const Formats& f,
                             std::set<std::string>* taken, lxw_error* error) {
  TableSheets out;
  for (const Table& table : report.tables) {
    std::string name = SheetName(table.name, taken);
    lxw_worksheet* ws = workbook_add_worksheet(wb, name.c_str());
    out.names.push_back(name);
    out.sheets.push_back(ws);
    if (ws == nullptr) {
      if (*error == LXW_NO_ERROR) *error = LXW_ERROR_SHEETNAME_ALREADY_USED;
      continue;
    }
    WriteTable(ws, table, f, error);
  }
  return out;
}

// Native charts beside their tables: a chart whose table is missing, empty
// or lacks its columns is left out.
void InsertCharts(lxw_workbook* wb, const Report& report, const TableSheets& tables) {
  std::vector<int> charts_on_sheet(report.tables.size(), 0);
  for (const Chart& chart : report.charts) {
    auto it = std::find_if(report.tables.begin(), report.tables.end(),
                           [&](const Table& t) { return t.name == chart.table; });
    if (it == report.tables.end()) continue;
    size_t t = static_cast<size_t>(it - report.tables.begin());
    const Table& table = *it;
    size_t nrows = std::min<size_t>(table.rows.size(), LXW_ROW_MAX - 1);
    size_t ncols = std::min<size_t>(table.columns.size(), LXW_COL_MAX);
    if (tables.sheets[t] == nullptr || nrows == 0 || chart.label_column >= ncols) continue;
    std::vector<size_t> values;
    for (size_t v : chart.value_columns) {
      if (v < ncols) values.push_back(v);
    }
    if (values.empty()) continue;
    lxw_chart* xc =
        workbook_add_chart(wb, chart.kind == Chart::kBar ? LXW_CHART_COLUMN : LXW_CHART_LINE);
    const char* sheet = tables.names[t].c_str();
    auto last = static_cast<lxw_row_t>(nrows);
    auto label = static_cast<lxw_col_t>(chart.label_column);
    for (size_t v : values) {
      lxw_chart_series* series = chart_add_series(xc, nullptr, nullptr);
      auto col = static_cast<lxw_col_t>(v);
      chart_series_set_categories(series, sheet, 1, label, last, label);
      chart_series_set_values(series, sheet, 1, col, last, col);
      chart_series_set_name_range(series, sheet, 0, col);
    }
    std::string chart_title = ChartText(chart.title);
    chart_title_set_name(xc, chart_title.c_str());
    chart_legend_set_position(xc, LXW_CHART_LEGEND_BOTTOM);
    lxw_chart_options placement{};
    placement.x_offset = 10;
    placement.x_scale = 1.5;
    placement.y_scale = 1.2;
    placement.object_position = LXW_OBJECT_MOVE_DONT_SIZE;
    lxw_row_t at_row = static_cast<lxw_row_t>(1 + 19 * charts_on_sheet[t]++);
    worksheet_insert_chart_opt(tables.sheets[t], at_row, static_cast<lxw_col_t>(ncols + 1), xc,
                               &placement);
  }
}

// The bytes of the written workbook; "" when it cannot be read.
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return in.good() || in.eof() ? content.str() : std::string();
}

}  // namespace

Rendered RenderXlsx(const Report& report) {
  Rendered rendered;
  rendered.content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
  rendered.filename = report_internal::FileStem(report.file_stem, report.title) + ".xlsx";

  TempWorkbookFile file;
  if (!file.created()) {
    rendered.error = "xlsx: cannot create a temporary directory in " + TempDir();
    return rendered;
  }
  lxw_workbook_options options{};
  options.constant_memory = LXW_FALSE;
  options.tmpdir = file.dir();
  options.use_zip64 = LXW_TRUE;  // large tables must not fail at 4 GB of XML
  lxw_workbook* wb = workbook_new_opt(file.path().c_str(), &options);
  if (wb == nullptr) {
    rendered.error = "xlsx: cannot create the workbook";
    return rendered;
  }

  std::string title = ValidUtf8(report.title);
  std::string period = ValidUtf8(report.period);
  lxw_doc_properties properties{};
  properties.title = title.data();
  properties.subject = period.data();
  workbook_set_properties(wb, &properties);

  const Formats f = MakeFormats(wb);
  lxw_error error = LXW_NO_ERROR;
  std::set<std::string> taken;
  WriteSummarySheet(wb, report, f, &taken, &error);
  const TableSheets tables = WriteTableSheets(wb, report, f, &taken, &error);
  InsertCharts(wb, report, tables);

  lxw_error closed = workbook_close(wb);  // writes the file and frees the workbook
  if (error == LXW_NO_ERROR) error = closed;
  if (error != LXW_NO_ERROR) {
    rendered.error = std::string("xlsx: ") + lxw_strerror(error);
    return rendered;
  }
  rendered.body = ReadFile(file.path());
  if (rendered.body.empty()) rendered.error = "xlsx: cannot read the written workbook back";
  return rendered;
}

}  // namespace bpmc::report
