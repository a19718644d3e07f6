// Exports read back with independent readers: CSV with a strict RFC 4180 parser
// written here and with Python's csv module, XLSX with openpyxl, PDF with
// pdftotext. Every number must come back equal to the value in the Report.

#include "report/report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/testing/temp_dir.h"
#include "testing/process.h"

// fontconfig (through cairo's toy font API) loses about 1 KB once, while it
// parses its configuration on first use; the amount does not grow with the
// number of PDFs rendered. Suppressed here for this binary only; tests of the
// analytics endpoints that render PDFs need the same line in tests/lsan.supp.
extern "C" const char* __lsan_default_suppressions() {  // NOLINT(bugprone-reserved-identifier)
  return "leak:libfontconfig.so\n";
}

namespace bpmc::report {
namespace {

using nlohmann::json;

// The system interpreter: python3-openpyxl is a Debian package.
constexpr const char* kPython = "/usr/bin/python3";

// Writes `content` to dir/name; returns the file's path.
std::string WriteFile(const bpmc::testing::TempDir& dir, const std::string& name,
                      const std::string& content) {
  std::string path = dir.File(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// Runs a command; fails the test (and returns "") on a non-zero exit.
std::string Shell(const std::string& command) {
  std::string output;
  int rc = bpmc::testing::RunCommand(command + " 2>/dev/null", &output);
  EXPECT_EQ(rc, 0) << command << "\n" << output;
  return rc == 0 ? output : "";
}

std::string Utf8Rep(size_t n, const std::string& piece) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += piece;
  return out;
}

constexpr int64_t kBig = std::numeric_limits<int64_t>::max();
constexpr int64_t kSmall = std::numeric_limits<int64_t>::min();
constexpr int64_t kExactMax = int64_t{1} << 53;

// A report with everything that tends to break exporters.
Report SampleReport() {
  Report r;
  r.title = "Отчёт по коннекторам «BPM Centr»";
  r.period = "2026-10-26 — 2026-11-25 (Europe/Moscow)";
  r.file_stem = "connectors-2026-10-26-2026-11-25";
  r.summary = {
      {"Активные пользователи", 1234567},
      {"Операций всего", int64_t{9876543210}},
      {"Доля ошибок", 0.0123},
      {"Выручка, ₽", 98765.43},
      {"Изменение", -42},
      {"Статус", "ok"},
  };
  Table connectors;
  connectors.name = "Коннекторы";
  connectors.columns = {"Коннектор",   "Операции",          "Ошибки",
                        "Доля ошибок", "Среднее время, мс", "Комментарий"};
  connectors.rows = {
      {"crm-connector", 120345, 1234, 0.010253, 182.5, "обычный"},
      {"payment, \"PRO\"", int64_t{9007199254740993}, -17, -2.5, 0.1, "строка 1\nстрока 2"},
      {"Платежи\r\nи счета", kBig, kSmall, 1e-7, 123456.789, "=HYPERLINK(\"http://x\")"},
      {"пустые", Cell(), 0, 0.0, Cell(), ""},
      {"+7 and @name", 42, kExactMax, 3.0, -0.0001, "-1 is text"},
      {"длинный", 1, 2, 0.5, 2.25, Utf8Rep(60, "очень длинный текст ")},
  };
  Table daily;
  daily.name = "По дням";
  daily.columns = {"День", "Операции", "Ошибки"};
  for (int d = 0; d < 31; ++d) {
    char day[16];
    std::snprintf(day, sizeof(day), "2026-10-%02d", d + 1);
    daily.rows.push_back({std::string(day), 1000 + 37 * d - (d % 7) * 90, (d * 13) % 41});
  }
  Table long_table;
  long_table.name = "Ошибки: [топ/150]*?";
  long_table.columns = {"№", "Тип ошибки", "Количество"};
  for (int i = 0; i < 150; ++i) {
    long_table.rows.push_back({i + 1, "timeout_" + std::to_string(i), 10000 - i * 37});
  }
  r.tables = {connectors, daily, long_table};
  r.charts = {
      {"Операции и ошибки по дням", "По дням", 0, {1, 2}, Chart::kLine},
      {"Ошибки по дням", "По дням", 0, {2}, Chart::kBar},
  };
  return r;
}

// ---------------------------------------------------------------------------
// CSV

// A strict RFC 4180 reader: records end with CRLF, quotes only around whole
// fields, a quote inside a quoted field is doubled. nullopt on any violation.
std::optional<std::vector<std::vector<std::string>>> ParseCsvStrict(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  size_t i = 0;
  bool at_field_start = true;
  while (i < text.size()) {
    char c = text[i];
    if (at_field_start && c == '"') {
      ++i;
      while (true) {
        if (i >= text.size()) return std::nullopt;  // unterminated
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += text[i++];
      }
      at_field_start = false;
      if (i < text.size() && text[i] != ',' && text[i] != '\r') return std::nullopt;
      continue;
    }
    if (c == '"') return std::nullopt;  // quote inside an unquoted field
    if (c == ',') {
      record.push_back(field);
      field.clear();
      at_field_start = true;
      ++i;
      continue;
    }
    if (c == '\r') {
      if (i + 1 >= text.size() || text[i + 1] != '\n') return std::nullopt;
      record.push_back(field);
      field.clear();
      records.push_back(record);
      record.clear();
      at_field_start = true;
      i += 2;
      continue;
    }
    if (c == '\n') return std::nullopt;  // bare LF outside quotes
    field += c;
    at_field_start = false;
    ++i;
  }
  if (!record.empty() || !field.empty()) return std::nullopt;  // no final CRLF
  return records;
}

// What a cell must read back as from the CSV.
std::string ExpectedCsv(const Cell& cell) {
  if (auto* i = std::get_if<int64_t>(&cell.v)) return std::to_string(*i);
  if (auto* s = std::get_if<std::string>(&cell.v)) {
    if (!s->empty() && std::string("=+-@\t\r").find((*s)[0]) != std::string::npos) {
      return "'" + *s;
    }
    return *s;
  }
  return "";  // empty, or a double (checked numerically)
}

void ExpectCsvCell(const std::string& got, const Cell& cell, const std::string& where) {
  if (auto* d = std::get_if<double>(&cell.v)) {
    ASSERT_FALSE(got.empty()) << where;
    EXPECT_EQ(got.find(','), std::string::npos) << where;
    char* end = nullptr;
    double back = std::strtod(got.c_str(), &end);
    EXPECT_EQ(*end, '\0') << where << ": " << got;
    EXPECT_EQ(back, *d) << where << ": " << got;  // exact round trip
  } else {
    EXPECT_EQ(got, ExpectedCsv(cell)) << where;
  }
}

// Checks records (without the BOM) against the report, section by section.
void ExpectCsvMatches(const std::vector<std::vector<std::string>>& records, const Report& r) {
  size_t i = 0;
  auto next = [&]() -> std::vector<std::string> {
    if (i >= records.size()) {
      ADD_FAILURE() << "CSV ends early";
      return {};
    }
    return records[i++];
  };
  EXPECT_EQ(next(), std::vector<std::string>{"Summary"});
  EXPECT_EQ(next(), (std::vector<std::string>{"Metric", "Value"}));
  EXPECT_EQ(next(), (std::vector<std::string>{"Report", r.title}));
  EXPECT_EQ(next(), (std::vector<std::string>{"Period", r.period}));
  for (const auto& [key, value] : r.summary) {
    auto rec = next();
    ASSERT_EQ(rec.size(), 2u) << key;
    EXPECT_EQ(rec[0], key);
    ExpectCsvCell(rec[1], value, key);
  }
  for (const Table& t : r.tables) {
    // An empty line is one record with one empty field.
    EXPECT_EQ(next(), std::vector<std::string>{""}) << "separator before " << t.name;
    EXPECT_EQ(next(), std::vector<std::string>{t.name});
    EXPECT_EQ(next(), t.columns);
    for (size_t row = 0; row < t.rows.size(); ++row) {
      auto rec = next();
      ASSERT_EQ(rec.size(), t.columns.size()) << t.name << " row " << row;
      for (size_t c = 0; c < t.columns.size(); ++c) {
        ExpectCsvCell(rec[c], t.rows[row][c],
                      t.name + "[" + std::to_string(row) + "][" + std::to_string(c) + "]");
      }
    }
  }
  EXPECT_EQ(i, records.size()) << "extra records";
}

TEST(ReportCsv, StrictParserReadsBackEveryValue) {
  Report r = SampleReport();
  Rendered csv = RenderCsv(r);
  ASSERT_TRUE(csv.ok());
  EXPECT_EQ(csv.content_type, "text/csv; charset=utf-8; header=present");
  EXPECT_EQ(csv.filename, "connectors-2026-10-26-2026-11-25.csv");
  ASSERT_EQ(csv.body.rfind("\xEF\xBB\xBF", 0), 0u) << "UTF-8 BOM";
  auto records = ParseCsvStrict(csv.body.substr(3));
  ASSERT_TRUE(records.has_value()) << "not RFC 4180";
  ExpectCsvMatches(*records, r);
  // Spot checks on the raw text.
  EXPECT_NE(csv.body.find("\"payment, \"\"PRO\"\"\""), std::string::npos);
  EXPECT_NE(csv.body.find(",9223372036854775807,-9223372036854775808,1e-07,"), std::string::npos);
  EXPECT_NE(csv.body.find(",9007199254740993,-17,-2.5,0.1,"), std::string::npos);
}

TEST(ReportCsv, PythonCsvModuleAgrees) {
  Report r = SampleReport();
  bpmc::testing::TempDir dir("bpmc-report");
  std::string file = WriteFile(dir, "r.csv", RenderCsv(r).body);
  std::string script = WriteFile(dir, "read.py",
                                 "import csv, json, sys\n"
                                 "with open(sys.argv[1], encoding='utf-8-sig', newline='') as f:\n"
                                 "    rows = list(csv.reader(f, strict=True))\n"
                                 "print(json.dumps(rows))\n");
  std::string out = Shell(std::string(kPython) + " " + script + " " + file);
  ASSERT_FALSE(out.empty());
  json rows = json::parse(out);
  std::vector<std::vector<std::string>> records;
  for (const auto& row : rows) {
    std::vector<std::string> rec = row.get<std::vector<std::string>>();
    records.push_back(rec.empty() ? std::vector<std::string>{""} : rec);  // csv: [] for ""
  }
  ExpectCsvMatches(records, r);
}

TEST(ReportCsv, EdgeCases) {
  Report r;
  r.title = "";
  Table t;
  t.name = "one";
  t.columns = {"x"};
  t.rows = {{Cell()}, {""}, {"a"}, {}};
  r.tables = {t};
  std::string body = RenderCsv(r).body;
  // A record that would be an empty line is written as "" so that empty lines
  // only separate sections.
  EXPECT_EQ(body,
            "\xEF\xBB\xBFSummary\r\nMetric,Value\r\nReport,\r\nPeriod,\r\n"
            "\r\none\r\nx\r\n\"\"\r\n\"\"\r\na\r\n\"\"\r\n");
  // Invalid UTF-8 becomes U+FFFD; NaN and infinity are empty fields.
  Report bad;
  bad.summary = {{"k\xFF", std::nan("")}, {"inf", std::numeric_limits<double>::infinity()}};
  EXPECT_NE(RenderCsv(bad).body.find("k\xEF\xBF\xBD,\r\ninf,\r\n"), std::string::npos);
  EXPECT_EQ(RenderCsv(bad).filename, "report.csv");
}

// ---------------------------------------------------------------------------
// XLSX

// Dumps every sheet as JSON: {"sheets": [names], "cells": {name: [[{"t","v"}]]},
// "charts": n}. "t" is openpyxl's data_type: "n" numeric, "s" string.
constexpr const char* kXlsxDump = R"(import json, sys, zipfile
import openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = {"sheets": wb.sheetnames, "cells": {}}
for ws in wb.worksheets:
    rows = []
    for row in ws.iter_rows():
        rows.append([None if c.value is None else {"t": c.data_type, "v": c.value} for c in row])
    out["cells"][ws.title] = rows
out["charts"] = len([n for n in zipfile.ZipFile(sys.argv[1]).namelist()
                     if n.startswith("xl/charts/chart")])
print(json.dumps(out, ensure_ascii=False))
)";

json DumpXlsx(const std::string& body) {
  bpmc::testing::TempDir dir("bpmc-report");
  std::string file = WriteFile(dir, "r.xlsx", body);
  std::string script = WriteFile(dir, "dump.py", kXlsxDump);
  std::string out = Shell(std::string(kPython) + " " + script + " " + file);
  if (out.empty()) return json();
  return json::parse(out);
}

void ExpectXlsxCell(const json& got, const Cell& cell, const std::string& where) {
  if (auto* i = std::get_if<int64_t>(&cell.v)) {
    ASSERT_FALSE(got.is_null()) << where;
    if (*i >= -kExactMax && *i <= kExactMax) {
      EXPECT_EQ(got["t"], "n") << where;
      ASSERT_TRUE(got["v"].is_number()) << where;
      EXPECT_EQ(got["v"].get<double>(), static_cast<double>(*i)) << where;
    } else {  // beyond 2^53: kept exact as text
      EXPECT_EQ(got["t"], "s") << where;
      EXPECT_EQ(got["v"], std::to_string(*i)) << where;
    }
  } else if (auto* d = std::get_if<double>(&cell.v)) {
    ASSERT_FALSE(got.is_null()) << where;
    EXPECT_EQ(got["t"], "n") << where;
    ASSERT_TRUE(got["v"].is_number()) << where;
    EXPECT_EQ(got["v"].get<double>(), *d) << where;  // exact
  } else if (auto* s = std::get_if<std::string>(&cell.v); s != nullptr && !s->empty()) {
    ASSERT_FALSE(got.is_null()) << where;
    EXPECT_EQ(got["t"], "s") << where;  // never a formula
    // Line breaks are stored as LF, as Excel writes them.
    std::string want = *s;
    for (size_t p; (p = want.find("\r\n")) != std::string::npos;) want.replace(p, 2, "\n");
    std::replace(want.begin(), want.end(), '\r', '\n');
    EXPECT_EQ(got["v"], want) << where;
  } else {
    EXPECT_TRUE(got.is_null()) << where << ": " << got.dump();
  }
}

TEST(ReportXlsx, OpenpyxlReadsNumbersAsNumbers) {
  Report r = SampleReport();
  Rendered x = RenderXlsx(r);
  ASSERT_TRUE(x.ok()) << x.error;
  EXPECT_EQ(x.content_type, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
  EXPECT_EQ(x.filename, "connectors-2026-10-26-2026-11-25.xlsx");
  json dump = DumpXlsx(x.body);
  ASSERT_TRUE(dump.is_object());

  // One sheet per table after the summary; names sanitised, ≤ 31 characters.
  EXPECT_EQ(dump["sheets"],
            json::array({"Summary", "Коннекторы", "По дням", "Ошибки_ _топ_150___"}));
  EXPECT_EQ(dump["charts"], 2);

  const json& summary = dump["cells"]["Summary"];
  EXPECT_EQ(summary[0][0]["v"], r.title);
  EXPECT_EQ(summary[1][0]["v"], r.period);
  EXPECT_EQ(summary[3][0]["v"], "Metric");
  EXPECT_EQ(summary[3][1]["v"], "Value");
  for (size_t i = 0; i < r.summary.size(); ++i) {
    EXPECT_EQ(summary[4 + i][0]["v"], r.summary[i].first);
    ExpectXlsxCell(summary[4 + i][1], r.summary[i].second, r.summary[i].first);
  }

  for (size_t t = 0; t < r.tables.size(); ++t) {
    const Table& table = r.tables[t];
    const json& cells = dump["cells"][dump["sheets"][t + 1].get<std::string>()];
    ASSERT_EQ(cells.size(), table.rows.size() + 1) << table.name;
    for (size_t c = 0; c < table.columns.size(); ++c) {
      EXPECT_EQ(cells[0][c]["v"], table.columns[c]);
    }
    for (size_t row = 0; row < table.rows.size(); ++row) {
      for (size_t c = 0; c < table.columns.size(); ++c) {
        ExpectXlsxCell(cells[row + 1][c], table.rows[row][c],
                       table.name + "[" + std::to_string(row) + "][" + std::to_string(c) + "]");
      }
    }
  }
}

TEST(ReportXlsx, SheetNamesAreValidAndUnique) {
  Report r;
  r.title = "t";
  for (const char* name :
       {"Summary", "summary", "", "History", "a'b", "Очень длинное название таблицы для листа",
        "Очень длинное название таблицы для листа", "x\xFFy"}) {
    Table t;
    t.name = name;
    t.columns = {"v"};
    t.rows = {{1}};
    r.tables.push_back(t);
  }
  r.charts = {{"missing", "nope", 0, {1}, Chart::kLine},
              {"bad column", "Summary", 5, {9}, Chart::kBar}};
  Rendered x = RenderXlsx(r);
  ASSERT_TRUE(x.ok()) << x.error;
  json dump = DumpXlsx(x.body);
  ASSERT_TRUE(dump.is_object());
  EXPECT_EQ(dump["sheets"], json::array({"Summary", "Summary (2)", "summary (3)", "Sheet",
                                         "History_", "a_b", "Очень длинное название таблицы ",
                                         "Очень длинное название табл (2)", "x\xEF\xBF\xBDy"}));
  EXPECT_EQ(dump["charts"], 0);
}

TEST(ReportXlsx, EmptyReport) {
  Rendered x = RenderXlsx(Report{});
  ASSERT_TRUE(x.ok()) << x.error;
  json dump = DumpXlsx(x.body);
  ASSERT_TRUE(dump.is_object());
  EXPECT_EQ(dump["sheets"], json::array({"Summary"}));
  EXPECT_EQ(x.filename, "report.xlsx");
}

// ---------------------------------------------------------------------------
// PDF

std::string PdfText(const std::string& body, const std::string& options = "") {
  bpmc::testing::TempDir dir("bpmc-report");
  std::string file = WriteFile(dir, "r.pdf", body);
  return Shell("pdftotext -enc UTF-8 " + options + " " + file + " -");
}

// pdftotext text with the thousands separators (thin spaces, which pdftotext
// prints as plain spaces) removed: a space between two digits is dropped.
std::string Squeeze(const std::string& text) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ' ' && !out.empty() && digit(out.back()) && i + 1 < text.size() &&
        digit(text[i + 1])) {
      continue;
    }
    out += text[i];
  }
  return out;
}

