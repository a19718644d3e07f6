// Alertmanager webhook payload version 4 and the generic JSON intake.
#include <cstdio>

#include "common/time_format.h"
#include "intake_util.h"

namespace bpmc::webhook_receiver {
namespace {

using intake::Json;
using intake::Refusal;

// Summary, description and runbook from the usual annotation names.
void FillFromAnnotations(IncomingAlert* a) {
  auto& v = a->view;
  auto get = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      auto it = v.annotations.find(n);
      if (it != v.annotations.end() && !it->second.empty()) return it->second;
    }
    return std::string();
  };
  v.summary = get({"summary", "message", "title"});
  v.description = get({"description"});
  v.runbook_url = get({"runbook_url", "runbook"});
}

// Fingerprint of an Alertmanager too old to send one: a hash of the sorted labels.
std::string LabelsHash(const std::map<std::string, std::string>& labels) {
  std::string text;
  for (const auto& [k, v] : labels) text += k + '\xff' + v + '\xff';
  return intake::ShortHash(text);
}

IncomingAlert ParseAmAlert(const Json& j, const std::string& f) {
  if (!j.is_object()) throw Refusal{f + " must be an object", f};
  IncomingAlert a;
  const std::string status = intake::ReqString(j, "status", f + ".status");
  if (status != "firing" && status != "resolved")
    throw Refusal{f + ".status must be \"firing\" or \"resolved\", got \"" + status + "\"",
                  f + ".status"};
  intake::Start(&a, Source::kAlertmanager, status == "firing");
  if (!j.contains("labels")) throw Refusal{f + ".labels is required", f + ".labels"};
  a.view.labels = intake::StringMap(j, "labels", f + ".labels", true);
  a.view.annotations = intake::StringMap(j, "annotations", f + ".annotations", true);
  a.starts_at_us = intake::OptTime(j, "startsAt", f + ".startsAt");
  if (!a.starts_at_us) throw Refusal{f + ".startsAt is required", f + ".startsAt"};
  if (status == "resolved") a.ends_at_us = intake::OptTime(j, "endsAt", f + ".endsAt");
  a.view.generator_url = intake::OptString(j, "generatorURL", f + ".generatorURL").value_or("");
  std::string fp = intake::OptString(j, "fingerprint", f + ".fingerprint").value_or("");
  intake::SetDedupKey(&a, fp.empty() ? LabelsHash(a.view.labels) : fp, f + ".fingerprint");
  auto name = a.view.labels.find("alertname");
  a.view.alertname = name == a.view.labels.end() ? "" : name->second;
  auto sev = a.view.labels.find("severity");
  a.raw_severity = sev == a.view.labels.end() ? "" : sev->second;
  FillFromAnnotations(&a);
  if (a.view.summary.empty()) a.view.summary = a.view.alertname;
  return a;
}

// "firing"/"trigger"/... -> true, "resolved"/"resolve"/... -> false.
bool GenericFiring(const std::string& status, const std::string& field) {
  static const char* kFiring[] = {"firing", "trigger", "triggered", "problem", "open"};
  static const char* kResolved[] = {"resolved", "resolve", "ok", "recovered", "closed"};
  for (const char* s : kFiring)
    if (status == s) return true;
  for (const char* s : kResolved)
    if (status == s) return false;
  throw Refusal{field + " must be \"firing\" or \"resolved\", got \"" + status + "\"", field};
}

IncomingAlert ParseGenericAlert(const Json& j, const std::string& prefix) {
  auto f = [&](const char* key) { return prefix + key; };
  if (!j.is_object())
    throw Refusal{"an alert must be a JSON object",
                  prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1)};
  IncomingAlert a;
  const bool firing =
      GenericFiring(intake::OptString(j, "status", f("status")).value_or("firing"), f("status"));
  intake::Start(&a, Source::kGeneric, firing);
  auto& v = a.view;
  v.summary = intake::OptString(j, "summary", f("summary")).value_or("");
  if (firing && v.summary.empty()) throw Refusal{f("summary") + " is required", f("summary")};
  a.raw_severity = intake::OptString(j, "severity", f("severity")).value_or("");
  const std::string origin = intake::OptString(j, "source", f("source")).value_or("");
  v.description = intake::OptString(j, "description", f("description")).value_or("");
  v.runbook_url = intake::OptString(j, "runbook_url", f("runbook_url")).value_or("");
  v.generator_url = intake::OptString(j, "link", f("link")).value_or("");
  v.labels = intake::StringMap(j, "labels", f("labels"), true);
  if (!origin.empty()) v.labels.emplace("source", origin);
  if (auto d = j.find("details"); d != j.end() && !d->is_null()) {
    if (d->is_object()) {
      v.annotations = intake::StringMap(j, "details", f("details"), false);
    } else {
      v.annotations["details"] = intake::Clean(d->is_string() ? d->get<std::string>() : d->dump());
    }
  }
  if (!v.summary.empty()) v.annotations.emplace("summary", v.summary);
  if (!v.description.empty()) v.annotations.emplace("description", v.description);
  auto name = v.labels.find("alertname");
  v.alertname = name != v.labels.end() ? name->second : v.summary;
  if (name == v.labels.end() && !v.alertname.empty()) v.labels["alertname"] = v.alertname;
  std::string key = intake::OptString(j, "dedup_key", f("dedup_key")).value_or("");
  if (key.empty()) {
    if (v.summary.empty())
      throw Refusal{f("dedup_key") + " or " + f("summary") + " is required", f("dedup_key")};
    key = "generic:" + intake::ShortHash(origin + '\xff' + v.summary);
  }
  intake::SetDedupKey(&a, key, f("dedup_key"));
  a.starts_at_us = intake::OptTime(j, "starts_at", f("starts_at"));
  if (!firing) a.ends_at_us = intake::OptTime(j, "ends_at", f("ends_at"));
  return a;
}

}  // namespace

