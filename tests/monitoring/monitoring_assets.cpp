#include "monitoring_assets.h"

#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace bpmc::monitoring {

std::string SourcePath(const std::string& relative) {
  const char* root = std::getenv("BPMC_SOURCE_DIR");
  if (root == nullptr || *root == '\0') {
    throw std::runtime_error("BPMC_SOURCE_DIR is not set (run the test through ctest)");
  }
  return std::string(root) + "/" + relative;
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

int ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  if (from.empty()) return 0;
  int n = 0;
  for (size_t pos = s->find(from); pos != std::string::npos; pos = s->find(from, pos)) {
    s->replace(pos, from.size(), to);
    pos += to.size();
    ++n;
  }
  return n;
}

// --- Dashboards ----------------------------------------------------------------------------

std::vector<nlohmann::json> DashboardPanels(const nlohmann::json& dashboard) {
  std::vector<nlohmann::json> out;
  for (const auto& panel : dashboard.value("panels", nlohmann::json::array())) {
    if (panel.value("type", "") == "row") {
      for (const auto& nested : panel.value("panels", nlohmann::json::array())) {
        out.push_back(nested);
      }
    } else {
      out.push_back(panel);
    }
  }
  return out;
}

std::vector<PanelQuery> DashboardQueries(const nlohmann::json& dashboard) {
  std::vector<PanelQuery> out;
  const std::string uid = dashboard.value("uid", "");
  for (const auto& panel : DashboardPanels(dashboard)) {
    const nlohmann::json panel_ds = panel.value("datasource", nlohmann::json::object());
    for (const auto& target : panel.value("targets", nlohmann::json::array())) {
      const nlohmann::json ds = target.value("datasource", panel_ds);
      const std::string type = ds.is_object() ? ds.value("type", "") : "";
      PanelQuery q;
      q.dashboard_uid = uid;
      q.panel_title = panel.value("title", "");
      q.ref_id = target.value("refId", "");
      if (type == kPrometheusType) {
        q.kind = QueryKind::kPromQL;
        q.text = target.value("expr", "");
        q.instant = target.value("instant", false);
      } else if (type == kPostgresType) {
        q.kind = QueryKind::kSql;
        q.text = target.value("rawSql", "");
      } else {
        throw std::runtime_error(uid + " / " + q.panel_title + ": data source type '" + type +
                                 "' is neither " + kPrometheusType + " nor " + kPostgresType);
      }
      out.push_back(std::move(q));
    }
  }
  return out;
}

// --- Template expansion --------------------------------------------------------------------

namespace {

bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\n");
  return s.substr(b, e - b + 1);
}

// The index of the ')' that closes the '(' at `open`, or npos.
size_t MatchingParen(const std::string& text, size_t open) {
  int depth = 0;
  bool quoted = false;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '\'') quoted = !quoted;
    if (quoted) continue;
    if (text[i] == '(') ++depth;
    if (text[i] == ')' && --depth == 0) return i;
  }
  return std::string::npos;
}

