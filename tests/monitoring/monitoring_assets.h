#pragma once
// Test-only helpers for the monitoring assets (prometheus/, alertmanager/, grafana/,
// docs/RUNBOOK.md): reading them, listing the queries of Grafana dashboards, expanding
// Grafana's template variables and macros the way Grafana would before a query is sent, and
// deriving the short-interval copies of the rule files that the real-server test runs.
// Everything here is a pure function of its arguments (no I/O) except the file helpers.

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bpmc::monitoring {

// $BPMC_SOURCE_DIR/<relative> (the repository root, set by ctest).
std::string SourcePath(const std::string& relative);
// The whole file; throws std::runtime_error naming the path when it cannot be read.
std::string ReadTextFile(const std::string& path);
// Writes `text` to `path` (replacing it); throws std::runtime_error on failure.
void WriteTextFile(const std::string& path, const std::string& text);
// `s` single-quoted for /bin/sh.
std::string ShellQuote(const std::string& s);

// Replaces every occurrence of `from` in `*s` by `to`; returns how many were replaced.
int ReplaceAll(std::string* s, const std::string& from, const std::string& to);

// --- Grafana dashboards ------------------------------------------------------------------

enum class QueryKind { kPromQL, kSql };

// One query of one panel.
struct PanelQuery {
  std::string dashboard_uid;
  std::string panel_title;
  std::string ref_id;
  QueryKind kind = QueryKind::kPromQL;
  std::string text;  // `expr` or `rawSql`, unexpanded
  bool instant = false;
};

// Data source plugin ids the dashboards use.
inline constexpr char kPrometheusType[] = "prometheus";
inline constexpr char kPostgresType[] = "grafana-postgresql-datasource";

// Every non-row panel of `dashboard`, including panels nested in collapsed rows.
std::vector<nlohmann::json> DashboardPanels(const nlohmann::json& dashboard);
// Every query of every panel. A target's kind comes from its data source type (the
// target's, else the panel's); a target of another type throws std::runtime_error.
std::vector<PanelQuery> DashboardQueries(const nlohmann::json& dashboard);

// Values for Grafana's template variables, macros and time range.
struct TemplateContext {
  // Variable name -> its current value. For a variable set to "All", the allValue, with
  // `all` containing the name (formats then pass it through unescaped, as Grafana does).
  std::map<std::string, std::string> variables;
  std::vector<std::string> all;
  std::chrono::system_clock::time_point from;
  std::chrono::system_clock::time_point to;
  std::string interval = "15s";      // $__interval
  std::string rate_interval = "1m";  // $__rate_interval
};

// Expands `$name`, `${name}` and `${name:format}` (formats: raw, sqlstring, regex) and
// Grafana's built-ins: $__interval, $__rate_interval, $__range (seconds of the time range)
// in both languages; for SQL also the PostgreSQL macros $__timeFilter(col), $__timeFrom(),
// $__timeTo(), $__time(col), $__timeGroup(col, 'interval') and $__timeGroupAlias(...).
// Returns false with *error set for an unknown variable, format or macro, so a dashboard
// cannot use something this expansion (and hence the test) does not understand.
bool ExpandTemplate(const std::string& text, QueryKind kind, const TemplateContext& context,
                    std::string* out, std::string* error);

// A time as Grafana writes it into SQL: 2026-11-25T10:00:00Z (UTC, whole seconds).
std::string GrafanaSqlTime(std::chrono::system_clock::time_point t);

// The duration of a Grafana relative time such as "now-6h" or "now-30d" (s m h d w);
// throws std::invalid_argument otherwise.
std::chrono::seconds RelativeTimeSpan(const std::string& grafana_from);

// --- Rule files for the real-server test -------------------------------------------------

// How durations are rewritten: range selectors `[5m]`, `offset 1d`, and `for: 5m`, each
// looked up by its literal text.
struct DurationRewrite {
  std::map<std::string, std::string> ranges;   // "5m" -> "20s" in `[5m]`
  std::map<std::string, std::string> offsets;  // "1d" -> "20s" in `offset 1d`
  std::map<std::string, std::string> fors;     // "5m" -> "5s" in `for: 5m`
};

// Rewrites every range selector, offset and `for:` duration of a rule file. Returns false
// with *error naming the duration when one is not in the table, so a new window in the
// shipped rules cannot slip into the test copy unshortened.
bool ShortenDurations(const std::string& text, const DurationRewrite& rewrite, std::string* out,
                      std::string* error);

// --- Runbook -----------------------------------------------------------------------------

// The anchor GitHub gives a Markdown heading: lower case, spaces to '-', punctuation other
// than '-' and '_' dropped ("High error rate!" -> "high-error-rate").
std::string MarkdownAnchor(const std::string& heading);
// The texts of the level-2 headings ("## ...") of a Markdown document, in order.
std::vector<std::string> Level2Headings(const std::string& markdown);

}  // namespace bpmc::monitoring
