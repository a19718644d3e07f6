#pragma once
// The templates a channel uses when its config names none. They are checked
// like configured ones (a unit test renders each). An incident's page carries its
// own texts in annotations.page_* (incidents/model.h PageView); these templates
// show them when present and the alert's fields otherwise.

namespace bpmc::notifier::defaults {

// Email: rendered once per message (one alert or a bundle).
inline constexpr const char* kEmailSubject =
    "{{#bundled}}[BPMC] {{count}} alerts: {{firing_count}} firing, {{resolved_count}} resolved"
    "{{/bundled}}{{^bundled}}{{#annotations.page_subject}}{{annotations.page_subject}}"
    "{{/annotations.page_subject}}{{^annotations.page_subject}}"
    "[{{#firing}}FIRING{{/firing}}{{#resolved}}RESOLVED{{/resolved}}"
    " {{severity}}] {{alertname}}: {{summary}}{{/annotations.page_subject}}{{/bundled}}";

inline constexpr const char* kEmailText =
    "{{#alerts}}"
    "{{#annotations.page_text}}{{annotations.page_text}}"
    "{{#runbook_url}}Runbook: {{runbook_url}}\n{{/runbook_url}}"
    "{{#generator_url}}Source: {{generator_url}}\n{{/generator_url}}"
    "\n{{/annotations.page_text}}{{^annotations.page_text}}"
    "[{{#firing}}FIRING{{/firing}}{{#resolved}}RESOLVED{{/resolved}}] {{severity}} {{alertname}}:"
    " {{summary}}\n"
    "{{#description}}{{description}}\n{{/description}}"
    "Started: {{starts_at}}\n"
    "{{#resolved}}Resolved: {{ends_at}}\n{{/resolved}}"
    "{{#runbook_url}}Runbook: {{runbook_url}}\n{{/runbook_url}}"
    "{{#generator_url}}Source: {{generator_url}}\n{{/generator_url}}"
    "\n"
    "{{/annotations.page_text}}"
    "{{/alerts}}";

inline constexpr const char* kEmailHtml =
    "<html><body>"
    "{{#alerts}}"
    "{{#annotations.page_text}}"
    "<h3 style=\"color:{{#firing}}{{#critical}}#d00000{{/critical}}{{#warning}}#e08000{{/warning}}"
    "{{#info}}#1060c0{{/info}}{{/firing}}{{^firing}}#208020{{/firing}}\">"
    "{{annotations.page_subject}}</h3>"
    "<p><b>{{annotations.page_headline}}</b></p>"
    "{{#summary}}<p>{{summary}}</p>{{/summary}}"
    "<p>{{#annotations.ack_url}}<a href=\"{{annotations.ack_url}}\" style=\"display:inline-block;"
    "padding:8px 16px;margin-right:8px;background:#d00000;color:#ffffff;text-decoration:none;"
    "border-radius:4px\">{{annotations.page_ack_label}}</a>{{/annotations.ack_url}}"
    "{{#annotations.incident_url}}<a href=\"{{annotations.incident_url}}\" style=\""
    "display:inline-block;padding:8px 16px;background:#1060c0;color:#ffffff;text-decoration:none;"
    "border-radius:4px\">{{annotations.page_open_label}}</a>{{/annotations.incident_url}}</p>"
    "<p>{{#runbook_url}}<a href=\"{{runbook_url}}\">Runbook</a> {{/runbook_url}}"
    "{{#generator_url}}<a href=\"{{generator_url}}\">Source</a>{{/generator_url}}</p>"
    "{{/annotations.page_text}}{{^annotations.page_text}}"
    "<h3 style=\"color:{{#firing}}{{#critical}}#d00000{{/critical}}{{#warning}}#e08000{{/warning}}"
    "{{#info}}#1060c0{{/info}}{{/firing}}{{#resolved}}#208020{{/resolved}}\">"
    "{{#firing}}FIRING{{/firing}}{{#resolved}}RESOLVED{{/resolved}} [{{severity}}] {{alertname}}"
    "</h3>"
    "<p><b>{{summary}}</b></p>"
    "{{#description}}<p>{{description}}</p>{{/description}}"
    "<p>Started: {{starts_at}}{{#resolved}}<br>Resolved: {{ends_at}}{{/resolved}}</p>"
    "<p>{{#runbook_url}}<a href=\"{{runbook_url}}\">Runbook</a> {{/runbook_url}}"
    "{{#generator_url}}<a href=\"{{generator_url}}\">Source</a>{{/generator_url}}</p>"
    "{{/annotations.page_text}}"
    "<hr>"
    "{{/alerts}}"
    "</body></html>";

// Slack: rendered per alert (mrkdwn).
// An incident's page: its subject in bold, then what happened; the links are buttons.
inline constexpr const char* kSlackTitle =
    "{{#annotations.page_subject}}*{{annotations.page_subject}}*"
    "{{/annotations.page_subject}}{{^annotations.page_subject}}"
    "{{#firing}}*FIRING*{{/firing}}{{#resolved}}*RESOLVED*{{/resolved}} [{{severity}}]"
    " *{{alertname}}*: {{summary}}{{/annotations.page_subject}}";
inline constexpr const char* kSlackText =
    "{{#annotations.page_headline}}{{annotations.page_headline}}{{#summary}}\n{{summary}}"
    "{{/summary}}{{/annotations.page_headline}}{{^annotations.page_headline}}{{description}}"
    "{{/annotations.page_headline}}";

// SMS: rendered once per message, then cut to the channel's SMS parts.
inline constexpr const char* kSmsText =
    "{{#bundled}}BPMC {{count}} alerts ({{firing_count}} firing, {{resolved_count}} resolved):"
    "{{#alerts}} {{alertname}}{{#resolved}}(ok){{/resolved}};{{/alerts}}{{/bundled}}"
    "{{^bundled}}{{#annotations.page_sms}}{{annotations.page_sms}}{{/annotations.page_sms}}"
    "{{^annotations.page_sms}}{{#firing}}FIRING{{/firing}}{{#resolved}}RESOLVED{{/resolved}}"
    " {{severity}} {{alertname}}: {{summary}}{{/annotations.page_sms}}{{/bundled}}";
inline constexpr const char* kSmsJsonBody = "{\"to\":\"{{to}}\",\"text\":\"{{text}}\"}";
inline constexpr const char* kSmsFormBody = "to={{to}}&text={{text}}";

// PagerDuty: per alert.
inline constexpr const char* kPagerDutySummary =
    "{{#annotations.page_subject}}{{annotations.page_subject}}{{/annotations.page_subject}}"
    "{{^annotations.page_subject}}[{{severity}}] {{alertname}}: {{summary}}"
    "{{/annotations.page_subject}}";

// Telegram (HTML parse mode; values HTML-escaped): the body under the state line that
// BuildTelegramText puts first.
// An incident's page: its subject in bold, the first alert's summary, and a link to
// the incident in the console.
inline constexpr const char* kTelegramText =
    "{{#annotations.page_subject}}<b>{{annotations.page_subject}}</b>"
    "{{#summary}}\n{{summary}}{{/summary}}"
    "{{#annotations.incident_url}}\n<a href=\"{{annotations.incident_url}}\">"
    "{{annotations.page_open_label}}</a>{{/annotations.incident_url}}"
    "{{/annotations.page_subject}}{{^annotations.page_subject}}"
    "<b>{{alertname}}</b>\n{{summary}}{{/annotations.page_subject}}";

}  // namespace bpmc::notifier::defaults
