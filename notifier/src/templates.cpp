#include "notifier/templates.h"

#include <algorithm>
#include <cstdio>
#include <kainjow/mustache.hpp>
#include <set>

#include "notifier/telegram.h"

namespace bpmc::notifier {
namespace mus = kainjow::mustache;
namespace {

// Names every alert object has (top level and inside {{#alerts}}).
const std::set<std::string>& AlertNames() {
  static const std::set<std::string> kNames = {
      "status",        "severity", "alertname", "summary",   "description", "runbook_url",
      "generator_url", "source",   "dedup_key", "starts_at", "ends_at",     "labels",
      "annotations",   "firing",   "resolved",  "critical",  "warning",     "info"};
  return kNames;
}

// Names of the message as a whole.
const std::set<std::string>& MessageNames() {
  static const std::set<std::string> kNames = {
      "alerts", "count", "firing_count", "resolved_count", "bundled", "channel", "destination"};
  return kNames;
}

std::string TrimTag(std::string s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Checks one tag's name: "." or a known name; labels.X / annotations.X take any X.
std::string CheckName(const std::string& name, const std::vector<std::string>& extra) {
  if (name == ".") return "";
  const std::string head = name.substr(0, name.find('.'));
  const bool known = AlertNames().count(head) || MessageNames().count(head) ||
                     std::find(extra.begin(), extra.end(), head) != extra.end();
  if (!known) return "unknown name '" + name + "'";
  if (name.find('.') != std::string::npos && head != "labels" && head != "annotations") {
    return "'" + head + "' has no fields ('" + name + "')";
  }
  return "";
}

nlohmann::json AlertContext(const AlertView& a) {
  nlohmann::json j = ToJson(a);
  j["firing"] = a.status == "firing";
  j["resolved"] = a.status == "resolved";
  j["critical"] = a.severity == "critical";
  j["warning"] = a.severity == "warning";
  j["info"] = a.severity == "info";
  return j;
}

mus::data ToData(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      mus::data d{mus::data::type::object};
      for (const auto& [k, v] : j.items()) d.set(k, ToData(v));
      return d;
    }
    case nlohmann::json::value_t::array: {
      mus::data d{mus::data::type::list};
      for (const auto& v : j) d.push_back(ToData(v));
      return d;
    }
    case nlohmann::json::value_t::string:
      // Empty is false, so that {{#runbook_url}}...{{/runbook_url}} means "if present".
      return j.get_ref<const std::string&>().empty() ? mus::data{false}
                                                     : mus::data{j.get<std::string>()};
    case nlohmann::json::value_t::boolean:
      return mus::data{j.get<bool>()};
    case nlohmann::json::value_t::null:
      return mus::data{false};
    default:
      return mus::data{DumpJson(j)};
  }
}

std::string EscapeJson(const std::string& s) {
  const std::string quoted = DumpJson(nlohmann::json(s));
  return quoted.substr(1, quoted.size() - 2);
}

std::string EscapeForm(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string EscapeSlack(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string CheckTemplateTags(const std::string& source,
                              const std::function<std::string(const std::string&)>& check_name) {
  mus::mustache parsed{source};
  if (!parsed.is_valid()) return parsed.error_message();
  // The parser accepts any name; a typo would render as "" at 3 a.m. Scan the tags.
  size_t pos = 0;
  while ((pos = source.find("{{", pos)) != std::string::npos) {
    const bool triple = source.compare(pos, 3, "{{{") == 0;
    const size_t open = pos + (triple ? 3 : 2);
    const size_t close = source.find(triple ? "}}}" : "}}", open);
    if (close == std::string::npos) return "unclosed tag";
    std::string tag = TrimTag(source.substr(open, close - open));
    pos = close + (triple ? 3 : 2);
    if (tag.empty()) return "empty tag";
    const char sigil = tag[0];
    if (sigil == '!') continue;  // comment
    if (sigil == '>') return "partials are not supported ('" + tag + "')";
    if (sigil == '=') return "delimiter changes are not supported";
    if (sigil == '#' || sigil == '^' || sigil == '/' || sigil == '&') tag = TrimTag(tag.substr(1));
    if (auto e = check_name(tag); !e.empty()) return e;
  }
  return "";
}

std::string CheckTemplate(const std::string& source, const std::vector<std::string>& extra_names) {
  return CheckTemplateTags(source,
                           [&](const std::string& name) { return CheckName(name, extra_names); });
}

nlohmann::json TemplateContext(const std::vector<AlertView>& alerts, const std::string& channel,
                               const std::string& destination) {
  nlohmann::json ctx = alerts.empty() ? nlohmann::json::object() : AlertContext(alerts.front());
  nlohmann::json list = nlohmann::json::array();
  int firing = 0;
  for (const AlertView& a : alerts) {
    list.push_back(AlertContext(a));
    firing += a.status == "firing" ? 1 : 0;
  }
  ctx["alerts"] = std::move(list);
  ctx["count"] = std::to_string(alerts.size());
  ctx["firing_count"] = std::to_string(firing);
  ctx["resolved_count"] = std::to_string(alerts.size() - static_cast<size_t>(firing));
  ctx["bundled"] = alerts.size() > 1;
  ctx["channel"] = channel;
  ctx["destination"] = destination;
  return ctx;
}

std::string Render(const Template& tmpl, const nlohmann::json& context) {
  // A fresh parse per render: kainjow's objects are not safe to share between threads,
  // and the templates are small.
  mus::mustache m{tmpl.source};
  switch (tmpl.escape) {
    case Escape::kNone:
      m.set_custom_escape([](const std::string& s) { return s; });
      break;
    case Escape::kHtml:
      break;  // kainjow's default
    case Escape::kSlack:
      m.set_custom_escape(EscapeSlack);
      break;
    case Escape::kJson:
      m.set_custom_escape(EscapeJson);
      break;
    case Escape::kForm:
      m.set_custom_escape(EscapeForm);
      break;
    case Escape::kTelegram:
      m.set_custom_escape([](const std::string& s) { return TelegramEscape(s); });
      break;
  }
  return m.render(ToData(context));
}

}  // namespace bpmc::notifier
