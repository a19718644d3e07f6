// PDF rendering of a Report with cairo (layout documented in report.h).
//
// The document is laid out twice: the first pass, into a discarding sink, only
// counts the pages so that the second can print "page N of M" in the footers.
// Text goes through cairo's toy font API with DejaVu Sans (fonts-dejavu-core),
// which covers Latin and Cyrillic; fontconfig substitutes a similar font if it
// is missing, which may lose Cyrillic glyphs (the unit test checks it).

#include <cairo-pdf.h>
#include <cairo.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pdf_text.h"
#include "report/report.h"
#include "report_internal.h"

namespace bpmc::report {

namespace {

using pdf_internal::AxisLabel;
using pdf_internal::ColumnWidths;
using pdf_internal::Display;
using pdf_internal::GroupThousands;
using pdf_internal::IsNumber;
using pdf_internal::kMinColumnWidth;
using pdf_internal::NiceStep;
using pdf_internal::NumberOf;
using pdf_internal::Printable;
using report_internal::FormatInt;

constexpr double kA4Short = 595.276;  // points
constexpr double kA4Long = 841.890;
constexpr double kMargin = 42;  // about 15 mm
constexpr double kFooter = 26;  // reserved above the bottom margin
constexpr double kBlockGap = 20;
constexpr size_t kMaxPdfRows = 2000;
constexpr const char* kFontFamily = "DejaVu Sans";
constexpr const char* kEllipsis = "\xE2\x80\xA6";
constexpr const char* kNoData = "No data";

struct Rgb {
  double r, g, b;
};
constexpr Rgb Hex(unsigned v) {
  return {((v >> 16) & 0xFF) / 255.0, ((v >> 8) & 0xFF) / 255.0, (v & 0xFF) / 255.0};
}
constexpr Rgb kInk = Hex(0x111827);
constexpr Rgb kMuted = Hex(0x6B7280);
constexpr Rgb kAccent = Hex(0x2563EB);
constexpr Rgb kRule = Hex(0xE5E7EB);
constexpr Rgb kAxis = Hex(0x9CA3AF);
constexpr Rgb kHeaderFill = Hex(0x1F2937);
constexpr Rgb kWhite = Hex(0xFFFFFF);
constexpr Rgb kZebra = Hex(0xF3F4F6);
constexpr Rgb kCard = Hex(0xF3F4F6);
constexpr Rgb kPalette[] = {Hex(0x2563EB), Hex(0xF59E0B), Hex(0x10B981), Hex(0xEF4444),
                            Hex(0x8B5CF6), Hex(0x06B6D4), Hex(0xEC4899), Hex(0x84CC16)};

cairo_status_t AppendToString(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

cairo_status_t Discard(void*, const unsigned char*, unsigned int) { return CAIRO_STATUS_SUCCESS; }

enum class Align { kLeft, kRight, kCenter };

class PdfWriter {
 public:
  PdfWriter(cairo_surface_t* surface, const Report& report, int total_pages)
      : surface_(surface),
        cr_(cairo_create(surface)),
        regular_(cairo_toy_font_face_create(kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                                            CAIRO_FONT_WEIGHT_NORMAL)),
        bold_(cairo_toy_font_face_create(kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                                         CAIRO_FONT_WEIGHT_BOLD)),
        report_(report),
        total_pages_(total_pages),
        footer_text_(Printable(report.title)) {
    std::string period = Printable(report.period);
    if (!period.empty()) footer_text_ += (footer_text_.empty() ? "" : "  \xC2\xB7  ") + period;
  }
  ~PdfWriter() {
    cairo_font_face_destroy(bold_);
    cairo_font_face_destroy(regular_);
    cairo_destroy(cr_);
  }
  PdfWriter(const PdfWriter&) = delete;
  PdfWriter& operator=(const PdfWriter&) = delete;

  void Render() {
    StartPage(false);
    DrawTitle();
    DrawSummary();
    for (const Chart& chart : report_.charts) DrawChart(chart);
    for (const Table& table : report_.tables) DrawTable(table);
    FinishPage();
  }

  int pages() const { return page_; }
  cairo_status_t status() const { return cairo_status(cr_); }

 private:
  // --- text ---
  void Font(double size, bool bold) {
    cairo_set_font_face(cr_, bold ? bold_ : regular_);
    cairo_set_font_size(cr_, size);
  }
  void Color(Rgb c) { cairo_set_source_rgb(cr_, c.r, c.g, c.b); }
  double Width(const std::string& s) {
    if (s.empty()) return 0;
    cairo_text_extents_t e;
    cairo_text_extents(cr_, s.c_str(), &e);
    return e.x_advance;
  }
  // `s` cut with an ellipsis to at most `width` points in the current font.
  std::string Fit(const std::string& s, double width) {
    if (Width(s) <= width) return s;
    std::vector<size_t> starts;  // byte offset of every code point
    for (size_t i = 0; i < s.size(); ++i) {
      if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
    }
    size_t lo = 0;
    size_t hi = starts.size();  // prefix of lo code points fits; hi does not
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      if (Width(s.substr(0, starts[mid]) + kEllipsis) <= width)
        lo = mid;
      else
        hi = mid;
    }
    if (lo == 0) return Width(kEllipsis) <= width ? kEllipsis : "";
    return s.substr(0, starts[lo]) + kEllipsis;
  }
  void Text(double x, double baseline, const std::string& s, Align align = Align::kLeft) {
    if (s.empty()) return;
    double w = Width(s);
    if (align == Align::kRight) x -= w;
    if (align == Align::kCenter) x -= w / 2;
    cairo_move_to(cr_, x, baseline);
    cairo_show_text(cr_, s.c_str());
  }
  // Words of `s` wrapped into at most `max_lines` lines of `width`; the last one
  // is cut with an ellipsis if needed.
  std::vector<std::string> Wrap(const std::string& s, double width, size_t max_lines) {
    std::vector<std::string> lines;
    std::string line;
    size_t pos = 0;
    while (pos <= s.size()) {
      size_t space = s.find(' ', pos);
      if (space == std::string::npos) space = s.size();
      std::string word = s.substr(pos, space - pos);
      pos = space + 1;
      std::string candidate = line.empty() ? word : line + " " + word;
      if (line.empty() || Width(candidate) <= width) {
        line = candidate;
        continue;
      }
      if (lines.size() + 1 == max_lines) {
        line = candidate + " " + (pos <= s.size() ? s.substr(pos) : "");
        break;
      }
      lines.push_back(line);
      line = word;
    }
    lines.push_back(Fit(line, width));
    return lines;
  }
  void FillRect(double x, double y, double w, double h, Rgb c) {
    Color(c);
    cairo_rectangle(cr_, x, y, w, h);
    cairo_fill(cr_);
  }
  void Line(double x0, double y0, double x1, double y1, Rgb c, double width) {
    Color(c);
    cairo_set_line_width(cr_, width);
    cairo_move_to(cr_, x0, y0);
    cairo_line_to(cr_, x1, y1);
    cairo_stroke(cr_);
  }

  // --- pages ---
  double Left() const { return kMargin; }
  double ContentWidth() const { return page_w_ - 2 * kMargin; }
  double Top() const { return kMargin; }
  double Bottom() const { return page_h_ - kMargin - kFooter; }
  bool Fits(double h) const { return y_ + h <= Bottom(); }
  bool PageEmpty() const { return y_ <= Top(); }

  void SetOrientation(bool landscape) {
    landscape_ = landscape;
    page_w_ = landscape ? kA4Long : kA4Short;
    page_h_ = landscape ? kA4Short : kA4Long;
    cairo_pdf_surface_set_size(surface_, page_w_, page_h_);
  }
  void StartPage(bool landscape) {
    SetOrientation(landscape);
    ++page_;
    y_ = Top();
  }
  void FinishPage() {
    double rule_y = page_h_ - kMargin - 10;
    Line(Left(), rule_y, Left() + ContentWidth(), rule_y, kRule, 0.75);
    Font(7.5, false);
    Color(kMuted);
    std::string page = "Page " + std::to_string(page_);
    if (total_pages_ > 0) page += " of " + std::to_string(total_pages_);
    double page_w = Width(page);
    Text(Left() + ContentWidth(), rule_y + 12, page, Align::kRight);
    Text(Left(), rule_y + 12, Fit(footer_text_, ContentWidth() - page_w - 24));
    cairo_show_page(cr_);
  }
  // Continues on a new page (same orientation) unless `h` points fit.
  void Need(double h) {
    if (!Fits(h) && !PageEmpty()) {
      FinishPage();
      StartPage(landscape_);
    }
  }
  // Moves to a page of the given orientation (a new one unless this one is blank).
  void Orientation(bool landscape) {
    if (landscape == landscape_) return;
    if (PageEmpty()) {
      SetOrientation(landscape);
      y_ = Top();
    } else {
      FinishPage();
      StartPage(landscape);
    }
  }

  // --- blocks ---
  void DrawTitle() {
    Font(20, true);
    Color(kInk);
    std::string title = Printable(report_.title);
    for (const std::string& line : Wrap(title, ContentWidth(), 2)) {
      y_ += 22;
      Text(Left(), y_, line);
      y_ += 4;
    }
    std::string period = Printable(report_.period);
    if (!period.empty()) {
      Font(10.5, false);
      Color(kMuted);
      y_ += 14;
      Text(Left(), y_, Fit(period, ContentWidth()));
    }
    y_ += 12;
    Line(Left(), y_, Left() + ContentWidth(), y_, kRule, 0.75);
    FillRect(Left(), y_ - 1.25, 56, 2.5, kAccent);
    y_ += kBlockGap;
  }

  void DrawSummary() {
    size_t n = report_.summary.size();
    if (n == 0) return;
    size_t cols = n <= 4 ? n : (n % 4 == 0 || n > 8 ? 4 : 3);
    constexpr double kGap = 10;
    constexpr double kCardH = 54;
    constexpr double kPad = 10;
    double card_w =
        (ContentWidth() - kGap * static_cast<double>(cols - 1)) / static_cast<double>(cols);
    for (size_t i = 0; i < n; ++i) {
      size_t col = i % cols;
      if (col == 0) {
        if (i > 0) y_ += kCardH + kGap;
        Need(kCardH);
      }
      double x = Left() + static_cast<double>(col) * (card_w + kGap);
      RoundedRect(x, y_, card_w, kCardH, 4);
      Color(kCard);
      cairo_fill(cr_);
      FillRect(x, y_ + 8, 2.5, kCardH - 16, kAccent);
      const auto& [key, value] = report_.summary[i];
      Font(8, false);
      Color(kMuted);
      Text(x + kPad + 2, y_ + 18, Fit(Printable(key), card_w - 2 * kPad));
      std::string shown = Display(value);
      if (shown.empty()) shown = "\xE2\x80\x94";  // an em dash for "no value"
      double size = 16;
      Font(size, true);
      while (size > 10 && Width(shown) > card_w - 2 * kPad) {
        size -= 1;
        Font(size, true);
      }
      Color(kInk);
      Text(x + kPad + 2, y_ + 41, Fit(shown, card_w - 2 * kPad));
    }
    y_ += kCardH + kBlockGap;
  }

  void RoundedRect(double x, double y, double w, double h, double r) {
    const double kPi = 3.14159265358979323846;
    cairo_new_sub_path(cr_);
    cairo_arc(cr_, x + w - r, y + r, r, -kPi / 2, 0);
    cairo_arc(cr_, x + w - r, y + h - r, r, 0, kPi / 2);
    cairo_arc(cr_, x + r, y + h - r, r, kPi / 2, kPi);
    cairo_arc(cr_, x + r, y + r, r, kPi, 3 * kPi / 2);
    cairo_close_path(cr_);
  }

  void Heading(const std::string& text, const std::string& note) {
    Font(12, true);
    Color(kInk);
    y_ += 13;
    std::string shown = Fit(Printable(text), ContentWidth() * 0.75);
    Text(Left(), y_, shown);
    if (!note.empty()) {
      double x = Left() + Width(shown) + 8;
      Font(8.5, false);
      Color(kMuted);
      Text(x, y_, Fit(note, Left() + ContentWidth() - x));
    }
    y_ += 9;
  }

  // The chart's series from its table: one per value column, NaN for a missing cell.
  struct ChartData {
    std::vector<std::string> labels;
    std::vector<std::vector<double>> series;
    std::vector<std::string> names;
  };

  ChartData ChartSeries(const Chart& chart) const {
    ChartData d;
    const Table* table = nullptr;
    for (const Table& t : report_.tables) {
      if (t.name == chart.table) {
        table = &t;
        break;
      }
    }
    if (table == nullptr) return d;
    for (size_t c : chart.value_columns) {
      if (c >= table->columns.size()) continue;
      d.names.push_back(Printable(table->columns[c]));
      std::vector<double> values;
      for (const auto& row : table->rows) values.push_back(c < row.size() ? NumberOf(row[c]) : NAN);
      d.series.push_back(std::move(values));
    }
    if (!d.series.empty()) {
      for (const auto& row : table->rows) {
        d.labels.push_back(chart.label_column < row.size() ? Display(row[chart.label_column]) : "");
      }
    }
    return d;
  }

  // The value axis: ticks k_lo*step .. k_hi*step, always including 0 so the step is never
  // small against the values. nullopt when there is nothing finite to draw or the scale
  // would need more than 20 ticks.
  struct ValueAxis {
    double step = 1;
    double k_lo = 0;
    double k_hi = 0;
  };

  static std::optional<ValueAxis> ChooseAxis(const std::vector<std::vector<double>>& series) {
    double lo = 0;
    double hi = 0;
    bool any = false;
    for (const auto& values : series) {
      for (double v : values) {
        if (!std::isfinite(v)) continue;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        any = true;
      }
    }
    if (hi == lo) hi = lo + 1;
    ValueAxis axis;
    axis.step = NiceStep((hi - lo) / 5);
    const bool scalable = std::isfinite(hi - lo) && std::isfinite(axis.step) && axis.step > 0;
    axis.k_lo = scalable ? std::floor(lo / axis.step) : 0;
    axis.k_hi = scalable ? std::ceil(hi / axis.step) : 0;
    if (!any || !scalable || axis.k_hi - axis.k_lo > 20) return std::nullopt;
    return axis;
  }

  // Where the plot is on the page and how values and label indices map into it.
  struct PlotArea {
    double x = 0, y = 0, w = 0, h = 0;
    double axis_lo = 0, axis_hi = 1;
    double band = 0;  // width per label
    double YOf(double v) const { return y + h - (v - axis_lo) / (axis_hi - axis_lo) * h; }
    double XOf(size_t i) const { return x + (static_cast<double>(i) + 0.5) * band; }
  };

  void DrawChart(const Chart& chart) {
    constexpr double kPlotH = 190;
    constexpr double kBlockH = 22 + kPlotH + 16 + 22;
    Need(kBlockH);
    Heading(chart.title, "");
    const ChartData data = ChartSeries(chart);
    const std::optional<ValueAxis> axis = ChooseAxis(data.series);
    const double top = y_ + 6;
    if (!axis) {
      FillRect(Left(), top, ContentWidth(), kPlotH, kZebra);
      Font(10, false);
      Color(kMuted);
      Text(Left() + ContentWidth() / 2, top + kPlotH / 2 + 4, kNoData, Align::kCenter);
      y_ = top + kPlotH + kBlockGap;
      return;
    }
    PlotArea plot = DrawValueTicks(*axis, top, kPlotH);
    plot.band = plot.w / static_cast<double>(data.labels.size());
    DrawLabels(plot, data.labels);
    const double zero_y = plot.YOf(std::clamp(0.0, plot.axis_lo, plot.axis_hi));
    if (chart.kind == Chart::kBar) {
      DrawBars(plot, data.series, zero_y);
    } else {
      DrawLines(plot, data.series);
    }
    Line(plot.x, zero_y, plot.x + plot.w, zero_y, kAxis, 0.8);
    DrawLegend(plot, data.names);
  }

  // The value ticks and their grid lines; returns the plot area right of their labels.
  PlotArea DrawValueTicks(const ValueAxis& axis, double top, double height) {
    Font(7.5, false);
    std::vector<std::pair<double, std::string>> ticks;
    double label_w = 0;
    for (double k = axis.k_lo; k <= axis.k_hi; k += 1) {
      ticks.emplace_back(k * axis.step, AxisLabel(k * axis.step, axis.step));
      label_w = std::max(label_w, Width(ticks.back().second));
    }
    label_w = std::min(label_w, ContentWidth() / 4);
    PlotArea plot;
    plot.x = Left() + label_w + 8;
    plot.w = Left() + ContentWidth() - plot.x;
    plot.y = top;
    plot.h = height;
    plot.axis_lo = axis.k_lo * axis.step;
    plot.axis_hi = axis.k_hi * axis.step;
    for (const auto& [v, text] : ticks) {
      double y = plot.YOf(v);
      Line(plot.x, y, plot.x + plot.w, y, v == 0 ? kAxis : kRule, v == 0 ? 0.8 : 0.5);
      Color(kMuted);
      Text(plot.x - 6, y + 2.5, text, Align::kRight);
    }
    return plot;
  }

  // X labels, thinned to what fits.
  void DrawLabels(const PlotArea& plot, const std::vector<std::string>& labels) {
    double widest = 0;
    for (const std::string& l : labels) widest = std::max(widest, std::min(Width(l), 90.0));
    size_t every = std::max<size_t>(1, static_cast<size_t>(std::ceil((widest + 10) / plot.band)));
    Color(kMuted);
    for (size_t i = 0; i < labels.size(); i += every) {
      std::string l = Fit(labels[i], plot.band * static_cast<double>(every) - 6);
      double w = Width(l);
      double x = std::clamp(plot.XOf(i), plot.x + w / 2, plot.x + plot.w - w / 2);
      Text(x, plot.y + plot.h + 11, l, Align::kCenter);
    }
  }

  void DrawBars(const PlotArea& plot, const std::vector<std::vector<double>>& series,
                double zero_y) {
    double group = plot.band * 0.72;
    double bar = group / static_cast<double>(series.size());
    for (size_t s = 0; s < series.size(); ++s) {
      Color(kPalette[s % std::size(kPalette)]);
      for (size_t i = 0; i < series[s].size(); ++i) {
        double v = series[s][i];
        if (!std::isfinite(v)) continue;
        double x = plot.XOf(i) - group / 2 + bar * static_cast<double>(s);
        double y = plot.YOf(v);
        cairo_rectangle(cr_, x + bar * 0.06, std::min(y, zero_y), bar * 0.88,
                        std::max(std::fabs(zero_y - y), 0.4));
      }
      cairo_fill(cr_);
    }
  }

  // Lines broken where a value is missing, with dots when there are few points.
  void DrawLines(const PlotArea& plot, const std::vector<std::vector<double>>& series) {
    for (size_t s = 0; s < series.size(); ++s) {
      const std::vector<double>& values = series[s];
      const size_t n = values.size();
      Color(kPalette[s % std::size(kPalette)]);
      cairo_set_line_width(cr_, 1.6);
      cairo_set_line_join(cr_, CAIRO_LINE_JOIN_ROUND);
      bool drawing = false;
      for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(values[i])) {
          drawing = false;
          continue;
        }
        if (drawing)
          cairo_line_to(cr_, plot.XOf(i), plot.YOf(values[i]));
        else
          cairo_move_to(cr_, plot.XOf(i), plot.YOf(values[i]));
        drawing = true;
      }
      cairo_stroke(cr_);
      if (n > 62) continue;
      for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(values[i])) continue;
        cairo_new_sub_path(cr_);
        cairo_arc(cr_, plot.XOf(i), plot.YOf(values[i]), n <= 31 ? 2.4 : 1.6, 0,
                  2 * 3.14159265358979323846);
      }
      cairo_fill(cr_);
    }
  }

  void DrawLegend(const PlotArea& plot, const std::vector<std::string>& names) {
    double ly = plot.y + plot.h + 26;
    double lx = plot.x;
    Font(8, false);
    for (size_t s = 0; s < names.size(); ++s) {
      std::string name = Fit(names[s], 160);
      double w = 14 + Width(name) + 16;
      if (lx + w > Left() + ContentWidth() && lx > plot.x) break;
      FillRect(lx, ly - 7, 9, 9, kPalette[s % std::size(kPalette)]);
      Color(kInk);
      Text(lx + 13, ly, name);
      lx += w;
    }
    y_ = ly + kBlockGap;
  }

  // A table's text as shown and its column widths on the page.
  static constexpr double kCellFont = 8;
  static constexpr double kRowH = 15;
  static constexpr double kCellPad = 5;
  struct TableLayout {
    size_t ncols = 0;
    size_t shown_rows = 0;
    std::vector<std::string> headers;
    std::vector<std::vector<std::string>> cells;
    std::vector<bool> numeric;  // right-aligned: every shown value is a number
    std::vector<double> widths;
    double width = 0;
  };

  // Measures the cells, picks the orientation (landscape when the table does not fit
  // portrait even with its long text columns cut to 40 % of the width) and the widths.
  TableLayout LayOut(const Table& table) {
    TableLayout t;
    t.ncols = table.columns.size();
    for (const auto& row : table.rows) t.ncols = std::max(t.ncols, row.size());
    t.shown_rows = std::min(table.rows.size(), kMaxPdfRows);
    t.headers.assign(t.ncols, "");
    t.numeric.assign(t.ncols, false);
    std::vector<double> natural(t.ncols, kMinColumnWidth);
    Font(kCellFont, true);
    for (size_t c = 0; c < table.columns.size(); ++c) {
      t.headers[c] = Printable(table.columns[c]);
      natural[c] = std::max(natural[c], Width(t.headers[c]) + 2 * kCellPad);
    }
    t.cells.assign(t.shown_rows, std::vector<std::string>(t.ncols));
    Font(kCellFont, false);
    for (size_t r = 0; r < t.shown_rows; ++r) {
      const auto& row = table.rows[r];
      for (size_t c = 0; c < row.size(); ++c) {
        t.cells[r][c] = Display(row[c]);
        if (IsNumber(row[c])) t.numeric[c] = true;
        natural[c] = std::max(natural[c], Width(t.cells[r][c]) + 2 * kCellPad);
      }
    }
    for (size_t c = 0; c < t.ncols; ++c) {
      for (size_t r = 0; r < t.shown_rows && t.numeric[c]; ++r) {
        const auto& row = table.rows[r];
        if (c < row.size() && std::holds_alternative<std::string>(row[c].v)) t.numeric[c] = false;
      }
    }
    double capped_total = 0;
    for (double w : natural) capped_total += std::min(w, 0.4 * (kA4Short - 2 * kMargin));
    Orientation(capped_total > kA4Short - 2 * kMargin);
    t.widths = ColumnWidths(natural, t.numeric, ContentWidth());
    for (double w : t.widths) t.width += w;
    return t;
  }

  // One row of text cells at y_ (numbers right-aligned), `baseline` below its top.
  void DrawCells(const TableLayout& t, const std::vector<std::string>& texts, double baseline) {
    double x = Left();
    for (size_t c = 0; c < t.ncols; ++c) {
      std::string text = Fit(texts[c], t.widths[c] - 2 * kCellPad);
      if (t.numeric[c])
        Text(x + t.widths[c] - kCellPad, y_ + baseline, text, Align::kRight);
      else
        Text(x + kCellPad, y_ + baseline, text);
      x += t.widths[c];
    }
  }

  void DrawHeaderRow(const TableLayout& t) {
    FillRect(Left(), y_, t.width, kRowH + 2, kHeaderFill);
    Font(kCellFont, true);
    Color(kWhite);
    DrawCells(t, t.headers, 11);
    y_ += kRowH + 2;
  }

  void DrawTable(const Table& table) {
    const TableLayout t = LayOut(table);
    const std::string note =
        std::to_string(table.rows.size()) + (table.rows.size() == 1 ? " row" : " rows");
    Need(22 + kRowH + 2 + 3 * kRowH);
    Heading(table.name, note);
    y_ += 4;
    DrawHeaderRow(t);
    if (t.ncols == 0 || t.shown_rows == 0) {
      Font(kCellFont, false);
      Color(kMuted);
      Text(Left() + kCellPad, y_ + 11, kNoData);
      y_ += kRowH;
    }
    for (size_t r = 0; r < t.shown_rows; ++r) {
      if (!Fits(kRowH)) {
        FinishPage();
        StartPage(landscape_);
        Heading(table.name, "(continued)");
        y_ += 4;
        DrawHeaderRow(t);
      }
      if (r % 2 == 1) FillRect(Left(), y_, t.width, kRowH, kZebra);
      Font(kCellFont, false);
      Color(kInk);
      DrawCells(t, t.cells[r], 10.5);
      y_ += kRowH;
    }
    Line(Left(), y_, Left() + t.width, y_, kAxis, 0.6);
    if (t.shown_rows < table.rows.size()) {
      Need(16);
      Font(8, false);
      Color(kMuted);
      y_ += 12;
      Text(Left(), y_,
           GroupThousands(FormatInt(static_cast<int64_t>(table.rows.size() - t.shown_rows))) +
               " more rows are not shown; the CSV and XLSX exports have the full table.");
    }
    y_ += kBlockGap;
  }

  cairo_surface_t* surface_;
  cairo_t* cr_;
  cairo_font_face_t* regular_;
  cairo_font_face_t* bold_;
  const Report& report_;
  int total_pages_;
  std::string footer_text_;
  int page_ = 0;
  bool landscape_ = false;
  double page_w_ = kA4Short;
  double page_h_ = kA4Long;
  double y_ = 0;
};

