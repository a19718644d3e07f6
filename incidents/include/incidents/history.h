#pragma once
// An incident written as it stands, without the engine: for tools that load
// sample or imported history (`bpmc-exporter demo-data`). The engine, the API
// and the reports then treat it like any other incident.

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/transaction>
#include <string>
#include <vector>

#include "incidents/timeline.h"

namespace bpmc::incidents {

struct IncidentHistory {
  std::string group_key;  // "am:<groupKey>" or "<source>:<dedup_key>"
  std::string title;
  std::string severity;   // critical, warning, info
  std::string connector;  // "" when none
  std::string status;     // triggered, acknowledged, resolved
  int64_t created_us = 0;
  std::optional<int64_t> acknowledged_us;
  std::string acknowledged_by;
  std::optional<int64_t> resolved_us;
  std::string resolved_by;
  std::map<std::string, std::string> labels;  // the alerts' common labels

  struct Alert {
    std::string source = "alertmanager";
    std::string dedup_key;
    std::string status;  // firing, resolved
    std::string alertname;
    int64_t starts_us = 0;
    std::map<std::string, std::string> labels;
  };
  std::vector<Alert> alerts;

  struct Page {  // one (channel, destination) paged
    std::string channel, destination, person;
    int64_t first_us = 0;
  };
  std::vector<Page> pages;

  std::vector<TimelineRecord> timeline;  // oldest first; incident_id is ignored
};

// Inserts the incident, its alerts, pages and timeline inside `txn` and returns
// its id. It has no escalation policy and nothing is due (next_due_at NULL), so
// the engine never pages for it. An open incident (triggered or acknowledged)
// must not share its group_key with another open one (unique index: pqxx
// unique_violation). Throws pqxx errors.
int64_t RecordIncident(pqxx::work& txn, const IncidentHistory& incident);

}  // namespace bpmc::incidents
