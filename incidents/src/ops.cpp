#include "ops.h"

#include <set>

#include "common/time_format.h"
#include "incidents/config.h"
#include "incidents/links.h"
#include "incidents/overrides.h"
#include "incidents/timeline.h"
#include "notifier/outbox.h"
#include "oncall/schedule.h"
#include "sql.h"

namespace bpmc::incidents {
namespace {

using Json = nlohmann::json;
using Labels = std::map<std::string, std::string>;

std::string Label(const Labels& labels, const std::string& name) {
  auto it = labels.find(name);
  return it == labels.end() ? "" : it->second;
}

Labels LabelsFromText(const std::string& text) {
  Labels out;
  const Json j = Json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

// The labels two alerts have in common (same name, same value).
Labels Intersect(const Labels& a, const Labels& b) {
  Labels out;
  for (const auto& [k, v] : a)
    if (Label(b, k) == v) out[k] = v;
  return out;
}

std::optional<int64_t> OptUs(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<int64_t>();
}

std::string IncidentDedupKey(int64_t id) { return "incident-" + std::to_string(id); }

// The key prefix of a's level (oncall/escalation.h: "<policy>[/a<plan>]/r<round>/l<level>/").
std::string LevelPrefix(const std::string& policy, const oncall::PageAction& a) {
  return policy + (a.plan > 0 ? "/a" + std::to_string(a.plan) : std::string()) + "/r" +
         std::to_string(a.round) + "/l" + std::to_string(a.level) + "/";
}

const char* StepKind(oncall::PageAction::Kind k) {
  switch (k) {
    case oncall::PageAction::Kind::kContact:
      return "contact";
    case oncall::PageAction::Kind::kChannel:
      return "channel";
    case oncall::PageAction::Kind::kNobodyOnCall:
      return "nobody_on_call";
  }
  return "contact";
}

constexpr const char* kIncidentColumns =
    "id, group_key, title, severity, connector, status, escalation_policy, " BPMC_US("created_at")
    ", " BPMC_US("acknowledged_at") ", coalesce(acknowledged_by, ''), " BPMC_US("resolved_at")
    ", coalesce(resolved_by, ''), " BPMC_US("next_due_at") ", muted, labels::text, " BPMC_US(
        "snoozed_until") ", coalesce(snoozed_by, '')";

IncidentRecord IncidentFromRow(const pqxx::row& r) {
  IncidentRecord i;
  i.id = r[0].as<int64_t>();
  i.group_key = r[1].as<std::string>();
  i.title = r[2].as<std::string>();
  i.severity = r[3].as<std::string>();
  i.connector = r[4].as<std::string>();
  i.status = r[5].as<std::string>();
  i.escalation_policy = r[6].as<std::string>();
  i.created_us = r[7].as<int64_t>();
  i.acknowledged_us = OptUs(r[8]);
  i.acknowledged_by = r[9].as<std::string>();
  i.resolved_us = OptUs(r[10]);
  i.resolved_by = r[11].as<std::string>();
  i.next_due_us = OptUs(r[12]);
  i.muted = r[13].as<bool>();
  i.labels = LabelsFromText(r[14].as<std::string>());
  i.snoozed_until_us = OptUs(r[15]);
  i.snoozed_by = r[16].as<std::string>();
  return i;
}

}  // namespace

void AppendTimeline(pqxx::work& txn, const TimelineRecord& r) {
  txn.exec_params(
      "INSERT INTO incident_timeline (incident_id, at, kind, actor, channel, person, result, "
      "detail)"
      " VALUES ($1, " BPMC_TS("$2") ", $3, $4, $5, $6, $7, $8::jsonb)",
      r.incident_id, r.at_us, r.kind, r.actor, r.channel, r.person, r.result, r.detail);
}

void Engine::Ops::Timeline(pqxx::work& txn, int64_t id, int64_t at, const std::string& kind,
                           const std::string& actor, const Json& detail, const std::string& channel,
                           const std::string& person, const std::string& result) {
  AppendTimeline(txn, TimelineRecord{id, at, kind, actor, channel, person, result,
                                     notifier::DumpJson(detail)});
}

// --- Alert events -------------------------------------------------------------

void Engine::Ops::HandleFiring(pqxx::work& txn, FiringBatch& batch, const StoredEvent& ev,
                               int64_t now) {
  // Silenced firings open nothing (webhook_receiver/silences.h); unrouted or
  // stale firings nothing unless a route gave them a policy.
  if (ev.outcome == "silenced") return;
  const bool pages = ev.outcome == "notified" || ev.outcome == "muted";
  if (!pages && ev.escalation_policy.empty()) return;
  if (ev.outcome == "stale") return;
  const std::string group = IncidentGroupKey(ev.source, ev.group_key, ev.dedup_key);
  const std::string connector = Label(ev.alert.labels, "connector");
  auto it = batch.open.find(group);
  if (it == batch.open.end()) {
    const pqxx::result open = txn.exec_params(
        "SELECT id, severity, connector, labels::text FROM incidents"
        " WHERE group_key = $1 AND status <> 'resolved' FOR UPDATE",
        group);
    FiringBatch::Open o;
    if (open.empty()) {
      o.id = OpenIncident(txn, ev, group, now);
      o.severity = ev.alert.severity;
      o.connector = connector;
      o.labels = ev.alert.labels;
      o.created_here = true;
    } else {
      o.id = open[0][0].as<int64_t>();
      o.severity = open[0][1].as<std::string>();
      o.connector = open[0][2].as<std::string>();
      o.labels = LabelsFromText(open[0][3].as<std::string>());
    }
    it = batch.open.emplace(group, std::move(o)).first;
  } else {
    FiringBatch::Open& o = it->second;
    const std::string severity = MoreSevere(o.severity, ev.alert.severity);
    const std::string merged = MergeConnector(o.connector, false, connector);
    Labels labels = Intersect(o.labels, ev.alert.labels);
    // Most alerts of a group change nothing here: write only a change (at Flush).
    o.dirty = o.dirty || severity != o.severity || merged != o.connector || labels != o.labels;
    o.severity = severity;
    o.connector = merged;
    o.labels = std::move(labels);
  }
  batch.alerts.push_back({{"incident_id", it->second.id},
                          {"source", ev.source},
                          {"dedup_key", ev.dedup_key},
                          {"alertname", ev.alert.alertname},
                          {"starts_us", ev.starts_us},
                          {"labels", ev.alert.labels},
                          {"alert", notifier::ToJson(ev.alert)},
                          {"event_id", ev.id}});
}

int64_t Engine::Ops::OpenIncident(pqxx::work& txn, const StoredEvent& ev, const std::string& group,
                                  int64_t now) {
  const bool muted =
      ev.outcome == "muted" || (o_.is_muted && o_.is_muted(txn, ev.alert.labels, now));
  const bool escalates = !ev.escalation_policy.empty() && !muted;
  const int64_t id =
      txn.exec_params1("INSERT INTO incidents (group_key, title, severity, connector, created_at,"
                       " escalation_policy, next_due_at, muted, labels, updated_at)"
                       " VALUES ($1, $2, $3, $4, " BPMC_TS("$5") ", $6,"
                       " CASE WHEN $7 THEN " BPMC_TS("$5") " END, $8, $9::jsonb, " BPMC_TS("$5") ")"
                       " RETURNING id",
                       group, IncidentTitle(ev.alert), ev.alert.severity,
                       Label(ev.alert.labels, "connector"), now, ev.escalation_policy, escalates,
                       muted, notifier::DumpJson(Json(ev.alert.labels)))[0]
          .as<int64_t>();
  Timeline(txn, id, now, "detected", ev.source,
           {{"alert", ev.alert.alertname},
            {"dedup_key", ev.dedup_key},
            {"summary", ev.alert.summary},
            {"group_key", group}});
  Timeline(txn, id, now, "classified", "",
           {{"severity", ev.alert.severity},
            {"routes", ev.routes},
            {"escalation_policy", ev.escalation_policy}});
  if (muted) Timeline(txn, id, now, "muted", "", {{"reason", "maintenance"}});
  metrics_.IncidentOpened(ev.alert.severity, muted);
  return id;
}

// The alerts joined since the last flush, and the incidents they changed, in three
// statements whatever their number (a storm of one group is one incident).
void Engine::Ops::Flush(pqxx::work& txn, FiringBatch& batch, int64_t now) {
  for (auto& [group, o] : batch.open) {
    if (!o.dirty) continue;
    txn.exec_params(
        "UPDATE incidents SET severity = $2, connector = $3, labels = $4::jsonb,"
        " updated_at = " BPMC_TS("$5") " WHERE id = $1",
        o.id, o.severity, o.connector, notifier::DumpJson(Json(o.labels)), now);
    o.dirty = false;
  }
  if (batch.alerts.empty()) return;
  // Upsert the alerts; a new alert of an incident that existed before it is 'alert_added'
  // (the first alert of a new incident is its 'detected'), a known one 'alert_refired'.
  std::string first_ids = "{";
  for (const auto& [group, o] : batch.open)
    if (o.created_here) first_ids += (first_ids.size() > 1 ? "," : "") + std::to_string(o.id);
  first_ids += "}";
  txn.exec_params(
      "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(incident_id bigint, source text,"
      "   dedup_key text, alertname text, starts_us bigint, labels jsonb, alert jsonb, event_id bigint)),"
      " up AS (INSERT INTO incident_alerts AS a (incident_id, source, dedup_key, status, alertname,"
      "   starts_at, labels, alert, first_event_id, last_event_id)"
      "   SELECT DISTINCT ON (incident_id, source, dedup_key) incident_id, source, dedup_key,"
      "     'firing', alertname, " BPMC_TS("starts_us") ", labels, alert, event_id, event_id"
      "   FROM x ORDER BY incident_id, source, dedup_key, event_id DESC"
      "   ON CONFLICT (incident_id, source, dedup_key) DO UPDATE SET status = 'firing',"
      "     starts_at = EXCLUDED.starts_at, alert = EXCLUDED.alert,"
      "     last_event_id = EXCLUDED.last_event_id"
      "   RETURNING a.incident_id, a.source, a.dedup_key, a.alertname, (xmax = 0) AS added,"
      "     a.first_event_id)"
      " INSERT INTO incident_timeline (incident_id, at, kind, actor, detail)"
      " SELECT incident_id, " BPMC_TS("$2") ", CASE WHEN added THEN 'alert_added'"
      "   ELSE 'alert_refired' END, source,"
      "   jsonb_build_object('alert', alertname, 'dedup_key', dedup_key)"
      " FROM up WHERE NOT (added AND incident_id = ANY($3::bigint[])"
      "   AND first_event_id = (SELECT min(u.first_event_id) FROM up u"
      "                         WHERE u.incident_id = up.incident_id))"
      " ORDER BY first_event_id",
      notifier::DumpJson(batch.alerts), now, first_ids);
  batch.alerts = Json::array();
  for (auto& [group, o] : batch.open) o.created_here = false;  // its first alert is written
}

bool Engine::Ops::HandleResolved(pqxx::work& txn, FiringBatch& batch, const StoredEvent& ev,
                                 int64_t now) {
  Flush(txn, batch, now);  // the firings before it in this batch first
  const pqxx::result hit = txn.exec_params(
      "UPDATE incident_alerts a SET status = 'resolved', last_event_id = $3"
      " FROM incidents i WHERE a.incident_id = i.id AND i.status <> 'resolved'"
      " AND a.source = $1 AND a.dedup_key = $2 AND a.status = 'firing'"
      " RETURNING a.incident_id",
      ev.source, ev.dedup_key, ev.id);
  bool enqueued = false;
  for (const auto& row : hit) {
    const int64_t id = row[0].as<int64_t>();
    Timeline(txn, id, now, "alert_resolved", ev.source,
             {{"alert", ev.alert.alertname}, {"dedup_key", ev.dedup_key}});
    const bool all_resolved = txn.exec_params1(
                                     "SELECT NOT EXISTS (SELECT 1 FROM incident_alerts"
                                     " WHERE incident_id = $1 AND status = 'firing')",
                                     id)[0]
                                  .as<bool>();
    bool e = false;
    if (all_resolved) {
      Resolve(txn, id, ev.source, "alerts", now, &e);
      // A later firing of the group in this batch opens a new incident.
      for (auto it = batch.open.begin(); it != batch.open.end();)
        it = it->second.id == id ? batch.open.erase(it) : std::next(it);
    }
    enqueued = enqueued || e;
  }
  return enqueued;
}

// --- Escalation ---------------------------------------------------------------

bool Engine::Ops::IsPagerDuty(const std::string& channel) const {
  auto it = o_.channels.channels.find(channel);
  return it != o_.channels.channels.end() && it->second.type == notifier::ChannelType::kPagerDuty;
}

std::vector<Engine::Ops::Dest> Engine::Ops::Expand(const oncall::PageAction& a,
                                                   std::string* problem) const {
  std::vector<Dest> out;
  std::string channel = a.channel;
  std::string person;
  std::string address;
  if (a.kind == oncall::PageAction::Kind::kContact) {
    channel =
        a.method.channel.empty() ? DefaultChannelFor(o_.channels, a.method.type) : a.method.channel;
    person = a.person;
    address = a.method.address;
  }
  if (channel.empty() || !notifier::HasChannel(o_.channels, channel)) {
    *problem = channel.empty()
                   ? std::string("no channel of type ") + oncall::ContactTypeName(a.method.type)
                   : "unknown channel '" + channel + "'";
    return out;
  }
  if (!address.empty()) {
    out.push_back({channel, address, person});
  } else {
    for (std::string& d : notifier::Destinations(o_.channels, channel))
      out.push_back({channel, std::move(d), person});
  }
  return out;
}

PageInput Engine::Ops::BaseInput(pqxx::work& txn, int64_t id) {
  // The connector by its display name (identity's view connector_names), else its id.
  const pqxx::row r = txn.exec_params1(
      "SELECT title, severity, " BPMC_US("created_at") ", labels::text,"
      " (SELECT count(*) FROM incident_alerts WHERE incident_id = i.id),"
      " coalesce((SELECT alert::text FROM incident_alerts WHERE incident_id = i.id"
      "           ORDER BY first_event_id LIMIT 1), '{}'),"
      " coalesce((SELECT n.name FROM connector_names n WHERE n.id = i.connector), i.connector)"
      " FROM incidents i WHERE id = $1",
      id);
  PageInput in;
  in.incident_id = id;
  in.title = r[0].as<std::string>();
  in.severity = r[1].as<std::string>();
  in.created_us = r[2].as<int64_t>();
  in.labels = LabelsFromText(r[3].as<std::string>());
  in.alert_count = static_cast<int>(r[4].as<int64_t>());
  const notifier::AlertView first =
      notifier::AlertViewFromJson(Json::parse(r[5].as<std::string>()));
  in.alertname = first.alertname;
  in.connector_name = r[6].as<std::string>();
  in.first_summary = first.summary;
  in.runbook_url = first.runbook_url;
  in.generator_url = first.generator_url;
  in.dedup_key = IncidentDedupKey(id);
  in.incident_url = IncidentPageUrl(o_.config.public_url, id);
  return in;
}

void Engine::Ops::ForReader(PageInput* in, const std::string& person, int64_t now) const {
  in->at_us = now;
  in->locale = "ru";
  in->time_zone = "Europe/Moscow";
  if (auto p = o_.oncall.people.find(person); p != o_.oncall.people.end()) {
    in->locale = p->second.locale;
    if (!p->second.time_zone.empty()) in->time_zone = p->second.time_zone;
  }
  in->utc_offset_seconds = oncall::UtcOffsetSeconds(in->time_zone, now).value_or(3 * 3600);
}

void Engine::Ops::PageDest(pqxx::work& txn, int64_t id, int64_t now, const Dest& d,
                           const PageInput& base, const std::string& event, const Json& extra) {
  const int pages = txn.exec_params1(
                           "INSERT INTO incident_pages (incident_id, channel, destination,"
                           " person, first_at) VALUES ($1, $2, $3, $4, " BPMC_TS("$5") ")"
                           " ON CONFLICT (incident_id, channel, destination) DO UPDATE"
                           " SET pages = incident_pages.pages + 1 RETURNING pages",
                           id, d.channel, d.destination, d.person, now)[0]
                        .as<int>();
  PageInput in = base;
  in.status = "firing";
  in.event = event;
  in.first_page = pages == 1;
  ForReader(&in, d.person, now);
  // PagerDuty keeps one incident per dedup key; other channels get a new
  // key for a repeated page so the outbox does not take it for a duplicate.
  if (!IsPagerDuty(d.channel) && pages > 1) in.dedup_key += "~" + std::to_string(pages);
  if (!o_.config.ack_link_secret.empty())
    in.ack_url = AckUrl(o_.config.public_url, o_.config.ack_link_secret,
                        {id, (now + o_.config.ack_link_ttl_micros) / 1000000, d.person});
  Notify(txn, id, now, d, PageView(in), extra);
}

bool Engine::Ops::PagePerson(pqxx::work& txn, int64_t id, int64_t now, const std::string& person,
                             const std::string& event, const std::string& actor,
                             const Json& extra) {
  auto p = o_.oncall.people.find(person);
  if (p == o_.oncall.people.end()) return false;
  PageInput base = BaseInput(txn, id);
  base.actor = actor;
  bool enqueued = false;
  // Every contact method at once: the person is asked now, not on a schedule.
  for (const oncall::ContactMethod& m : p->second.contact_methods) {
    oncall::PageAction a;
    a.kind = oncall::PageAction::Kind::kContact;
    a.person = person;
    a.method = m;
    std::string problem;
    const std::vector<Dest> dests = Expand(a, &problem);
    if (!problem.empty()) {
      Json detail = extra;
      detail["error"] = problem;
      Timeline(txn, id, now, "notified", "", detail, "", person, "no_channel");
      failure_("escalation_no_channel");
      continue;
    }
    for (const Dest& d : dests) {
      PageDest(txn, id, now, d, base, event, extra);
      enqueued = true;
    }
  }
  return enqueued;
}

void Engine::Ops::Notify(pqxx::work& txn, int64_t id, int64_t now, const Dest& d,
                         const notifier::AlertView& view, const Json& extra) {
  notifier::Enqueue(txn, {notifier::OutboxEntry{d.channel, d.destination, view}});
  Json detail = extra;
  detail["destination"] = d.destination;
  detail["dedup_key"] = view.dedup_key;
  detail["status"] = view.status;
  detail["starts_at"] = FormatRfc3339Micros(ParseRfc3339Micros(view.starts_at).value_or(0));
  Timeline(txn, id, now, "notified", "", detail, d.channel, d.person, "queued");
  metrics_.Page(d.channel, view.status);
}

namespace {

// incidents.ack_resumptions as the escalation's resumptions (malformed entries skipped).
std::vector<oncall::Resumption> Resumptions(const std::string& text) {
  std::vector<oncall::Resumption> out;
  const Json j = Json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const Json& r : j) {
    if (!r.is_object() || !r.contains("acknowledged_us") || !r.contains("resumed_us") ||
        !r["acknowledged_us"].is_number_integer() || !r["resumed_us"].is_number_integer())
      continue;
    const int advance =
        r.contains("advance") && r["advance"].is_number_integer() ? r["advance"].get<int>() : 0;
    out.push_back({r["acknowledged_us"].get<int64_t>(), r["resumed_us"].get<int64_t>(), advance});
  }
  return out;
}

}  // namespace

// An acknowledged incident picked at its next_due_at: the end of its snooze or
// its acknowledgement's timeout. Returns the end when it came and the incident
// is triggered again (state updated: the acknowledgement became a resumption at
// `now`); otherwise nullopt and next_due_at is the end, or NULL when there is none.
std::optional<oncall::AckEnd> Engine::Ops::ResumeIfAckEnded(pqxx::work& txn, int64_t id,
                                                            const oncall::EscalationPolicy* policy,
                                                            oncall::IncidentState* state,
                                                            int64_t now) {
  const std::optional<oncall::AckEnd> end = oncall::AcknowledgementEnds(policy, *state);
  if (!end || end->at_micros > now) {
    txn.exec_params("UPDATE incidents SET next_due_at = CASE WHEN $2 THEN " BPMC_TS("$3") " END"
                    " WHERE id = $1",
                    id, end.has_value(), end ? end->at_micros : 0);
    return std::nullopt;
  }
  const int64_t acked = *state->acknowledged_micros;
  const pqxx::row who = txn.exec_params1(
      "SELECT coalesce(acknowledged_by, ''), coalesce(snoozed_by, '') FROM incidents"
      " WHERE id = $1",
      id);
  txn.exec_params(
      "UPDATE incidents SET status = 'triggered', acknowledged_at = NULL,"
      " acknowledged_by = NULL, snoozed_until = NULL, snoozed_by = NULL,"
      " updated_at = " BPMC_TS("$2") ","
      " ack_resumptions = ack_resumptions || jsonb_build_array(jsonb_build_object("
      "'acknowledged_us', $3::bigint, 'resumed_us', $2::bigint))"
      " WHERE id = $1",
      id, now, acked);
  if (end->snooze) {
    Timeline(txn, id, now, "snooze_ended", "",
             {{"acknowledged_by", who[0].as<std::string>()},
              {"snoozed_by", who[1].as<std::string>()},
              {"acknowledged_at", FormatRfc3339Micros(acked)}});
    metrics_.SnoozeEnded();
  } else {
    Timeline(txn, id, now, "ack_timeout", "",
             {{"acknowledged_by", who[0].as<std::string>()},
              {"acknowledged_at", FormatRfc3339Micros(acked)},
              {"ack_timeout_seconds", policy ? policy->ack_timeout_micros / 1000000 : 0}});
    metrics_.AckTimedOut();
  }
  state->resumptions.push_back({acked, now});
  state->acknowledged_micros.reset();
  state->snoozed_until_micros.reset();
  return end;
}

bool Engine::Ops::EscalateOne(pqxx::work& txn, int64_t now, bool* enqueued) {
  const pqxx::result due = txn.exec_params(
      "SELECT id, escalation_policy, " BPMC_US("created_at") ", " BPMC_US("acknowledged_at")
      ", " BPMC_US("resolved_at") ", ack_resumptions::text, " BPMC_US("snoozed_until")
      ", coalesce(acknowledged_by, ''), muted FROM incidents WHERE next_due_at <= " BPMC_TS("$1")
      " ORDER BY next_due_at LIMIT 1 FOR UPDATE SKIP LOCKED",
      now);
  if (due.empty()) return false;
  const int64_t id = due[0][0].as<int64_t>();
  const std::string policy_id = due[0][1].as<std::string>();
  const bool muted = due[0][8].as<bool>();
  auto policy = o_.oncall.escalation_policies.find(policy_id);
  const bool escalates = policy != o_.oncall.escalation_policies.end() && !muted;
  oncall::IncidentState state;
  state.started_micros = due[0][2].as<int64_t>();
  state.acknowledged_micros = OptUs(due[0][3]);
  state.resolved_micros = OptUs(due[0][4]);
  state.resumptions = Resumptions(due[0][5].as<std::string>());
  state.snoozed_until_micros = OptUs(due[0][6]);
  // The acknowledger, paged when their snooze ends (when they are an on-call person).
  std::string wake;
  if (state.acknowledged_micros && !state.resolved_micros) {
    const auto ended =
        ResumeIfAckEnded(txn, id, escalates ? &policy->second : nullptr, &state, now);
    if (!ended) return true;
    if (ended->snooze) wake = due[0][7].as<std::string>();
  }
  if (!escalates) {
    txn.exec_params("UPDATE incidents SET next_due_at = NULL WHERE id = $1", id);
    if (!wake.empty())
      *enqueued =
          PagePerson(txn, id, now, wake, "snooze_ended", "", {{"snooze", true}}) || *enqueued;
    if (!muted && !policy_id.empty() && policy == o_.oncall.escalation_policies.end()) {
      Timeline(txn, id, now, "escalation_stopped", "",
               {{"reason", "unknown escalation policy '" + policy_id + "'"}});
      failure_("unknown_escalation_policy");
    }
    return true;
  }
  for (const auto& r :
       txn.exec_params("SELECT step_key FROM escalation_steps WHERE incident_id = $1", id))
    state.done_steps.insert(r[0].as<std::string>());
  const std::set<std::string> done_before = state.done_steps;

  // Who is on call comes from the YAML and the overrides made through the API.
  const oncall::OnCallConfig oncall =
      WithStoredOverrides(txn, o_.oncall, now - kOverrideLookbackMicros);
  const std::vector<oncall::PageAction> actions = oncall::Due(oncall, policy->second, state, now);
  PageInput base = actions.empty() ? PageInput{} : BaseInput(txn, id);
  std::set<std::string> levels_seen, paged_people;
  for (const oncall::PageAction& a : actions) {
    const bool claimed =
        !txn.exec_params("INSERT INTO escalation_steps (incident_id, step_key, due_at, done_at)"
                         " VALUES ($1, $2, " BPMC_TS("$3") ", " BPMC_TS("$4") ")"
                         " ON CONFLICT DO NOTHING RETURNING 1",
                         id, a.key, a.due_micros, now)
             .empty();
    for (const std::string& k : a.covered_keys)
      txn.exec_params("INSERT INTO escalation_steps (incident_id, step_key, due_at, done_at)"
                      " VALUES ($1, $2, " BPMC_TS("$3") ", " BPMC_TS("$4") ")"
                      " ON CONFLICT DO NOTHING",
                      id, k, a.due_micros, now);
    state.done_steps.insert(a.key);
    state.done_steps.insert(a.covered_keys.begin(), a.covered_keys.end());
    if (!claimed) continue;  // done by another receiver meanwhile
    const std::string prefix = LevelPrefix(policy_id, a);
    const bool level_new = std::none_of(done_before.begin(), done_before.end(),
                                        [&](const auto& k) { return k.rfind(prefix, 0) == 0; });
    if ((a.round > 0 || a.level > 0) && level_new && levels_seen.insert(prefix).second)
      Timeline(txn, id, now, a.level == 0 ? "repeated" : "escalated", "",
               {{"round", a.round}, {"level", a.level}, {"policy", policy_id}});
    metrics_.Step(StepKind(a.kind));
    const Json step = {{"step", a.key},
                       {"round", a.round},
                       {"level", a.level},
                       {"due_at", FormatRfc3339Micros(a.due_micros)}};
    if (a.kind == oncall::PageAction::Kind::kNobodyOnCall) {
      Json detail = step;
      detail["schedule"] = a.target.id;
      Timeline(txn, id, now, "nobody_on_call", "", detail);
      continue;
    }
    std::string problem;
    const std::vector<Dest> dests = Expand(a, &problem);
    if (!problem.empty()) {
      Json detail = step;
      detail["error"] = problem;
      Timeline(txn, id, now, "notified", "", detail, a.channel, a.person, "no_channel");
      failure_("escalation_no_channel");
      continue;
    }
    const bool first_level = a.plan == 0 && a.round == 0 && a.level == 0;
    for (const Dest& d : dests) {
      PageDest(txn, id, now, d, base, first_level ? "firing" : "escalated", step);
      paged_people.insert(d.person);
      *enqueued = true;
    }
  }
  // The snooze's end pages the acknowledger unless the resumed level just did.
  if (!wake.empty() && !paged_people.count(wake))
    *enqueued = PagePerson(txn, id, now, wake, "snooze_ended", "", {{"snooze", true}}) || *enqueued;
  const auto next = oncall::NextDueAt(oncall, policy->second, state, now);
  txn.exec_params(
      "UPDATE incidents SET next_due_at = CASE WHEN $2 THEN " BPMC_TS("$3") " END WHERE id = $1",
      id, next.has_value(), next.value_or(0));
  return true;
}

// --- Acknowledge, resolve, notes ---------------------------------------------

bool Engine::Ops::EchoAcknowledgement(pqxx::work& txn, int64_t id, int64_t now,
                                      const std::string& actor) {
  bool enqueued = false;
  // The incident's own PagerDuty pages, and its e-mail, Slack and Telegram pages (the
  // thread says who acknowledged; a Telegram message is edited in place, docs/RECEIVER.md
  // "Telegram"; SMS and webhooks are not told).
  PageInput in = BaseInput(txn, id);
  in.status = "acknowledged";
  in.event = "acknowledged";
  in.actor = actor;
  const std::string acknowledged_by =
      txn.exec_params1("SELECT coalesce(acknowledged_by, '') FROM incidents WHERE id = $1", id)[0]
          .as<std::string>();
  for (const auto& r : txn.exec_params(
           "SELECT channel, destination, person FROM incident_pages WHERE incident_id = $1"
           " ORDER BY channel, destination",
           id)) {
    Dest d{r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>()};
    auto c = o_.channels.channels.find(d.channel);
    if (c == o_.channels.channels.end()) continue;  // gone from the config
    const notifier::ChannelType type = c->second.type;
    if (type != notifier::ChannelType::kPagerDuty && type != notifier::ChannelType::kEmail &&
        type != notifier::ChannelType::kSlack && type != notifier::ChannelType::kTelegram)
      continue;
    PageInput mine = in;
    ForReader(&mine, d.person, now);
    // One acknowledgement message per acknowledgement: a re-acknowledgement after a
    // snooze or an ack timeout is a new message, not an outbox duplicate. The suffix is
    // "~<digits>" so Telegram still finds the incident's message to edit (TelegramThreadKey).
    if (type != notifier::ChannelType::kPagerDuty) mine.dedup_key += "~" + std::to_string(now);
    notifier::AlertView page = PageView(mine);
    page.annotations["acknowledged_by"] = acknowledged_by;
    page.annotations["acknowledged_at"] = FormatRfc3339Micros(now);
    Notify(txn, id, now, d, page, Json::object());
    enqueued = true;
  }
  // The PagerDuty incidents the routes opened for its alerts (their own dedup keys).
  for (const auto& r : txn.exec_params(
           "SELECT alert::text FROM incident_alerts WHERE incident_id = $1 ORDER BY first_event_id",
           id)) {
    notifier::AlertView view = notifier::AlertViewFromJson(Json::parse(r[0].as<std::string>()));
    for (const auto& [channel, destination] :
         notifier::FiringRecipients(txn, view.dedup_key, view.starts_at)) {
      if (!IsPagerDuty(channel)) continue;
      view.status = "acknowledged";
      Notify(txn, id, now, Dest{channel, destination, ""}, view, {{"alert", view.alertname}});
      enqueued = true;
    }
  }
  return enqueued;
}

bool Engine::Ops::SendResolution(pqxx::work& txn, int64_t id, int64_t now,
                                 const std::string& actor) {
  PageInput in = BaseInput(txn, id);
  in.status = "resolved";
  in.event = "resolved";
  in.actor = actor;
  in.ended_us = now;
  const std::string resolved_by =
      txn.exec_params1("SELECT coalesce(resolved_by, '') FROM incidents WHERE id = $1", id)[0]
          .as<std::string>();
  bool enqueued = false;
  for (const auto& r : txn.exec_params(
           "SELECT channel, destination, person FROM incident_pages WHERE incident_id = $1"
           " ORDER BY channel, destination",
           id)) {
    Dest d{r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>()};
    if (!notifier::HasChannel(o_.channels, d.channel)) continue;  // gone from the config
    PageInput mine = in;
    ForReader(&mine, d.person, now);
    notifier::AlertView page = PageView(mine);
    page.annotations["resolved_by"] = resolved_by;
    Notify(txn, id, now, d, page, Json::object());
    enqueued = true;
  }
  return enqueued;
}

namespace {

constexpr const char* kAcknowledgeSql =
    "UPDATE incidents SET status = 'acknowledged', acknowledged_at = " BPMC_TS("$2")
    ", acknowledged_by = $3, next_due_at = NULL, snoozed_until = NULL, snoozed_by = NULL,"
    " updated_at = " BPMC_TS("$2") " WHERE id = $1 AND status = 'triggered'"
    " RETURNING " BPMC_US("created_at");
constexpr const char* kResolveSql =
    "UPDATE incidents SET status = 'resolved', resolved_at = " BPMC_TS("$2")
    ", resolved_by = $3, next_due_at = NULL, snoozed_until = NULL, snoozed_by = NULL,"
    " updated_at = " BPMC_TS("$2") " WHERE id = $1 AND status <> 'resolved'"
    " RETURNING " BPMC_US("created_at");

// Runs a status change (`update`: $1 id, $2 now, $3 actor, RETURNING the creation time
// in µs) and returns the creation time; when no row changed, nullopt and *outcome is
// kAlready (the incident exists) or kNotFound.
std::optional<int64_t> Transition(pqxx::work& txn, const char* update, int64_t id, int64_t now,
                                  const std::string& actor, Engine::Outcome* outcome) {
  const pqxx::result r = txn.exec_params(update, id, now, actor);
  if (!r.empty()) return r[0][0].as<int64_t>();
  const bool exists = !txn.exec_params("SELECT 1 FROM incidents WHERE id = $1", id).empty();
  *outcome = exists ? Engine::Outcome::kAlready : Engine::Outcome::kNotFound;
  return std::nullopt;
}

}  // namespace

Engine::Outcome Engine::Ops::Acknowledge(pqxx::work& txn, int64_t id, const std::string& actor,
                                         const std::string& via, int64_t now, bool* enqueued) {
  Engine::Outcome outcome = Engine::Outcome::kDone;
  const auto created = Transition(txn, kAcknowledgeSql, id, now, actor, &outcome);
  if (!created) return outcome;
  Timeline(txn, id, now, "acknowledged", actor, {{"via", via}});
  // With an ack_timeout the engine looks at it again then (ResumeIfAckTimedOut).
  const std::string policy_id =
      txn.exec_params1(
             "SELECT CASE WHEN muted THEN '' ELSE escalation_policy END FROM incidents"
             " WHERE id = $1",
             id)[0]
          .as<std::string>();
  if (auto p = o_.oncall.escalation_policies.find(policy_id);
      p != o_.oncall.escalation_policies.end() && p->second.ack_timeout_micros > 0)
    txn.exec_params("UPDATE incidents SET next_due_at = " BPMC_TS("$2") " WHERE id = $1", id,
                    now + p->second.ack_timeout_micros);
  *enqueued = EchoAcknowledgement(txn, id, now, actor);
  metrics_.Acknowledged(via, static_cast<double>(now - *created) / 1e6);
  return Engine::Outcome::kDone;
}

Engine::Outcome Engine::Ops::Resolve(pqxx::work& txn, int64_t id, const std::string& actor,
                                     const std::string& by, int64_t now, bool* enqueued) {
  Engine::Outcome outcome = Engine::Outcome::kDone;
  const auto created = Transition(txn, kResolveSql, id, now, actor, &outcome);
  if (!created) return outcome;
  Timeline(txn, id, now, "resolved", actor, {{"by", by}});
  *enqueued = SendResolution(txn, id, now, by == "api" ? actor : "");
  metrics_.Resolved(by, static_cast<double>(now - *created) / 1e6);
  return Engine::Outcome::kDone;
}

Engine::Outcome Engine::Ops::EscalateNow(pqxx::work& txn, int64_t id, const std::string& actor,
                                         int64_t now) {
  const pqxx::result r = txn.exec_params(
      "SELECT status, escalation_policy FROM incidents WHERE id = $1 FOR UPDATE", id);
  if (r.empty()) return Engine::Outcome::kNotFound;
  const std::string policy = r[0][1].as<std::string>();
  if (r[0][0].as<std::string>() == "resolved" || !o_.oncall.escalation_policies.count(policy))
    return Engine::Outcome::kAlready;
  // The plan restarts from the next level now; EscalateOne pages it at once.
  txn.exec_params(
      "UPDATE incidents SET status = 'triggered', acknowledged_at = NULL, acknowledged_by = NULL,"
      " snoozed_until = NULL, snoozed_by = NULL,"
      " next_due_at = " BPMC_TS("$2") ", updated_at = " BPMC_TS("$2") ","
      " ack_resumptions = ack_resumptions || jsonb_build_array(jsonb_build_object("
      "'acknowledged_us', $2::bigint, 'resumed_us', $2::bigint, 'advance', 1))"
      " WHERE id = $1",
      id, now);
  Timeline(txn, id, now, "escalated", actor, {{"manual", true}, {"policy", policy}});
  return Engine::Outcome::kDone;
}

Engine::Outcome Engine::Ops::Snooze(pqxx::work& txn, int64_t id, const std::string& actor,
                                    int64_t duration_us, int64_t now) {
  const pqxx::result r =
      txn.exec_params("SELECT status FROM incidents WHERE id = $1 FOR UPDATE", id);
  if (r.empty()) return Engine::Outcome::kNotFound;
  if (r[0][0].as<std::string>() != "acknowledged") return Engine::Outcome::kAlready;
  const int64_t until = now + duration_us;
  txn.exec_params("UPDATE incidents SET snoozed_until = " BPMC_TS("$2") ", snoozed_by = $3,"
                  " next_due_at = " BPMC_TS("$2") ", updated_at = " BPMC_TS("$4") " WHERE id = $1",
                  id, until, actor, now);
  Timeline(txn, id, now, "snoozed", actor,
           {{"until", FormatRfc3339Micros(until)}, {"duration_seconds", duration_us / 1000000}});
  metrics_.Snoozed();
  return Engine::Outcome::kDone;
}

Engine::Outcome Engine::Ops::Reassign(pqxx::work& txn, int64_t id, const std::string& actor,
                                      const oncall::Target& target, int64_t now, bool* enqueued) {
  const pqxx::result r = txn.exec_params(
      "SELECT status, escalation_policy, muted, " BPMC_US("created_at") ", " BPMC_US(
          "acknowledged_at") ", ack_resumptions::text FROM incidents WHERE id = $1 FOR UPDATE",
      id);
  if (r.empty()) return Engine::Outcome::kNotFound;
  if (r[0][0].as<std::string>() == "resolved") return Engine::Outcome::kAlready;
  const std::string policy_id = r[0][1].as<std::string>();
  auto policy = o_.oncall.escalation_policies.find(policy_id);
  const bool escalates = policy != o_.oncall.escalation_policies.end() && !r[0][2].as<bool>();
  // Who: the person, or whoever the schedule (with the stored overrides) has on call now.
  std::string person = target.id;
  Json detail = Json::object();
  if (target.kind == oncall::Target::Kind::kSchedule) {
    const oncall::OnCallConfig oncall =
        WithStoredOverrides(txn, o_.oncall, now - kOverrideLookbackMicros);
    auto s = oncall.schedules.find(target.id);
    person = s == oncall.schedules.end()
                 ? std::string()
                 : oncall::WhoIsOnCall(s->second, oncall.overrides, now).person;
    detail["schedule"] = target.id;
  }
  detail["person"] = person;
  // The escalation goes on after the new target as after the level in progress.
  std::optional<oncall::Resumption> resumption;
  if (escalates) {
    oncall::IncidentState state;
    state.started_micros = r[0][3].as<int64_t>();
    state.acknowledged_micros = OptUs(r[0][4]);
    state.resumptions = Resumptions(r[0][5].as<std::string>());
    resumption = oncall::ReassignResumption(policy->second, state, now);
    detail["next_escalation_at"] = FormatRfc3339Micros(resumption->resumed_micros);
  }
  txn.exec_params(
      "UPDATE incidents SET status = 'triggered', acknowledged_at = NULL, acknowledged_by = NULL,"
      " snoozed_until = NULL, snoozed_by = NULL, updated_at = " BPMC_TS("$2") ","
      " next_due_at = CASE WHEN $3 THEN " BPMC_TS("$4") " END,"
      " ack_resumptions = CASE WHEN $3 THEN ack_resumptions || jsonb_build_array("
      "jsonb_build_object('acknowledged_us', $5::bigint, 'resumed_us', $4::bigint, 'advance', 1))"
      " ELSE ack_resumptions END WHERE id = $1",
      id, now, resumption.has_value(), resumption ? resumption->resumed_micros : 0,
      resumption ? resumption->acknowledged_micros : 0);
  Timeline(txn, id, now, "reassigned", actor, detail);
  metrics_.Reassigned();
  if (person.empty()) {
    Timeline(txn, id, now, "nobody_on_call", "", {{"schedule", target.id}, {"reassigned", true}});
    return Engine::Outcome::kDone;
  }
  *enqueued = PagePerson(txn, id, now, person, "reassigned", actor, {{"reassigned", true}});
  return Engine::Outcome::kDone;
}

Engine::Outcome Engine::Ops::AddNote(pqxx::work& txn, int64_t id, const std::string& actor,
                                     const std::string& text, int64_t now) {
  if (txn.exec_params("SELECT 1 FROM incidents WHERE id = $1", id).empty())
    return Engine::Outcome::kNotFound;
  Timeline(txn, id, now, "note", actor, {{"text", text}});
  return Engine::Outcome::kDone;
}

// --- Reading ------------------------------------------------------------------

std::optional<IncidentRecord> Engine::Ops::Load(pqxx::work& txn, int64_t id) {
  const pqxx::result r = txn.exec_params(
      std::string("SELECT ") + kIncidentColumns + " FROM incidents WHERE id = $1", id);
  if (r.empty()) return std::nullopt;
  IncidentRecord i = IncidentFromRow(r[0]);
  for (const auto& a : txn.exec_params("SELECT source, dedup_key, status, alertname, " BPMC_US(
                                           "starts_at") " FROM incident_alerts WHERE incident_id = "
                                                        "$1 ORDER BY first_event_id, dedup_key",
                                       id))
    i.alerts.push_back({a[0].as<std::string>(), a[1].as<std::string>(), a[2].as<std::string>(),
                        a[3].as<std::string>(), a[4].as<int64_t>()});
  for (const auto& p : txn.exec_params("SELECT person, channel, destination, " BPMC_US(
                                           "first_at") " FROM incident_pages WHERE incident_id = "
                                                       "$1 ORDER BY first_at, channel, destination",
                                       id))
    i.paged.push_back({p[0].as<std::string>(), p[1].as<std::string>(), p[2].as<std::string>(),
                       p[3].as<int64_t>()});
  // A notification's result is its outbox row's state (queued, delivered, failed).
  for (const auto& t : txn.exec_params(
           "SELECT " BPMC_US(
               "t.at") ", t.kind, t.actor, t.channel, t.person,"
                       " coalesce(o.state, t.result), t.detail::text"
                       " FROM incident_timeline t LEFT JOIN notification_outbox o ON t.kind = "
                       "'notified'"
                       "  AND o.channel = t.channel AND o.destination = t.detail->>'destination'"
                       "  AND o.dedup_key = t.detail->>'dedup_key' AND o.alert_status = "
                       "t.detail->>'status'"
                       "  AND o.starts_at = t.detail->>'starts_at'"
                       " WHERE t.incident_id = $1 ORDER BY t.at, t.id",
           id)) {
    TimelineEntry e;
    e.at_us = t[0].as<int64_t>();
    e.kind = t[1].as<std::string>();
    e.actor = t[2].as<std::string>();
    e.channel = t[3].as<std::string>();
    e.person = t[4].as<std::string>();
    e.result = t[5].as<std::string>();
    e.detail = Json::parse(t[6].as<std::string>(), nullptr, false);
    i.timeline.push_back(std::move(e));
  }
  return i;
}

std::vector<IncidentRecord> Engine::Ops::List(pqxx::work& txn, const IncidentFilter& filter) {
  std::vector<IncidentRecord> out;
  for (const auto& r :
       txn.exec_params(std::string("SELECT ") + kIncidentColumns +
                           " FROM incidents WHERE ($1 = '' OR status = $1) AND ($2 = 0 OR id < $2)"
                           " AND ($4 = '' OR connector = $4) ORDER BY id DESC LIMIT $3",
                       filter.status, filter.before, filter.limit, filter.connector))
    out.push_back(IncidentFromRow(r));
  return out;
}

}  // namespace bpmc::incidents
