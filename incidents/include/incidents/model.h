#pragma once
// Incidents as values, and the pure decisions around them: grouping, the
// group's common connector, the page a person gets, the post-incident report.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "notifier/notification.h"

namespace bpmc::incidents {

// One incident per Alertmanager group ("am:" + groupKey); every other source
// (or an Alertmanager payload without a groupKey) has one per alert
// ("<source>:<dedup_key>"). Pure.
std::string IncidentGroupKey(const std::string& source, const std::string& webhook_group_key,
                             const std::string& dedup_key);

// The incident's `connector` after an alert with `alert_connector` ("" when it
// has no `connector` label) joined it: the label common to all its alerts, ""
// when they differ or one has none. `first` is true for the incident's first alert.
std::string MergeConnector(const std::string& current, bool first,
                           const std::string& alert_connector);

// critical > warning > info; the more severe of the two.
std::string MoreSevere(const std::string& a, const std::string& b);

// The title of an incident opened by `alert`: "<alertname>: <summary>" (or the one that exists).
std::string IncidentTitle(const notifier::AlertView& alert);

struct TimelineEntry {
  int64_t at_us = 0;
  std::string kind, actor, channel, person, result;
  nlohmann::json detail = nlohmann::json::object();
};

struct IncidentAlert {
  std::string source, dedup_key, status, alertname;
  int64_t starts_us = 0;
};

struct Paged {
  std::string person, channel, destination;
  int64_t first_us = 0;
};

struct IncidentRecord {
  int64_t id = 0;
  std::string group_key, title, severity, connector, status, escalation_policy;
  int64_t created_us = 0;
  std::optional<int64_t> acknowledged_us, resolved_us, next_due_us, snoozed_until_us;
  std::string acknowledged_by, resolved_by, snoozed_by;
  bool muted = false;
  std::map<std::string, std::string> labels;
  std::vector<IncidentAlert> alerts;
  std::vector<Paged> paged;
  std::vector<TimelineEntry> timeline;  // oldest first
};

// The API's JSON of an incident (times RFC 3339 UTC, durations in seconds,
// null when not yet known). `full` adds alerts, paged and timeline. Pure.
nlohmann::json IncidentJson(const IncidentRecord& incident, bool full);

// The post-incident report (markdown): summary, time to acknowledge and to
// resolve, who was paged, the alerts, the timeline and the notes. Pure.
std::string ReportMarkdown(const IncidentRecord& incident);

// "1h 2m 3s", "45s", "0s" (whole seconds, rounded down). Pure.
std::string HumanDuration(int64_t micros);

// What one page says (docs/INCIDENTS.md, "Pages"). `event` is what happened:
// firing (the first level), escalated (a later level, a repeated round or
// "escalate now"), acknowledged, resolved, reassigned (handed to the reader),
// snooze_ended (the reader's snooze is over). Times are shown in the reader's
// zone: `utc_offset_seconds` at `at_us`, named by `time_zone` (Moscow: МСК/MSK,
// others: UTC+H[:MM]).
struct PageFacts {
  int64_t incident_id = 0;
  std::string event = "firing";
  std::string locale = "ru";  // "ru" or "en" (anything else: ru)
  std::string severity, alertname, connector_name, summary;
  int alert_count = 1;
  std::string actor;  // acknowledged, resolved, reassigned: who did it ("" = nobody named)
  int64_t at_us = 0;
  int utc_offset_seconds = 3 * 3600;
  std::string time_zone = "Europe/Moscow";
  std::string ack_url;       // "" = no link; shown only for pages that ask for an ack
  std::string incident_url;  // the console's page of the incident; "" = none
};

// The texts of a page, each link once.
struct PageText {
  // The same for every page of the incident in one locale (mail clients thread
  // on it): "[BPMC #1] critical: HighErrorRate on CRM Connector".
  std::string subject;
  std::string headline;  // what happened: "Acknowledged by Ivan at 10:05 MSK"
  // headline, the alert's summary, severity and alert count, then the links.
  std::string text;
  // Link first, GSM-7 words in both locales (160 characters a segment; a Cyrillic
  // connector name makes it UCS-2, 70): "BPMC #1 ack: <url> crit HighErrorRate on CRM Connector".
  std::string sms;
  std::string ack_label, open_label;  // the buttons: "Acknowledge", "Open incident"
};
PageText RenderPage(const PageFacts& facts);

// "10:05 MSK", "10:05 UTC+5", "10:05 UTC-3:30" (МСК in ru). Pure.
std::string ClockTime(int64_t at_us, int utc_offset_seconds, const std::string& time_zone,
                      const std::string& locale);

// What a page about an incident looks like to the channels (source "incident",
// status firing, acknowledged or resolved; PageFacts::event says more). The
// alert's own fields stay the alert's: alertname and summary of its first alert,
// description = PageText::text. The page texts travel in annotations read by the
// default templates and usable in configured ones: page_subject, page_headline,
// page_text, page_sms, page_ack_label, page_open_label; plus incident_id,
// incident_url (the console page), ack_url (when the page asks for an ack), and
// mail_thread (the Message-ID every e-mail of the incident refers to) with
// mail_thread_root "1" on the incident's first page to a destination. Pure.
struct PageInput {
  int64_t incident_id = 0;
  std::string title, severity, dedup_key, status;
  int64_t created_us = 0;
  std::optional<int64_t> ended_us;
  std::map<std::string, std::string> labels;
  std::string alertname, connector_name;  // the first alert's name; the connector's display name
  std::string first_summary, runbook_url, generator_url;
  int alert_count = 1;
  std::string ack_url;       // "" = no link
  std::string incident_url;  // public_url + /console/#/incidents/<id>
  // The reader and the event (PageFacts); `first_page` marks the incident's first
  // page to this destination.
  std::string event = "firing", locale = "ru", actor, time_zone = "Europe/Moscow";
  int64_t at_us = 0;
  int utc_offset_seconds = 3 * 3600;
  bool first_page = false;
};
notifier::AlertView PageView(const PageInput& in);

}  // namespace bpmc::incidents
