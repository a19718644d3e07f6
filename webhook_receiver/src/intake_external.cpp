// Webhooks of the platform's other monitoring tools: Sentry, Datadog, New Relic.
// Each becomes alerts with a source-prefixed dedup key, so that they page
// through the same routes as Alertmanager's.
#include <algorithm>
#include <cctype>

#include "intake_util.h"

namespace bpmc::webhook_receiver {
namespace {

using intake::Json;
using intake::Refusal;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The first string of a JSON array member, or "".
std::string FirstString(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array() || it->empty() || !(*it)[0].is_string()) return "";
  return intake::Clean((*it)[0].get<std::string>());
}

// Sentry tags: [["key","value"], ...] or [{"key":..,"value":..}, ...] -> labels.
void AddSentryTags(const Json& event, std::map<std::string, std::string>* labels) {
  auto tags = event.find("tags");
  if (tags == event.end() || !tags->is_array()) return;
  for (const Json& t : *tags) {
    std::string k, v;
    if (t.is_array() && t.size() == 2 && t[0].is_string() && t[1].is_string()) {
      k = t[0].get<std::string>();
      v = t[1].get<std::string>();
    } else if (t.is_object()) {
      k = intake::Text(t, "key");
      v = intake::Text(t, "value");
    }
    if (!k.empty()) labels->emplace(intake::LabelName(k), intake::Clean(v));
  }
}

void FinishSentry(IncomingAlert* a, const std::string& issue_id, const std::string& field) {
  auto& v = a->view;
  v.labels.emplace("alertname", v.alertname.empty() ? "SentryIssue" : v.alertname);
  if (!v.summary.empty()) v.annotations["summary"] = v.summary;
  if (!v.description.empty()) v.annotations["description"] = v.description;
  intake::SetDedupKey(a, "sentry:" + issue_id, field);
}

// Legacy webhooks plugin: {id, project, level, culprit, message, url, event{...}}.
IncomingAlert SentryLegacy(const Json& root) {
  IncomingAlert a;
  intake::Start(&a, Source::kSentry, true);
  const Json& event = root.contains("event") && root["event"].is_object() ? root["event"] : root;
  auto& v = a.view;
  v.alertname = intake::Text(event, "title");
  if (v.alertname.empty()) v.alertname = intake::Text(root, "message");
  v.summary = v.alertname;
  v.description = intake::Text(root, "culprit");
  v.generator_url = intake::Text(root, "url");
  a.raw_severity = intake::Text(root, "level");
  v.labels["project"] = intake::Text(root, "project");
  AddSentryTags(event, &v.labels);
  const std::string id = intake::Text(root, "id");
  if (id.empty()) throw Refusal{"id (the Sentry issue id) is required", "id"};
  FinishSentry(&a, id, "id");
  return a;
}

// What Sentry's issue and event objects share: title, culprit, level, a link.
IncomingAlert SentryCommon(const Json& obj, bool firing) {
  IncomingAlert a;
  intake::Start(&a, Source::kSentry, firing);
  a.view.alertname = intake::Text(obj, "title");
  a.view.summary = a.view.alertname;
  a.view.description = intake::Text(obj, "culprit");
  a.view.generator_url = intake::Text(obj, "web_url");
  if (a.view.generator_url.empty()) a.view.generator_url = intake::Text(obj, "permalink");
  a.raw_severity = intake::Text(obj, "level");
  return a;
}

// Integration platform, resource event_alert: {action, data{event{...}, triggered_rule}}.
IncomingAlert SentryEventAlert(const Json& data) {
  const Json& event = data["event"];
  IncomingAlert a = SentryCommon(event, true);
  auto& v = a.view;
  const std::string rule = intake::Text(data, "triggered_rule");
  if (!rule.empty()) v.labels["rule"] = rule;
  AddSentryTags(event, &v.labels);
  std::string id = intake::Text(event, "issue_id");
  if (id.empty()) id = intake::Text(event, "group_id");
  if (id.empty()) throw Refusal{"data.event.issue_id is required", "data.event.issue_id"};
  FinishSentry(&a, id, "data.event.issue_id");
  return a;
}

// Integration platform, resource issue: {action, data{issue{...}}}.
Webhook SentryIssue(const std::string& action, const Json& issue) {
  Webhook w;
  w.source = Source::kSentry;
  const bool firing = action == "created" || action == "unresolved";
  if (!firing && action != "resolved") {
    w.ignored_reason = "Sentry issue action \"" + action + "\" changes no alert state";
    return w;
  }
  IncomingAlert a = SentryCommon(issue, firing);
  if (auto p = issue.find("project"); p != issue.end() && p->is_object())
    a.view.labels["project"] = intake::Text(*p, "slug");
  const std::string id = intake::Text(issue, "id");
  if (id.empty()) throw Refusal{"data.issue.id is required", "data.issue.id"};
  FinishSentry(&a, id, "data.issue.id");
  w.alerts.push_back(std::move(a));
  return w;
}

// "env:prod,service:api" -> labels env=prod, service=api (bare tags are skipped).
void AddDatadogTags(const std::string& tags, std::map<std::string, std::string>* labels) {
  size_t start = 0;
  while (start < tags.size()) {
    size_t end = tags.find(',', start);
    if (end == std::string::npos) end = tags.size();
    std::string tag = tags.substr(start, end - start);
    tag.erase(0, tag.find_first_not_of(' '));
    const size_t colon = tag.find(':');
    if (colon != std::string::npos && colon > 0)
      labels->emplace(intake::LabelName(tag.substr(0, colon)), tag.substr(colon + 1));
    start = end + 1;
  }
}

// New Relic workflow payload: {id, issueUrl, title, priority, state, createdAt, ...}.
IncomingAlert NewRelicWorkflow(const Json& root) {
  IncomingAlert a;
  const std::string state = intake::Text(root, "state");
  const std::string st = Lower(state);
  if (st != "created" && st != "activated" && st != "acknowledged" && st != "closed")
    throw Refusal{"state must be CREATED, ACTIVATED, ACKNOWLEDGED or CLOSED, got \"" + state + "\"",
                  "state"};
  intake::Start(&a, Source::kNewRelic, st != "closed");
  auto& v = a.view;
  v.summary = intake::Text(root, "title");
  v.generator_url = intake::Text(root, "issueUrl");
  a.raw_severity = intake::Text(root, "priority");
  v.alertname = FirstString(root, "alertConditionNames");
  if (v.alertname.empty()) v.alertname = v.summary;
  v.labels["alertname"] = v.alertname;
  const std::string policy = FirstString(root, "alertPolicyNames");
  if (!policy.empty()) v.labels["policy"] = policy;
  const std::string entity = FirstString(root, "impactedEntities");
  if (!entity.empty()) v.labels["entity"] = entity;
  if (!v.summary.empty()) v.annotations["summary"] = v.summary;
  // createdAt is the issue's: stable across its updates, so it keys the episode.
  a.starts_at_us = intake::EpochMillis(root, "createdAt");
  if (st == "closed") a.ends_at_us = intake::EpochMillis(root, "updatedAt");
  const std::string id = intake::Text(root, "id");
  if (id.empty()) throw Refusal{"id is required", "id"};
  intake::SetDedupKey(&a, "newrelic:" + id, "id");
  return a;
}

// Legacy alert channel payload: {incident_id, current_state, severity, details, ...}.
IncomingAlert NewRelicLegacy(const Json& root) {
  IncomingAlert a;
  const std::string state = Lower(intake::Text(root, "current_state"));
  if (state != "open" && state != "acknowledged" && state != "closed")
    throw Refusal{"current_state must be open, acknowledged or closed", "current_state"};
  intake::Start(&a, Source::kNewRelic, state != "closed");
  auto& v = a.view;
  v.alertname = intake::Text(root, "condition_name");
  v.summary = intake::Text(root, "details");
  if (v.summary.empty()) v.summary = v.alertname;
  v.generator_url = intake::Text(root, "incident_url");
  v.runbook_url = intake::Text(root, "runbook_url");
  a.raw_severity = intake::Text(root, "severity");
  v.labels["alertname"] = v.alertname.empty() ? "NewRelicIncident" : v.alertname;
  const std::string policy = intake::Text(root, "policy_name");
  if (!policy.empty()) v.labels["policy"] = policy;
  if (!v.summary.empty()) v.annotations["summary"] = v.summary;
  const std::string id = intake::Text(root, "incident_id");
  if (id.empty()) throw Refusal{"incident_id is required", "incident_id"};
  intake::SetDedupKey(&a, "newrelic:" + id, "incident_id");
  return a;
}

}  // namespace

