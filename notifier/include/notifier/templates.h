#pragma once
// Mustache templates (kainjow 4.1) over alerts.
//
// Every template is rendered for one message, which carries one alert or a
// bundle. The context has the first alert's fields at the top level (status,
// severity, alertname, summary, description, runbook_url, generator_url,
// source, dedup_key, starts_at, ends_at, labels.NAME, annotations.NAME, and the
// booleans firing / resolved / critical / warning / info), plus `alerts` (every
// alert, each with the same fields), `count`, `firing_count`,
// `resolved_count`, `bundled` (count > 1), `channel` and `destination`.

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "notifier/config.h"
#include "notifier/notification.h"

namespace bpmc::notifier {

// "" when `source` parses and every {{name}} it uses is one of the names above
// (or a channel-specific `extra_names` entry); otherwise the first problem,
// e.g. "unknown name 'sumary'" or the parser's message. Pure.
std::string CheckTemplate(const std::string& source,
                          const std::vector<std::string>& extra_names = {});

// The syntax check under CheckTemplate, for templates over other contexts (customer
// notices): "" when `source` parses and `check_name(name)` returns "" for every name
// its tags use (sections and inverted sections included; comments skipped);
// otherwise the first problem (the parser's message, "unclosed tag", "partials are
// not supported", or what check_name returned). Pure.
std::string CheckTemplateTags(const std::string& source,
                              const std::function<std::string(const std::string&)>& check_name);

// The context described above, as JSON (objects, arrays, strings, booleans, numbers).
nlohmann::json TemplateContext(const std::vector<AlertView>& alerts, const std::string& channel,
                               const std::string& destination);

// Renders with the template's escaping. Strings, numbers and booleans of
// `context` become mustache values. Pure and thread-safe.
std::string Render(const Template& tmpl, const nlohmann::json& context);

}  // namespace bpmc::notifier