// The number as the PDF shows it, without separators.
std::string PdfNumber(const Cell& cell) {
  if (auto* i = std::get_if<int64_t>(&cell.v)) return std::to_string(*i);
  double d = std::get<double>(cell.v);
  char buf[64];
  if (std::fabs(d) >= 1 || d == 0)
    std::snprintf(buf, sizeof(buf), "%.2f", d);
  else
    std::snprintf(buf, sizeof(buf), "%.4g", d);
  return buf;
}

TEST(ReportPdf, PdftotextFindsTitlePeriodAndNumbers) {
  Report r = SampleReport();
  Rendered pdf = RenderPdf(r);
  ASSERT_TRUE(pdf.ok()) << pdf.error;
  EXPECT_EQ(pdf.content_type, "application/pdf");
  EXPECT_EQ(pdf.filename, "connectors-2026-10-26-2026-11-25.pdf");
  ASSERT_EQ(pdf.body.rfind("%PDF-", 0), 0u);

  // BPMC_REPORT_TEST_OUT=dir keeps the sample exports for a look by eye.
  if (const char* out = std::getenv("BPMC_REPORT_TEST_OUT")) {
    std::ofstream(std::string(out) + "/sample.pdf", std::ios::binary) << pdf.body;
    std::ofstream(std::string(out) + "/sample.csv", std::ios::binary) << RenderCsv(r).body;
    std::ofstream(std::string(out) + "/sample.xlsx", std::ios::binary) << RenderXlsx(r).body;
  }
  std::string text = PdfText(pdf.body);
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text.find("Отчёт по коннекторам «BPM Centr»"), std::string::npos) << text;
  EXPECT_NE(text.find(r.period), std::string::npos);
  for (const Table& t : r.tables) EXPECT_NE(text.find(t.name), std::string::npos) << t.name;
  for (const Chart& c : r.charts) EXPECT_NE(text.find(c.title), std::string::npos) << c.title;
  EXPECT_NE(text.find("Активные пользователи"), std::string::npos);

  // Every number of the summary and the tables, in the text of the page.
  std::string squeezed = Squeeze(PdfText(pdf.body, "-layout"));
  for (const auto& [key, value] : r.summary) {
    if (std::holds_alternative<std::string>(value.v)) continue;
    EXPECT_NE(squeezed.find(PdfNumber(value)), std::string::npos) << key << " " << PdfNumber(value);
  }
  for (const Table& t : r.tables) {
    for (const auto& row : t.rows) {
      for (const Cell& cell : row) {
        if (std::holds_alternative<int64_t>(cell.v) || std::holds_alternative<double>(cell.v)) {
          EXPECT_NE(squeezed.find(PdfNumber(cell)), std::string::npos)
              << t.name << " " << PdfNumber(cell);
        }
      }
    }
  }
  // Long cells are cut with an ellipsis, pages are numbered.
  size_t long_cell = text.find("очень длинный текст очень");
  ASSERT_NE(long_cell, std::string::npos);
  EXPECT_LT(text.find("…", long_cell), text.find("\n", long_cell));
  EXPECT_NE(text.find("Page 1 of "), std::string::npos);
}

