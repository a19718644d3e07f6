#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "webhook_receiver/intake.h"

namespace re2 {
class RE2;
}

namespace bpmc::webhook_receiver {

using Labels = std::map<std::string, std::string>;

// One label matcher, as in Alertmanager: `name = value`, `!=`, `=~ regex`,
// `!~ regex`. A missing label matches as the empty string. Regexes are
// anchored at both ends and use RE2 syntax, like Alertmanager's (Go's regexp is
// RE2): matching takes time linear in the label value and no stack, whatever
// the pattern and the value (std::regex recursed per character and a 250-byte
// alertname overflowed a CivetWeb handler's stack). Immutable after
// construction; thread-safe.
class Matcher {
 public:
  enum class Op { kEqual, kNotEqual, kRegex, kNotRegex };

  // Throws std::invalid_argument for a bad regex (the config loader reports it).
  Matcher(std::string name, Op op, std::string value);

  // Parses Alertmanager's matcher syntax: `name="value"`, `name=~"a|b"`,
  // `name!=value`, `name!~"x.*"` (quotes optional, \" and \\ escapes inside
  // quotes). Returns nullopt and sets *error on bad syntax or a bad regex.
  static std::optional<Matcher> Parse(const std::string& text, std::string* error);

  bool Matches(const Labels& labels) const;
  const std::string& name() const { return name_; }
  Op op() const { return op_; }
  const std::string& value() const { return value_; }

 private:
  std::string name_;
  Op op_;
  std::string value_;
  std::shared_ptr<const re2::RE2> regex_;  // for kRegex / kNotRegex
};

// One node of the routing tree, with inheritance already resolved by the
// config loader (a child that omits `notify`, `escalation_policy` or
// `send_resolved` has its parent's).
struct RouteNode {
  std::string name;                   // `name:` or its path, e.g. "routes[1].routes[0]"
  std::vector<Matcher> matchers;      // all must match; none = matches everything
  std::vector<std::string> channels;  // `notify:` channel names (checked at load)
  std::string escalation_policy;      // `escalation_policy:` ("" = none); used by escalation
  bool send_resolved = true;          // resolution notices to the channels notified
  bool continue_matching = false;     // `continue:`: also try the following siblings
  std::vector<RouteNode> routes;      // children, tried in order
};

// Where one alert goes.
struct RoutingDecision {
  struct Target {
    std::string channel;
    bool send_resolved = true;
    std::string route;  // name of the first route that chose this channel
  };
  std::vector<Target> targets;                   // one per channel, in order of first match
  std::vector<std::string> escalation_policies;  // distinct, in order of first match
  std::vector<std::string> routes;               // names of the routes that matched (leaves)
  bool matched() const { return !routes.empty(); }
};

// Routes one alert, like Alertmanager's tree: siblings are tried in order and
// the first that matches wins unless it has `continue: true`; a matching node
// hands the alert to its children the same way, and is itself the result
// only when no child matches. A channel named by several matching routes is
// notified once (send_resolved if any of them wants it). No match: an empty
// decision (the alert is stored and counted as unrouted). Pure.
RoutingDecision RouteAlert(const std::vector<RouteNode>& routes, const Labels& labels);

// The labels routes match on: the alert's labels, `severity` replaced by the
// classified severity, and `source` set to the intake's name when the alert
// has no `source` label of its own. Pure.
Labels RoutingLabels(const IncomingAlert& alert);

}  // namespace bpmc::webhook_receiver