// Splits macro arguments at top-level commas.
std::vector<std::string> SplitArgs(const std::string& args) {
  std::vector<std::string> out;
  int depth = 0;
  bool quoted = false;
  std::string cur;
  for (char c : args) {
    if (c == '\'') quoted = !quoted;
    if (!quoted && c == '(') ++depth;
    if (!quoted && c == ')') --depth;
    if (!quoted && depth == 0 && c == ',') {
      out.push_back(Trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!Trim(cur).empty() || !out.empty()) out.push_back(Trim(cur));
  return out;
}

// Seconds of a Prometheus/Grafana duration such as "5m", "1h" or "30s"; -1 if malformed.
long long DurationSeconds(const std::string& text) {
  static const std::regex kDuration("([0-9]+)(s|m|h|d|w)");
  std::smatch m;
  if (!std::regex_match(text, m, kDuration)) return -1;
  const long long n = std::stoll(m[1]);
  switch (m[2].str()[0]) {
    case 's':
      return n;
    case 'm':
      return n * 60;
    case 'h':
      return n * 3600;
    case 'd':
      return n * 86400;
    default:
      return n * 604800;
  }
}

std::string SqlString(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

// Grafana's regex format escapes the characters special in regular expressions.
std::string RegexEscape(const std::string& v) {
  static const std::string kSpecial = R"(\^$.|?*+()[]{}-/)";
  std::string out;
  for (char c : v) {
    if (kSpecial.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

bool FormatVariable(const std::string& name, const std::string& format,
                    const TemplateContext& context, std::string* out, std::string* error) {
  const auto it = context.variables.find(name);
  if (it == context.variables.end()) {
    *error = "unknown variable $" + name;
    return false;
  }
  bool is_all = false;
  for (const auto& a : context.all) is_all = is_all || a == name;
  if (format.empty() || format == "raw" || is_all) {
    *out = it->second;
  } else if (format == "sqlstring") {
    *out = SqlString(it->second);
  } else if (format == "regex") {
    *out = RegexEscape(it->second);
  } else {
    *error = "unsupported format ${" + name + ":" + format + "}";
    return false;
  }
  return true;
}

bool ExpandBuiltin(const std::string& name, const TemplateContext& context, std::string* out) {
  const long long range =
      std::chrono::duration_cast<std::chrono::seconds>(context.to - context.from).count();
  if (name == "__interval") {
    *out = context.interval;
  } else if (name == "__rate_interval") {
    *out = context.rate_interval;
  } else if (name == "__range") {
    *out = std::to_string(range) + "s";
  } else if (name == "__range_s") {
    *out = std::to_string(range);
  } else {
    return false;
  }
  return true;
}

bool ExpandSqlMacro(const std::string& name, const std::vector<std::string>& args,
                    const TemplateContext& context, std::string* out, std::string* error) {
  const std::string from = "'" + GrafanaSqlTime(context.from) + "'";
  const std::string to = "'" + GrafanaSqlTime(context.to) + "'";
  auto need = [&](size_t n) {
    if (args.size() == n) return true;
    *error = "$" + name + " takes " + std::to_string(n) + " argument(s)";
    return false;
  };
  if (name == "__timeFilter") {
    if (!need(1)) return false;
    *out = args[0] + " BETWEEN " + from + " AND " + to;
  } else if (name == "__timeFrom") {
    if (!args.empty() && !need(0)) return false;
    *out = from;
  } else if (name == "__timeTo") {
    if (!args.empty() && !need(0)) return false;
    *out = to;
  } else if (name == "__time") {
    if (!need(1)) return false;
    *out = args[0] + " AS \"time\"";
  } else if (name == "__timeGroup" || name == "__timeGroupAlias") {
    if (!need(2)) return false;
    std::string interval = args[1];
    if (interval.size() >= 2 && interval.front() == '\'') {
      interval = interval.substr(1, interval.size() - 2);
    }
    if (interval == "$__interval") interval = context.interval;
    const long long s = DurationSeconds(interval);
    if (s <= 0) {
      *error = "$" + name + ": bad interval " + args[1];
      return false;
    }
    *out =
        "floor(extract(epoch from " + args[0] + ")/" + std::to_string(s) + ")*" + std::to_string(s);
    if (name == "__timeGroupAlias") *out += " AS \"time\"";
  } else {
    *error = "unsupported macro $" + name;
    return false;
  }
  return true;
}

}  // namespace

std::string GrafanaSqlTime(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::chrono::seconds RelativeTimeSpan(const std::string& grafana_from) {
  const std::string prefix = "now-";
  const long long s =
      grafana_from.rfind(prefix, 0) == 0 ? DurationSeconds(grafana_from.substr(prefix.size())) : -1;
  if (s <= 0) throw std::invalid_argument("unsupported time range start: " + grafana_from);
  return std::chrono::seconds(s);
}

bool ExpandTemplate(const std::string& text, QueryKind kind, const TemplateContext& context,
                    std::string* out, std::string* error) {
  std::string result;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c != '$' || i + 1 >= text.size()) {
      result += c;
      ++i;
      continue;
    }
    std::string expansion;
    if (text[i + 1] == '{') {  // ${name} or ${name:format}
      const size_t close = text.find('}', i);
      if (close == std::string::npos) {
        *error = "unterminated ${ at offset " + std::to_string(i);
        return false;
      }
      const std::string inner = text.substr(i + 2, close - i - 2);
      const size_t colon = inner.find(':');
      const std::string name = inner.substr(0, colon);
      const std::string format = colon == std::string::npos ? "" : inner.substr(colon + 1);
      if (!ExpandBuiltin(name, context, &expansion) &&
          !FormatVariable(name, format, context, &expansion, error)) {
        return false;
      }
      i = close + 1;
    } else if (IsIdentChar(text[i + 1])) {  // $name, $__builtin or $__macro(...)
      size_t end = i + 1;
      while (end < text.size() && IsIdentChar(text[end])) ++end;
      const std::string name = text.substr(i + 1, end - i - 1);
      if (name.rfind("__", 0) == 0 && end < text.size() && text[end] == '(') {
        const size_t close = MatchingParen(text, end);
        if (kind != QueryKind::kSql || close == std::string::npos) {
          *error = "unsupported macro $" + name;
          return false;
        }
        if (!ExpandSqlMacro(name, SplitArgs(text.substr(end + 1, close - end - 1)), context,
                            &expansion, error)) {
          return false;
        }
        end = close + 1;
      } else if (!ExpandBuiltin(name, context, &expansion) &&
                 !FormatVariable(name, "", context, &expansion, error)) {
        return false;
      }
      i = end;
    } else {  // a literal '$', e.g. the end anchor of a regex
      result += c;
      ++i;
      continue;
    }
    result += expansion;
  }
  *out = std::move(result);
  return true;
}

// --- Rule durations ------------------------------------------------------------------------

namespace {

// Rewrites group 2 of every match of `pattern` (group 1 is kept before it) through `table`.
bool RewriteMatches(const std::string& text, const std::regex& pattern,
                    const std::map<std::string, std::string>& table, const std::string& what,
                    std::string* out, std::string* error) {
  std::string result;
  auto begin = std::sregex_iterator(text.begin(), text.end(), pattern);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    const auto found = table.find(m[2].str());
    if (found == table.end()) {
      *error = "no test duration for " + what + " " + m[2].str() + " (in \"" + m[0].str() + "\")";
      return false;
    }
    result.append(text, last, static_cast<size_t>(m.position(0)) - last);
    result += m[1].str() + found->second + m[3].str();
    last = static_cast<size_t>(m.position(0) + m.length(0));
  }
  result.append(text, last, std::string::npos);
  *out = std::move(result);
  return true;
}

}  // namespace

bool ShortenDurations(const std::string& text, const DurationRewrite& rewrite, std::string* out,
                      std::string* error) {
  static const std::regex kSubquery(R"(\[[0-9]+[a-z]+[0-9a-z]*:)");
  if (std::regex_search(text, kSubquery)) {
    *error = "subqueries are not supported by the test's duration rewrite";
    return false;
  }
  static const std::regex kRange(R"((\[)([0-9]+[a-z]+(?:[0-9]+[a-z]+)*)(\]))");
  static const std::regex kOffset(R"((\boffset\s+)([0-9]+[a-z]+(?:[0-9]+[a-z]+)*)(\b))");
  static const std::regex kFor(R"((\bfor:\s*)([0-9]+[a-z]+(?:[0-9]+[a-z]+)*)(\b))");
  std::string a, b;
  return RewriteMatches(text, kRange, rewrite.ranges, "range", &a, error) &&
         RewriteMatches(a, kOffset, rewrite.offsets, "offset", &b, error) &&
         RewriteMatches(b, kFor, rewrite.fors, "for:", out, error);
}

// --- Runbook -------------------------------------------------------------------------------

std::string MarkdownAnchor(const std::string& heading) {
  std::string out;
  for (char c : heading) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || u >= 0x80) {
      out += static_cast<char>(std::tolower(u));
    } else if (c == ' ') {
      out += '-';
    }
  }
  return out;
}

std::vector<std::string> Level2Headings(const std::string& markdown) {
  std::vector<std::string> out;
  std::istringstream in(markdown);
  std::string line;
  bool fenced = false;
  while (std::getline(in, line)) {
    if (line.rfind("```", 0) == 0) fenced = !fenced;
    if (!fenced && line.rfind("## ", 0) == 0) out.push_back(Trim(line.substr(3)));
  }
  return out;
}

}  // namespace bpmc::monitoring