// Renders the document into `sink`; returns the number of pages, or -1 and
// sets *error.
int RenderInto(const Report& report, cairo_write_func_t write, void* closure, int total_pages,
               std::string* error) {
  cairo_surface_t* surface = cairo_pdf_surface_create_for_stream(write, closure, kA4Short, kA4Long);
  std::string title = Printable(report.title);
  cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, title.c_str());
  cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_SUBJECT,
                                 Printable(report.period).c_str());
  cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "BPM Centr exporter");
  int pages = -1;
  cairo_status_t status;
  {
    PdfWriter writer(surface, report, total_pages);
    writer.Render();
    pages = writer.pages();
    status = writer.status();
  }
  cairo_surface_finish(surface);
  if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  if (status != CAIRO_STATUS_SUCCESS) {
    *error = std::string("pdf: ") + cairo_status_to_string(status);
    return -1;
  }
  return pages;
}

}  // namespace

Rendered RenderPdf(const Report& report) {
  Rendered rendered;
  rendered.content_type = "application/pdf";
  rendered.filename = report_internal::FileStem(report.file_stem, report.title) + ".pdf";
  int pages = RenderInto(report, Discard, nullptr, 0, &rendered.error);
  if (pages < 0) return rendered;
  std::string body;
  if (RenderInto(report, AppendToString, &body, pages, &rendered.error) < 0) return rendered;
  rendered.body = std::move(body);
  return rendered;
}

}  // namespace bpmc::report