const char* SourceName(Source source) {
  switch (source) {
    case Source::kAlertmanager:
      return "alertmanager";
    case Source::kGeneric:
      return "generic";
    case Source::kSentry:
      return "sentry";
    case Source::kDatadog:
      return "datadog";
    case Source::kNewRelic:
      return "newrelic";
    case Source::kHeartbeat:
      return "heartbeat";
  }
  return "unknown";
}

std::string FormatAlertTime(int64_t micros) {
  std::string s = FormatRfc3339Micros(micros);  // YYYY-MM-DDTHH:MM:SS.ffffffZ
  const size_t dot = s.find('.');
  if (dot != std::string::npos && s.compare(dot, 7, ".000000") == 0) s.erase(dot, 7);
  return s;
}

IntakeResult ParseAlertmanager(std::string_view body) {
  return intake::Run([&]() -> IntakeResult {
    const Json root = intake::ParseObject(body);
    const std::string version = intake::Text(root, "version");
    if (version != "4")
      throw Refusal{"unsupported payload version \"" + version + "\" (want \"4\")", "version"};
    auto alerts = root.find("alerts");
    if (alerts == root.end() || !alerts->is_array())
      throw Refusal{"alerts must be an array", "alerts"};
    Webhook w;
    w.source = Source::kAlertmanager;
    w.group_key = intake::OptString(root, "groupKey", "groupKey").value_or("");
    if (auto t = root.find("truncatedAlerts"); t != root.end() && t->is_number_integer())
      w.truncated_alerts = std::max<int64_t>(0, t->get<int64_t>());
    if (alerts->size() > kMaxAlertsPerWebhook)
      throw Refusal{"at most " + std::to_string(kMaxAlertsPerWebhook) +
                        " alerts per webhook (set Alertmanager's max_alerts below it)",
                    "alerts", 413};
    for (size_t i = 0; i < alerts->size(); ++i)
      w.alerts.push_back(ParseAmAlert((*alerts)[i], "alerts[" + std::to_string(i) + "]"));
    if (w.alerts.empty()) w.ignored_reason = "no alerts in the payload";
    return w;
  });
}

IntakeResult ParseGeneric(std::string_view body) {
  return intake::Run([&]() -> IntakeResult {
    const Json root = intake::ParseBody(body);
    Webhook w;
    w.source = Source::kGeneric;
    if (root.is_array()) {
      if (root.empty()) throw Refusal{"the array holds no alert", ""};
      if (root.size() > kMaxAlertsPerWebhook)
        throw Refusal{"at most " + std::to_string(kMaxAlertsPerWebhook) + " alerts per request", "",
                      413};
      for (size_t i = 0; i < root.size(); ++i)
        w.alerts.push_back(ParseGenericAlert(root[i], "[" + std::to_string(i) + "]."));
    } else {
      w.alerts.push_back(ParseGenericAlert(root, ""));
    }
    return w;
  });
}

std::optional<IntakeError> CheckIntakeLimits(const Webhook& webhook) {
  if (webhook.alerts.size() > kMaxAlertsPerWebhook)
    return IntakeError{"at most " + std::to_string(kMaxAlertsPerWebhook) +
                           " alerts per webhook (set Alertmanager's max_alerts below it)",
                       webhook.source == Source::kAlertmanager ? "alerts" : "", 413};
  for (size_t i = 0; i < webhook.alerts.size(); ++i) {
    const notifier::AlertView& v = webhook.alerts[i].view;
    const std::string at = webhook.source == Source::kAlertmanager
                               ? "alerts[" + std::to_string(i) + "]."
                           : webhook.alerts.size() > 1 ? "[" + std::to_string(i) + "]."
                                                       : "";
    const struct {
      const std::map<std::string, std::string>* map;
      const char* name;
      size_t max_value;
    } maps[] = {{&v.labels, "labels", kMaxLabelValueBytes},
                {&v.annotations, "annotations", kMaxAnnotationValueBytes}};
    for (const auto& m : maps) {
      const std::string field = at + m.name;
      if (m.map->size() > kMaxLabelsPerAlert)
        return IntakeError{
            field + " has more than " + std::to_string(kMaxLabelsPerAlert) + " entries", field};
      for (const auto& [name, value] : *m.map) {
        if (name.size() > kMaxLabelNameBytes)
          return IntakeError{
              field + " has a name longer than " + std::to_string(kMaxLabelNameBytes) + " bytes",
              field};
        if (value.size() > m.max_value)
          return IntakeError{
              field + "." + name + " is longer than " + std::to_string(m.max_value) + " bytes",
              field + "." + name};
      }
    }
  }
  return std::nullopt;
}

IntakeResult ParseWebhook(Source source, std::string_view body) {
  IntakeResult parsed = IntakeError{"unknown source", ""};
  switch (source) {
    case Source::kAlertmanager:
      parsed = ParseAlertmanager(body);
      break;
    case Source::kGeneric:
      parsed = ParseGeneric(body);
      break;
    case Source::kSentry:
      parsed = ParseSentry(body);
      break;
    case Source::kDatadog:
      parsed = ParseDatadog(body);
      break;
    case Source::kNewRelic:
      parsed = ParseNewRelic(body);
      break;
    case Source::kHeartbeat:
      break;  // made by the receiver itself (heartbeats.h), never posted
  }
  if (const Webhook* w = std::get_if<Webhook>(&parsed)) {
    if (auto error = CheckIntakeLimits(*w)) return std::move(*error);
  }
  return parsed;
}

}  // namespace bpmc::webhook_receiver
