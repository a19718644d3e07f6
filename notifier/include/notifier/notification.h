#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace bpmc::notifier {

// One alert as channels and templates see it.
struct AlertView {
  std::string status;    // "firing" | "resolved"
  std::string severity;  // "critical" | "warning" | "info" (already classified)
  std::string alertname, summary, description, runbook_url, generator_url;
  std::string source;              // "alertmanager" | "generic" | "sentry" | "datadog" | "newrelic"
  std::string dedup_key;           // stable per alert across firing/resolved (AM fingerprint, ...)
  std::string starts_at, ends_at;  // RFC 3339 UTC, ends_at empty while firing
  std::map<std::string, std::string> labels, annotations;
};

// JSON object with one key per field (the names above); the inverse ignores
// unknown keys and treats missing ones as empty. Pure.
nlohmann::json ToJson(const AlertView&);
AlertView AlertViewFromJson(const nlohmann::json&);

// The annotation `name` of `alert`, "" when it has none. Pure.
std::string AnnotationOf(const AlertView& alert, const char* name);

// "10:05 UTC" of an RFC 3339 UTC time, "" when it is not one (the messengers' state
// line of an alert that is not an incident page). Pure.
std::string UtcClockTime(const std::string& rfc3339);

// Compact JSON text; invalid UTF-8 in strings becomes U+FFFD instead of throwing. Pure.
std::string DumpJson(const nlohmann::json&);

}  // namespace bpmc::notifier
