#include "webhook_receiver/routing.h"

#include <re2/re2.h>

#include <algorithm>
#include <stdexcept>

namespace bpmc::webhook_receiver {
namespace {

bool IsLabelNameChar(char c, bool first) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (!first && c >= '0' && c <= '9');
}

// Reads a matcher value: "quoted with \" and \\ escapes" or the bare rest.
std::optional<std::string> ParseValue(const std::string& text, size_t pos) {
  while (pos < text.size() && text[pos] == ' ') ++pos;
  std::string rest = text.substr(pos);
  while (!rest.empty() && rest.back() == ' ') rest.pop_back();
  if (rest.empty() || rest.front() != '"') return rest;
  std::string out;
  for (size_t i = 1; i < rest.size(); ++i) {
    const char c = rest[i];
    if (c == '\\' && i + 1 < rest.size()) {
      const char n = rest[++i];
      out.push_back(n == 'n' ? '\n' : n);
    } else if (c == '"') {
      if (i + 1 != rest.size()) return std::nullopt;  // text after the closing quote
      return out;
    } else {
      out.push_back(c);
    }
  }
  return std::nullopt;  // no closing quote
}

// Adds the decision of one matching node that is a result (a leaf of the walk).
void AddResult(const RouteNode& node, RoutingDecision* d) {
  d->routes.push_back(node.name);
  for (const std::string& ch : node.channels) {
    auto it = std::find_if(d->targets.begin(), d->targets.end(),
                           [&](const RoutingDecision::Target& t) { return t.channel == ch; });
    if (it == d->targets.end()) {
      d->targets.push_back({ch, node.send_resolved, node.name});
    } else {
      it->send_resolved = it->send_resolved || node.send_resolved;
    }
  }
  const std::string& p = node.escalation_policy;
  if (!p.empty() && std::find(d->escalation_policies.begin(), d->escalation_policies.end(), p) ==
                        d->escalation_policies.end())
    d->escalation_policies.push_back(p);
}

bool NodeMatches(const RouteNode& node, const Labels& labels) {
  return std::all_of(node.matchers.begin(), node.matchers.end(),
                     [&](const Matcher& m) { return m.Matches(labels); });
}

// Walks `siblings`; returns true when at least one matched.
bool Walk(const std::vector<RouteNode>& siblings, const Labels& labels, RoutingDecision* d) {
  bool any = false;
  for (const RouteNode& node : siblings) {
    if (!NodeMatches(node, labels)) continue;
    any = true;
    if (!Walk(node.routes, labels, d)) AddResult(node, d);
    if (!node.continue_matching) break;
  }
  return any;
}

}  // namespace

Matcher::Matcher(std::string name, Op op, std::string value)
    : name_(std::move(name)), op_(op), value_(std::move(value)) {
  if (op_ == Op::kRegex || op_ == Op::kNotRegex) {
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<const RE2>("^(?:" + value_ + ")$", options);
    if (!re->ok()) throw std::invalid_argument(re->error());
    regex_ = std::move(re);
  }
}

std::optional<Matcher> Matcher::Parse(const std::string& text, std::string* error) {
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  const size_t name_start = i;
  while (i < text.size() && IsLabelNameChar(text[i], i == name_start)) ++i;
  const std::string name = text.substr(name_start, i - name_start);
  while (i < text.size() && text[i] == ' ') ++i;
  if (name.empty()) {
    *error = "expected a label name at the start of '" + text + "'";
    return std::nullopt;
  }
  Op op;
  if (text.compare(i, 2, "=~") == 0) {
    op = Op::kRegex;
    i += 2;
  } else if (text.compare(i, 2, "!~") == 0) {
    op = Op::kNotRegex;
    i += 2;
  } else if (text.compare(i, 2, "!=") == 0) {
    op = Op::kNotEqual;
    i += 2;
  } else if (text.compare(i, 1, "=") == 0) {
    op = Op::kEqual;
    i += 1;
  } else {
    *error = "expected =, !=, =~ or !~ after '" + name + "' in '" + text + "'";
    return std::nullopt;
  }
  auto value = ParseValue(text, i);
  if (!value) {
    *error = "bad quoted value in '" + text + "'";
    return std::nullopt;
  }
  try {
    return Matcher(name, op, *value);
  } catch (const std::invalid_argument& e) {
    *error = "bad regex '" + *value + "': " + e.what();
    return std::nullopt;
  }
}

bool Matcher::Matches(const Labels& labels) const {
  auto it = labels.find(name_);
  const std::string& v = it == labels.end() ? std::string() : it->second;
  switch (op_) {
    case Op::kEqual:
      return v == value_;
    case Op::kNotEqual:
      return v != value_;
    case Op::kRegex:
      return RE2::FullMatch(v, *regex_);
    case Op::kNotRegex:
      return !RE2::FullMatch(v, *regex_);
  }
  return false;
}

RoutingDecision RouteAlert(const std::vector<RouteNode>& routes, const Labels& labels) {
  RoutingDecision d;
  Walk(routes, labels, &d);
  return d;
}

Labels RoutingLabels(const IncomingAlert& alert) {
  Labels labels = alert.view.labels;
  labels["severity"] = alert.view.severity;
  labels.emplace("source", alert.view.source);  // only when absent
  return labels;
}

}  // namespace bpmc::webhook_receiver