TEST(ReportPdf, PagesAreA4AndWideTablesAreLandscape) {
  Report r;
  r.title = "Широкая таблица";
  Table wide;
  wide.name = "wide";
  for (int c = 0; c < 14; ++c) wide.columns.push_back("Колонка номер " + std::to_string(c));
  for (int i = 0; i < 5; ++i) {
    std::vector<Cell> row;
    for (int c = 0; c < 14; ++c) row.emplace_back(int64_t{1000000} * i + c);
    wide.rows.push_back(row);
  }
  r.tables = {wide};
  bpmc::testing::TempDir dir("bpmc-report");
  std::string file = WriteFile(dir, "w.pdf", RenderPdf(r).body);
  std::string info = Shell("pdfinfo -f 1 -l 2 " + file);
  size_t pages_at = info.find("Pages:");
  ASSERT_NE(pages_at, std::string::npos) << info;
  EXPECT_EQ(std::atoi(info.c_str() + pages_at + 6), 2) << info;
  EXPECT_NE(info.find("Page    1 size:  595.276 x 841.89 pts (A4)"), std::string::npos) << info;
  EXPECT_NE(info.find("Page    2 size:  841.89 x 595.276 pts (A4)"), std::string::npos) << info;
  std::string text = Shell("pdftotext -enc UTF-8 " + file + " -");
  EXPECT_NE(text.find("Page 2 of 2"), std::string::npos);
}

