#include "incidents/model.h"

#include <sstream>

#include "common/time_format.h"

namespace bpmc::incidents {
namespace {

using Json = nlohmann::json;

int Rank(const std::string& severity) {
  if (severity == "critical") return 3;
  if (severity == "warning") return 2;
  return 1;
}

Json Time(const std::optional<int64_t>& us) { return us ? Json(FormatRfc3339Micros(*us)) : Json(); }

Json Seconds(int64_t from_us, const std::optional<int64_t>& to_us) {
  return to_us ? Json(static_cast<double>(*to_us - from_us) / 1e6) : Json();
}

// A markdown table cell: no pipes or line breaks.
std::string Cell(std::string s) {
  for (char& c : s)
    if (c == '|' || c == '\n' || c == '\r') c = ' ';
  return s;
}

std::string MdTime(int64_t us) {
  std::string t = FormatRfc3339Micros(us);  // YYYY-MM-DDTHH:MM:SS.ffffffZ
  return t.substr(0, 10) + " " + t.substr(11, 8) + " UTC";
}

}  // namespace

std::string IncidentGroupKey(const std::string& source, const std::string& webhook_group_key,
                             const std::string& dedup_key) {
  if (source == "alertmanager" && !webhook_group_key.empty()) return "am:" + webhook_group_key;
  return source + ":" + dedup_key;
}

std::string MergeConnector(const std::string& current, bool first,
                           const std::string& alert_connector) {
  if (first) return alert_connector;
  return current == alert_connector ? current : "";
}

std::string MoreSevere(const std::string& a, const std::string& b) {
  return Rank(b) > Rank(a) ? b : a;
}

std::string IncidentTitle(const notifier::AlertView& alert) {
  if (alert.alertname.empty()) return alert.summary.empty() ? "alert" : alert.summary;
  if (alert.summary.empty()) return alert.alertname;
  return alert.alertname + ": " + alert.summary;
}

std::string HumanDuration(int64_t micros) {
  int64_t s = micros < 0 ? 0 : micros / 1000000;
  const int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
  s %= 60;
  std::string out;
  if (d) out += std::to_string(d) + "d ";
  if (d || h) out += std::to_string(h) + "h ";
  if (d || h || m) out += std::to_string(m) + "m ";
  out += std::to_string(s) + "s";
  return out;
}

Json IncidentJson(const IncidentRecord& i, bool full) {
  Json j = {{"id", i.id},
            {"group_key", i.group_key},
            {"title", i.title},
            {"severity", i.severity},
            {"connector", i.connector},
            {"status", i.status},
            {"muted", i.muted},
            {"escalation_policy", i.escalation_policy},
            {"created_at", FormatRfc3339Micros(i.created_us)},
            {"acknowledged_at", Time(i.acknowledged_us)},
            {"acknowledged_by", i.acknowledged_by.empty() ? Json() : Json(i.acknowledged_by)},
            {"resolved_at", Time(i.resolved_us)},
            {"resolved_by", i.resolved_by.empty() ? Json() : Json(i.resolved_by)},
            {"next_escalation_at", Time(i.next_due_us)},
            {"snoozed_until", Time(i.snoozed_until_us)},
            {"snoozed_by", i.snoozed_by.empty() ? Json() : Json(i.snoozed_by)},
            {"time_to_acknowledge_seconds", Seconds(i.created_us, i.acknowledged_us)},
            {"time_to_resolve_seconds", Seconds(i.created_us, i.resolved_us)},
            {"labels", i.labels}};
  if (!full) return j;
  j["alerts"] = Json::array();
  for (const auto& a : i.alerts)
    j["alerts"].push_back({{"source", a.source},
                           {"dedup_key", a.dedup_key},
                           {"status", a.status},
                           {"alertname", a.alertname},
                           {"starts_at", FormatRfc3339Micros(a.starts_us)}});
  j["paged"] = Json::array();
  for (const auto& p : i.paged)
    j["paged"].push_back({{"person", p.person},
                          {"channel", p.channel},
                          {"destination", p.destination},
                          {"first_paged_at", FormatRfc3339Micros(p.first_us)}});
  j["timeline"] = Json::array();
  for (const auto& t : i.timeline)
    j["timeline"].push_back({{"at", FormatRfc3339Micros(t.at_us)},
                             {"kind", t.kind},
                             {"actor", t.actor},
                             {"channel", t.channel},
                             {"person", t.person},
                             {"result", t.result},
                             {"detail", t.detail}});
  return j;
}

std::string ReportMarkdown(const IncidentRecord& i) {
  std::ostringstream md;
  md << "# Incident #" << i.id << ": " << Cell(i.title) << "\n\n";
  md << "| | |\n|---|---|\n";
  md << "| Severity | " << i.severity << " |\n";
  md << "| Status | " << i.status << (i.muted ? " (muted: maintenance)" : "") << " |\n";
  if (!i.connector.empty()) md << "| Connector | " << Cell(i.connector) << " |\n";
  md << "| Escalation policy | "
     << (i.escalation_policy.empty() ? "none" : Cell(i.escalation_policy)) << " |\n";
  md << "| Detected | " << MdTime(i.created_us) << " |\n";
  md << "| Acknowledged | "
     << (i.acknowledged_us ? MdTime(*i.acknowledged_us) + " by " + Cell(i.acknowledged_by)
                           : std::string("not acknowledged"))
     << " |\n";
  md << "| Resolved | "
     << (i.resolved_us ? MdTime(*i.resolved_us) + " by " + Cell(i.resolved_by)
                       : std::string("not resolved"))
     << " |\n";
  md << "| Time to acknowledge | "
     << (i.acknowledged_us ? HumanDuration(*i.acknowledged_us - i.created_us) : "-") << " |\n";
  md << "| Time to resolve | "
     << (i.resolved_us ? HumanDuration(*i.resolved_us - i.created_us) : "-") << " |\n\n";

  md << "## Who was paged\n\n";
  if (i.paged.empty()) {
    md << "Nobody was paged.\n\n";
  } else {
    md << "| Person | Channel | First paged |\n|---|---|---|\n";
    for (const auto& p : i.paged)
      md << "| " << (p.person.empty() ? "-" : Cell(p.person)) << " | " << Cell(p.channel) << " | "
         << MdTime(p.first_us) << " |\n";
    md << "\n";
  }

  md << "## Alerts\n\n| Alert | Source | Status | Started |\n|---|---|---|---|\n";
  for (const auto& a : i.alerts)
    md << "| " << Cell(a.alertname) << " | " << a.source << " | " << a.status << " | "
       << MdTime(a.starts_us) << " |\n";

  md << "\n## Timeline\n\n| Time | Event | Actor | Channel | Person | Result |\n"
        "|---|---|---|---|---|---|\n";
  for (const auto& t : i.timeline)
    md << "| " << MdTime(t.at_us) << " | " << t.kind << " | " << Cell(t.actor) << " | "
       << Cell(t.channel) << " | " << Cell(t.person) << " | " << Cell(t.result) << " |\n";

  bool notes = false;
  for (const auto& t : i.timeline) {
    if (t.kind != "note") continue;
    if (!notes) md << "\n## Notes\n\n";
    notes = true;
    md << "- " << MdTime(t.at_us) << ", " << Cell(t.actor) << ": "
       << Cell(t.detail.value("text", "")) << "\n";
  }
  return md.str();
}

namespace {

bool En(const std::string& locale) { return locale == "en"; }

std::string Two(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }

std::string ShortSeverity(const std::string& severity) {
  if (severity == "critical") return "crit";
  if (severity == "warning") return "warn";
  return severity.empty() ? "info" : severity;
}

}  // namespace

std::string ClockTime(int64_t at_us, int utc_offset_seconds, const std::string& time_zone,
                      const std::string& locale) {
  int64_t local = at_us / 1000000 + utc_offset_seconds;
  local = ((local % 86400) + 86400) % 86400;
  std::string out =
      Two(static_cast<int>(local / 3600)) + ":" + Two(static_cast<int>(local / 60 % 60));
  if (time_zone == "Europe/Moscow" && utc_offset_seconds == 3 * 3600)
    return out + (En(locale) ? " MSK" : " МСК");
  const int abs = utc_offset_seconds < 0 ? -utc_offset_seconds : utc_offset_seconds;
  out += std::string(" UTC") + (utc_offset_seconds < 0 ? "-" : "+") + std::to_string(abs / 3600);
  if (abs % 3600) out += ":" + Two(abs % 3600 / 60);
  return out;
}

PageText RenderPage(const PageFacts& f) {
  const bool en = En(f.locale);
  const std::string id = "#" + std::to_string(f.incident_id);
  const std::string name = f.alertname.empty() ? (en ? "alert" : "алерт") : f.alertname;
  const std::string what =
      name + (f.connector_name.empty() ? "" : (en ? " on " : " на ") + f.connector_name);
  const std::string when = ClockTime(f.at_us, f.utc_offset_seconds, f.time_zone, f.locale);
  const std::string by = f.actor.empty() ? "" : f.actor;
  PageText t;
  t.subject = "[BPMC " + id + "] " + (f.severity.empty() ? "info" : f.severity) + ": " + what;
  const std::string& e = f.event;
  if (en) {
    if (e == "acknowledged")
      t.headline = "Acknowledged" + (by.empty() ? "" : " by " + by) + " at " + when;
    else if (e == "resolved")
      t.headline = "Resolved" + (by.empty() ? "" : " by " + by) + " at " + when;
    else if (e == "escalated")
      t.headline = "Escalated at " + when + ": not acknowledged yet";
    else if (e == "reassigned")
      t.headline = "Reassigned to you" + (by.empty() ? "" : " by " + by) + " at " + when;
    else if (e == "snooze_ended")
      t.headline = "Snooze ended at " + when + ": the incident is open again";
    else
      t.headline = "Triggered at " + when;
  } else {
    if (e == "acknowledged")
      t.headline = "Подтверждён в " + when + (by.empty() ? "" : " (" + by + ")");
    else if (e == "resolved")
      t.headline = "Решён в " + when + (by.empty() ? "" : " (" + by + ")");
    else if (e == "escalated")
      t.headline = "Эскалирован в " + when + ": никто не подтвердил";
    else if (e == "reassigned")
      t.headline = "Назначен вам в " + when + (by.empty() ? "" : " (" + by + ")");
    else if (e == "snooze_ended")
      t.headline = "Откладывание закончилось в " + when + ": инцидент снова открыт";
    else
      t.headline = "Сработал в " + when;
  }
  t.ack_label = en ? "Acknowledge" : "Подтвердить";
  t.open_label = en ? "Open incident" : "Открыть инцидент";
  const bool asks_ack = !f.ack_url.empty() && e != "acknowledged" && e != "resolved";

  std::string text = (en ? "Incident " : "Инцидент ") + id + ": " + what + "\n" + t.headline + "\n";
  if (!f.summary.empty() && f.summary != f.alertname) text += f.summary + "\n";
  text += (en ? "Severity: " : "Важность: ") + (f.severity.empty() ? "info" : f.severity);
  if (f.alert_count > 1)
    text += (en ? ", alerts: " : ", алертов: ") + std::to_string(f.alert_count);
  text += "\n";
  if (asks_ack) text += "\n" + t.ack_label + ": " + f.ack_url + "\n";
  if (!f.incident_url.empty())
    text += (asks_ack ? "" : "\n") + t.open_label + ": " + f.incident_url + "\n";
  t.text = text;

  // SMS: the link first, so a cut message keeps it.
  std::string sms = "BPMC " + id;
  if (e == "acknowledged")
    sms += " acked" + (by.empty() ? "" : " by " + by) + ":";
  else if (e == "resolved")
    sms += " resolved:";
  else if (asks_ack)
    sms += " ack: " + f.ack_url;
  else if (e == "escalated")
    sms += " escalated:";
  // GSM-7 words in both locales: Cyrillic would make it UCS-2, 70 characters a segment.
  sms += " " + ShortSeverity(f.severity) + " " + name +
         (f.connector_name.empty() ? "" : " on " + f.connector_name);
  t.sms = sms;
  return t;
}

notifier::AlertView PageView(const PageInput& in) {
  notifier::AlertView v;
  v.status = in.status;
  v.severity = in.severity;
  v.alertname = in.alertname.empty() ? in.title : in.alertname;
  v.summary = in.first_summary.empty() ? in.title : in.first_summary;
  v.source = "incident";
  v.dedup_key = in.dedup_key;
  v.starts_at = FormatRfc3339Micros(in.created_us);
  if (in.ended_us) v.ends_at = FormatRfc3339Micros(*in.ended_us);
  v.labels = in.labels;
  v.runbook_url = in.runbook_url;
  v.generator_url = in.generator_url;
  PageFacts f;
  f.incident_id = in.incident_id;
  f.event = in.event;
  f.locale = in.locale;
  f.severity = in.severity;
  f.alertname = v.alertname;
  f.connector_name = in.connector_name;
  f.summary = in.first_summary;
  f.alert_count = in.alert_count;
  f.actor = in.actor;
  f.at_us = in.at_us;
  f.utc_offset_seconds = in.utc_offset_seconds;
  f.time_zone = in.time_zone;
  f.ack_url = in.status == "firing" ? in.ack_url : "";
  f.incident_url = in.incident_url;
  const PageText t = RenderPage(f);
  v.description = t.text;
  v.annotations["incident_id"] = std::to_string(in.incident_id);
  if (!in.incident_url.empty()) v.annotations["incident_url"] = in.incident_url;
  if (!f.ack_url.empty()) v.annotations["ack_url"] = f.ack_url;
  v.annotations["page_subject"] = t.subject;
  v.annotations["page_headline"] = t.headline;
  v.annotations["page_text"] = t.text;
  v.annotations["page_sms"] = t.sms;
  v.annotations["page_ack_label"] = t.ack_label;
  v.annotations["page_open_label"] = t.open_label;
  v.annotations["page_locale"] = En(in.locale) ? "en" : "ru";
  v.annotations["mail_thread"] = "bpmc-incident-" + std::to_string(in.incident_id) + "@bpmc";
  if (in.first_page) v.annotations["mail_thread_root"] = "1";
  return v;
}

}  // namespace bpmc::incidents
