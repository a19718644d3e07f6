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
  std::optional<int64_t> acknowledged_us, resolved_us, next_due_us;
  std::string acknowledged_by, resolved_by;
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

// What a page about `incident` looks like to the channels: alertname is the
// title, summary starts with "Incident #<id>" and ends with "Ack: <url>" when
// there is a link (SMS shows only the summary), description repeats the link,
// annotations carry incident_id, incident_url and ack_url, source is
// "incident". `status` is firing, acknowledged or resolved. Pure.
struct PageInput {
  int64_t incident_id = 0;
  std::string title, severity, dedup_key, status;
  int64_t created_us = 0;
  std::optional<int64_t> ended_us;
  std::map<std::string, std::string> labels;
  std::string first_summary, runbook_url, generator_url;
  int alert_count = 1;
  std::string ack_url;       // "" = no link
  std::string incident_url;  // public_url + /api/v1/incidents/<id>
};
notifier::AlertView PageView(const PageInput& in);

}  // namespace bpmc::incidents
