#include "notifier/notification.h"

namespace bpmc::notifier {
namespace {

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::map<std::string, std::string> StrMap(const nlohmann::json& j, const char* key) {
  std::map<std::string, std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return out;
  for (const auto& [k, v] : it->items()) {
    out[k] = v.is_string() ? v.get<std::string>() : DumpJson(v);
  }
  return out;
}

}  // namespace

nlohmann::json ToJson(const AlertView& a) {
  return nlohmann::json{{"status", a.status},
                        {"severity", a.severity},
                        {"alertname", a.alertname},
                        {"summary", a.summary},
                        {"description", a.description},
                        {"runbook_url", a.runbook_url},
                        {"generator_url", a.generator_url},
                        {"source", a.source},
                        {"dedup_key", a.dedup_key},
                        {"starts_at", a.starts_at},
                        {"ends_at", a.ends_at},
                        {"labels", a.labels},
                        {"annotations", a.annotations}};
}

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

AlertView AlertViewFromJson(const nlohmann::json& j) {
  AlertView a;
  if (!j.is_object()) return a;
  a.status = Str(j, "status");
  a.severity = Str(j, "severity");
  a.alertname = Str(j, "alertname");
  a.summary = Str(j, "summary");
  a.description = Str(j, "description");
  a.runbook_url = Str(j, "runbook_url");
  a.generator_url = Str(j, "generator_url");
  a.source = Str(j, "source");
  a.dedup_key = Str(j, "dedup_key");
  a.starts_at = Str(j, "starts_at");
  a.ends_at = Str(j, "ends_at");
  a.labels = StrMap(j, "labels");
  a.annotations = StrMap(j, "annotations");
  return a;
}

std::string AnnotationOf(const AlertView& alert, const char* name) {
  auto it = alert.annotations.find(name);
  return it == alert.annotations.end() ? "" : it->second;
}

std::string UtcClockTime(const std::string& rfc3339) {
  if (rfc3339.size() < 16 || rfc3339[10] != 'T') return "";
  return rfc3339.substr(11, 5) + " UTC";
}

}  // namespace bpmc::notifier