TEST(ReportPdf, LongTablesPaginateAndAreCapped) {
  Report r;
  r.title = "Long";
  Table t;
  t.name = "rows";
  t.columns = {"n", "label"};
  for (int i = 0; i < 2100; ++i) t.rows.push_back({i, "row " + std::to_string(i)});
  r.tables = {t};
  Rendered pdf = RenderPdf(r);
  ASSERT_TRUE(pdf.ok()) << pdf.error;
  std::string text = PdfText(pdf.body);
  EXPECT_NE(text.find("row 1999"), std::string::npos);
  EXPECT_EQ(text.find("row 2000"), std::string::npos);
  EXPECT_NE(text.find("100 more rows are not shown"), std::string::npos);
  EXPECT_NE(text.find("rows (continued)"), std::string::npos);
}

TEST(ReportPdf, SurvivesHostileInput) {
  Report r;
  r.title = std::string("bad \xC3\x28 utf8\n\t\x01 title");
  r.period = "";
  r.summary = {{"nan", std::nan("")}, {"inf", -std::numeric_limits<double>::infinity()}};
  Table empty;
  empty.name = "empty";
  Table ragged;
  ragged.name = "ragged";
  ragged.columns = {"a"};
  ragged.rows = {{1, 2, 3}, {}, {"x\xFF"}};
  Table constant;
  constant.name = "constant";
  constant.columns = {"x", "y"};
  constant.rows = {{"a", 5}, {"b", 5}};
  Table extremes;
  extremes.name = "extremes";
  extremes.columns = {"k", "v"};
  extremes.rows = {{"max", kBig}, {"min", kSmall}, {"tiny", 1e-300}, {"huge", -1e300}};
  r.tables = {empty, ragged, constant, extremes};
  r.charts = {{"missing table", "nope", 0, {1}, Chart::kLine},
              {"no numbers", "ragged", 0, {0}, Chart::kBar},
              {"flat", "constant", 0, {1}, Chart::kLine},
              {"flat bars", "constant", 0, {1}, Chart::kBar},
              {"bad columns", "constant", 7, {9}, Chart::kLine},
              {"extremes", "extremes", 0, {1}, Chart::kBar}};
  for (auto render : {RenderPdf, RenderXlsx, RenderCsv}) {
    Rendered out = render(r);
    EXPECT_TRUE(out.ok()) << out.error;
    EXPECT_FALSE(out.body.empty());
  }
  std::string text = PdfText(RenderPdf(r).body);
  EXPECT_NE(text.find("No data"), std::string::npos);
  EXPECT_NE(text.find("bad \xEF\xBF\xBD( utf8"), std::string::npos) << text;
}

