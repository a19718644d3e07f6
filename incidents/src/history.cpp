// RecordIncident (incidents/history.h): the rows the engine would have written
// for an incident, in one go.

#include "incidents/history.h"

#include <nlohmann/json.hpp>

#include "sql.h"

namespace bpmc::incidents {
namespace {

std::string JsonObject(const std::map<std::string, std::string>& labels) {
  return nlohmann::json(labels).dump();
}

}  // namespace

int64_t RecordIncident(pqxx::work& txn, const IncidentHistory& h) {
  const int64_t updated = h.resolved_us.value_or(h.acknowledged_us.value_or(h.created_us));
  const int64_t id =
      txn.exec_params1(
             "INSERT INTO incidents (group_key, title, severity, connector, status, created_at,"
             " acknowledged_at, acknowledged_by, resolved_at, resolved_by, escalation_policy,"
             " next_due_at, muted, labels, updated_at)"
             " VALUES ($1, $2, $3, $4, $5, " BPMC_TS("$6") ", " BPMC_TS("$7") ", $8, " BPMC_TS(
                 "$9") ", $10, '', NULL, false, $11::jsonb, " BPMC_TS("$12") ") RETURNING id",
             h.group_key, h.title, h.severity, h.connector, h.status, h.created_us,
             h.acknowledged_us, h.acknowledged_us ? std::optional(h.acknowledged_by) : std::nullopt,
             h.resolved_us, h.resolved_us ? std::optional(h.resolved_by) : std::nullopt,
             JsonObject(h.labels), updated)[0]
          .as<int64_t>();
  for (const auto& a : h.alerts) {
    nlohmann::json alert = {{"alertname", a.alertname}, {"status", a.status}, {"labels", a.labels}};
    txn.exec_params(
        "INSERT INTO incident_alerts (incident_id, source, dedup_key, status, alertname,"
        " starts_at, labels, alert) VALUES ($1, $2, $3, $4, $5, " BPMC_TS("$6") ", $7::jsonb,"
        " $8::jsonb)",
        id, a.source, a.dedup_key, a.status, a.alertname, a.starts_us, JsonObject(a.labels),
        alert.dump());
  }
  for (const auto& p : h.pages)
    txn.exec_params(
        "INSERT INTO incident_pages (incident_id, channel, destination, person, first_at)"
        " VALUES ($1, $2, $3, $4, " BPMC_TS("$5") ")",
        id, p.channel, p.destination, p.person, p.first_us);
  for (TimelineRecord r : h.timeline) {
    r.incident_id = id;
    AppendTimeline(txn, r);
  }
  return id;
}

}  // namespace bpmc::incidents
