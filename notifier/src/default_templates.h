#pragma once
// The templates a channel uses when its config names none. They are checked
// like configured ones (a unit test renders each).

namespace bpmc::notifier::defaults {

// Email: rendered once per message (one alert or a bundle).
inline constexpr const char* kEmailSubject =
    "{{#bundled}}[BPMC] {{count}} alerts: {{firing_count}} firing, {{resolved_count}} resolved"
    "{{/bundled}}{{^bundled}}[{{#firing}}FIRING{{/firing}}{{#resolved}}RESOLVED{{/resolved}}"
    " {{severity}}] {{alertname}}: {{summary}}{{/bundled}}";

inline constexpr const char* kEmailText =
    "{{#alerts}}"
    "[{{#firing}}FIRING{{/firing}}{{#resolved}}RESOLVED{{/resolved}}] {{severity}} {{alertname}}:"
    " {{summary}}\n"
    "{{#description}}{{description}}\n{{/description}}"
    "Started: {{starts_at}}\n"
    "{{#resolved}}Resolved: {{ends_at}}\n{{/resolved}}"
    "{{#runbook_url}}Runbook: {{runbook_url}}\n{{/runbook_url}}"
    "{{#generator_url}}Source: {{generator_url}}\n{{/generator_url}}"
    "\n"
    "{{/alerts}}";

inline constexpr const char* kEmailHtml =
    "<html><body>"
    "{{#alerts}}"
    "<h3 style=\"color:{{#firing}}{{#critical}}#d00000{{/critical}}{{#warning}}#e08000{{/warning}}"
    "{{#info}}#1060c0{{/info}}{{/firing}}{{#resolved}}#208020{{/resolved}}\">"
    "{{#firing}}FIRING{{/firing}}{{#resolved}}RESOLVED{{/resolved}} [{{severity}}] {{alertname}}"
    "</h3>"
    "<p><b>{{summary}}</b></p>"
    "{{#description}}<p>{{description}}</p>{{/description}}"
    "<p>Started: {{starts_at}}{{#resolved}}<br>Resolved: {{ends_at}}{{/resolved}}</p>"
    "<p>{{#runbook_url}}<a href=\"{{runbook_url}}\">Runbook</a> {{/runbook_url}}"
    "{{#generator_url}}<a href=\"{{generator_url}}\">Source</a>{{/generator_url}}</p>"
    "<hr>"
    "{{/alerts}}"
    "</body></html>";

// Slack: rendered per alert (mrkdwn).
inline constexpr const char* kSlackTitle =
    "{{#firing}}*FIRING*{{/firing}}{{#resolved}}*RESOLVED*{{/resolved}} [{{severity}}]"
    " *{{alertname}}*: {{summary}}";
inline constexpr const char* kSlackText = "{{description}}";

// SMS: rendered once per message, then cut to the channel's SMS parts.
inline constexpr const char* kSmsText =
    "{{#bundled}}BPMC {{count}} alerts ({{firing_count}} firing, {{resolved_count}} resolved):"
    "{{#alerts}} {{alertname}}{{#resolved}}(ok){{/resolved}};{{/alerts}}{{/bundled}}"
    "{{^bundled}}{{#firing}}FIRING{{/firing}}{{#resolved}}RESOLVED{{/resolved}} {{severity}}"
    " {{alertname}}: {{summary}}{{/bundled}}";
inline constexpr const char* kSmsJsonBody = "{\"to\":\"{{to}}\",\"text\":\"{{text}}\"}";
inline constexpr const char* kSmsFormBody = "to={{to}}&text={{text}}";

// PagerDuty: per alert.
inline constexpr const char* kPagerDutySummary = "[{{severity}}] {{alertname}}: {{summary}}";

}  // namespace bpmc::notifier::defaults