TEST(Report, RendersOnSeveralThreadsAtOnce) {
  const Report r = SampleReport();
  const std::string csv = RenderCsv(r).body;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&]() {
      for (int i = 0; i < 3; ++i) {
        if (RenderCsv(r).body != csv) ++failures;
        Rendered x = RenderXlsx(r);
        if (!x.ok() || x.body.rfind("PK", 0) != 0) ++failures;
        Rendered p = RenderPdf(r);
        if (!p.ok() || p.body.rfind("%PDF-", 0) != 0) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---------------------------------------------------------------------------
// Format negotiation

TEST(ChooseFormat, Table) {
  constexpr const char* kXlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
  struct Case {
    std::string format;
    std::string accept;
    int status;  // 0 = a format
    ExportFormat want;
  };
  const Case cases[] = {
      {"", "", 0, ExportFormat::kJson},
      {"json", "", 0, ExportFormat::kJson},
      {"csv", "", 0, ExportFormat::kCsv},
      {"XLSX", "", 0, ExportFormat::kXlsx},
      {" pdf ", "", 0, ExportFormat::kPdf},
      {"csv", "application/pdf", 0, ExportFormat::kCsv},  // the parameter wins
      {"csv", "image/png", 0, ExportFormat::kCsv},
      {"xls", "", 400, ExportFormat::kJson},
      {"html", "application/json", 400, ExportFormat::kJson},
      {"", "*/*", 0, ExportFormat::kJson},
      {"", "*", 0, ExportFormat::kJson},
      {"", "application/json", 0, ExportFormat::kJson},
      {"", "text/csv", 0, ExportFormat::kCsv},
      {"", "TEXT/CSV; charset=utf-8", 0, ExportFormat::kCsv},
      {"", kXlsx, 0, ExportFormat::kXlsx},
      {"", "application/pdf", 0, ExportFormat::kPdf},
      {"", "text/*", 0, ExportFormat::kCsv},
      {"", "application/*", 0, ExportFormat::kJson},
      {"", "application/*;q=0.5, application/pdf", 0, ExportFormat::kPdf},
      {"", "text/csv;q=0.5, application/pdf;q=0.9", 0, ExportFormat::kPdf},
      {"", "text/csv;q=1.0, application/pdf;q=0.9", 0, ExportFormat::kCsv},
      {"", "application/pdf, text/csv", 0, ExportFormat::kPdf},  // equal q: first listed
      {"", "*/*;q=0.8, text/csv", 0, ExportFormat::kCsv},
      {"", "*/*, text/csv", 0, ExportFormat::kCsv},  // exact beats wildcard at equal q
      {"", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 0,
       ExportFormat::kJson},  // a browser
      {"", "application/json;q=0, */*", 0, ExportFormat::kCsv},
      {"", "*/*;q=0.1, application/json;q=0", 0, ExportFormat::kCsv},
      {"", "text/html", 406, ExportFormat::kJson},
      {"", "image/png, text/html;q=0.9", 406, ExportFormat::kJson},
      {"", "application/json;q=0", 406, ExportFormat::kJson},
      {"", "*/*;q=0", 406, ExportFormat::kJson},
      {"", "text/csv;q=2", 406, ExportFormat::kJson},    // invalid q: range ignored
      {"", "text/csv;q=abc", 406, ExportFormat::kJson},  // invalid q: range ignored
      {"", "text/csv;q=0.001", 0, ExportFormat::kCsv},
      {"", "garbage, text/csv", 0, ExportFormat::kCsv},
      {"", "application/pdf;foo=\"a,b\";q=0.5, text/csv;q=0.4", 0, ExportFormat::kPdf},
      {"", "text/csv;q=0.5;ext=1, application/json;q=0.4", 0, ExportFormat::kCsv},
      {"", " , ", 406, ExportFormat::kJson},
  };
  for (const Case& c : cases) {
    auto got = ChooseFormat(c.format, c.accept);
    std::string what = "format='" + c.format + "' accept='" + c.accept + "'";
    if (c.status == 0) {
      ASSERT_TRUE(std::holds_alternative<ExportFormat>(got)) << what;
      EXPECT_EQ(std::get<ExportFormat>(got), c.want) << what;
    } else {
      ASSERT_TRUE(std::holds_alternative<RequestError>(got)) << what;
      const RequestError& e = std::get<RequestError>(got);
      EXPECT_EQ(e.http_status, c.status) << what;
      EXPECT_EQ(e.field, c.status == 400 ? "format" : "Accept") << what;
      EXPECT_FALSE(e.message.empty());
    }
  }
}

TEST(ReportFiles, NamesAndContentDisposition) {
  Report r;
  r.title = "Обзор: connectors / 2026";
  EXPECT_EQ(RenderCsv(r).filename, "connectors-2026.csv");
  r.file_stem = "../etc/passwd";
  EXPECT_EQ(RenderCsv(r).filename, "etc-passwd.csv");
  r.file_stem = "a b\"c";
  EXPECT_EQ(RenderCsv(r).filename, "a-b-c.csv");
  EXPECT_EQ(ContentDisposition("x.csv"), "attachment; filename=\"x.csv\"");
  EXPECT_EQ(ContentDisposition("a\"b\\c\xD0\x96.pdf"), "attachment; filename=\"a_b_c__.pdf\"");
}

}  // namespace
}  // namespace bpmc::report