IntakeResult ParseSentry(std::string_view body) {
  return intake::Run([&]() -> IntakeResult {
    const Json root = intake::ParseObject(body);
    Webhook w;
    w.source = Source::kSentry;
    auto data = root.find("data");
    if (data != root.end() && data->is_object()) {
      const std::string action = intake::Text(root, "action");
      if (data->contains("issue") && (*data)["issue"].is_object())
        return SentryIssue(action, (*data)["issue"]);
      if (data->contains("event") && (*data)["event"].is_object()) {
        w.alerts.push_back(SentryEventAlert(*data));
        return w;
      }
      throw Refusal{"data must hold an issue or an event", "data"};
    }
    w.alerts.push_back(SentryLegacy(root));
    return w;
  });
}

IntakeResult ParseDatadog(std::string_view body) {
  return intake::Run([&]() -> IntakeResult {
    const Json root = intake::ParseObject(body);
    IncomingAlert a;
    const std::string transition = Lower(intake::Text(root, "alert_transition"));
    const std::string type = Lower(intake::Text(root, "alert_type"));
    const bool resolved = transition == "recovered" || (transition.empty() && type == "success");
    intake::Start(&a, Source::kDatadog, !resolved);
    auto& v = a.view;
    v.summary = intake::Text(root, "title");
    v.description = intake::Text(root, "body");
    v.generator_url = intake::Text(root, "link");
    a.raw_severity =
        type.empty() || type == "success" ? intake::Text(root, "alert_priority") : type;
    AddDatadogTags(intake::Text(root, "tags"), &v.labels);
    const std::string scope = intake::Text(root, "alert_scope");
    if (!scope.empty()) v.labels["scope"] = scope;
    v.alertname = v.summary.empty() ? "DatadogMonitor" : v.summary;
    v.labels.emplace("alertname", v.alertname);
    if (!v.summary.empty()) v.annotations["summary"] = v.summary;
    if (!v.description.empty()) v.annotations["description"] = v.description;
    std::string key = intake::Text(root, "aggreg_key");
    if (key.empty()) {
      const std::string id = intake::Text(root, "alert_id");
      if (id.empty()) throw Refusal{"alert_id or aggreg_key is required", "alert_id"};
      key = scope.empty() ? id : id + "/" + scope;
    }
    intake::SetDedupKey(&a, "datadog:" + key, "alert_id");
    Webhook w;
    w.source = Source::kDatadog;
    w.alerts.push_back(std::move(a));
    return w;
  });
}

IntakeResult ParseNewRelic(std::string_view body) {
  return intake::Run([&]() -> IntakeResult {
    const Json root = intake::ParseObject(body);
    Webhook w;
    w.source = Source::kNewRelic;
    if (root.contains("incident_id")) {
      w.alerts.push_back(NewRelicLegacy(root));
    } else if (root.contains("id") && root.contains("state")) {
      w.alerts.push_back(NewRelicWorkflow(root));
    } else {
      throw Refusal{"neither a workflow payload (id, state) nor a legacy one (incident_id)", ""};
    }
    return w;
  });
}

}  // namespace bpmc::webhook_receiver
