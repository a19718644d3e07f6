#include "oncall/api.h"

#include <cstdio>

#include "common/time_format.h"
#include "oncall/schedule.h"

namespace bpmc::oncall {
namespace {

nlohmann::json Utc(const std::optional<int64_t>& micros) {
  return micros ? nlohmann::json(FormatRfc3339Micros(*micros)) : nlohmann::json(nullptr);
}

nlohmann::json Local(const std::string& zone, const std::optional<int64_t>& micros) {
  if (!micros) return nullptr;
  auto text = FormatLocalRfc3339(zone, *micros);
  return text ? nlohmann::json(*text) : nlohmann::json(nullptr);
}

nlohmann::json ScheduleJson(const OnCallConfig& config, const Schedule& schedule,
                            int64_t at_micros) {
  nlohmann::json j = {{"id", schedule.id},
                      {"name", schedule.name},
                      {"time_zone", schedule.time_zone},
                      {"on_call", nullptr}};
  const OnCallShift shift = WhoIsOnCall(schedule, config.overrides, at_micros);
  if (shift.person.empty()) return j;
  auto person = config.people.find(shift.person);
  j["on_call"] = {
      {"person",
       {{"id", shift.person},
        {"name", person == config.people.end() ? shift.person : person->second.name}}},
      {"layer", shift.layer >= 0 ? nlohmann::json(shift.layer) : nlohmann::json(nullptr)},
      {"layer_name", shift.layer >= 0 ? nlohmann::json(shift.layer_name) : nlohmann::json(nullptr)},
      {"override", shift.from_override},
      {"start", Utc(shift.start_micros)},
      {"end", Utc(shift.end_micros)},
      {"start_local", Local(schedule.time_zone, shift.start_micros)},
      {"end_local", Local(schedule.time_zone, shift.end_micros)}};
  return j;
}

// Whole seconds as an integer, else a fraction.
nlohmann::json Seconds(int64_t micros) {
  if (micros % 1'000'000 == 0) return micros / 1'000'000;
  return static_cast<double>(micros) / 1e6;
}

nlohmann::json TargetJson(const OnCallConfig& config, const Target& target) {
  switch (target.kind) {
    case Target::Kind::kSchedule: {
      auto s = config.schedules.find(target.id);
      return {{"type", "schedule"},
              {"id", target.id},
              {"name", s == config.schedules.end() ? target.id : s->second.name}};
    }
    case Target::Kind::kPerson: {
      auto p = config.people.find(target.id);
      return {{"type", "person"},
              {"id", target.id},
              {"name", p == config.people.end() ? target.id : p->second.name}};
    }
    case Target::Kind::kChannel:
      break;
  }
  return {{"type", "channel"}, {"id", target.id}, {"name", target.id}};
}

}  // namespace

nlohmann::json PoliciesJson(const OnCallConfig& config) {
  nlohmann::json policies = nlohmann::json::array();
  for (const auto& [id, policy] : config.escalation_policies) {
    nlohmann::json levels = nlohmann::json::array();
    for (size_t i = 0; i < policy.levels.size(); ++i) {
      nlohmann::json targets = nlohmann::json::array();
      for (const Target& t : policy.levels[i].targets) targets.push_back(TargetJson(config, t));
      levels.push_back({{"level", i},
                        {"delay_seconds", Seconds(policy.levels[i].delay_micros)},
                        {"targets", std::move(targets)}});
    }
    policies.push_back(
        {{"id", id},
         {"name", policy.name},
         {"repeat", policy.repeat},
         {"ack_timeout_seconds", policy.ack_timeout_micros > 0 ? Seconds(policy.ack_timeout_micros)
                                                               : nlohmann::json(nullptr)},
         {"levels", std::move(levels)}});
  }
  return {{"policies", std::move(policies)}};
}

nlohmann::json OnCallJson(const OnCallConfig& config, int64_t at_micros,
                          const std::string& schedule_id) {
  nlohmann::json schedules = nlohmann::json::array();
  for (const auto& [id, schedule] : config.schedules)
    if (schedule_id.empty() || id == schedule_id)
      schedules.push_back(ScheduleJson(config, schedule, at_micros));
  return {{"at", FormatRfc3339Micros(at_micros)}, {"schedules", std::move(schedules)}};
}

OnCallHttpAnswer AnswerOnCallRequest(const OnCallConfig& config,
                                     const std::optional<std::string>& at,
                                     const std::optional<std::string>& schedule,
                                     const Clock& clock) {
  int64_t at_micros = 0;
  if (at) {
    auto parsed = ParseRfc3339Micros(*at);
    if (!parsed)
      return {400, {{"error", "at: must be an RFC 3339 time like 2026-03-29T09:00:00+03:00"}}};
    at_micros = *parsed;
  } else {
    at_micros = clock.NowMicros();
  }
  if (schedule && !config.schedules.count(*schedule))
    return {404, {{"error", "unknown schedule '" + *schedule + "'"}}};
  return {200, OnCallJson(config, at_micros, schedule.value_or(""))};
}

std::optional<std::string> FormatLocalRfc3339(const std::string& time_zone, int64_t micros) {
  const std::optional<int> offset = UtcOffsetSeconds(time_zone, micros);
  if (!offset) return std::nullopt;
  // "YYYY-MM-DDTHH:MM:SS.ffffffZ" of the local wall-clock time, then the offset.
  std::string text = FormatRfc3339Micros(micros + int64_t{*offset} * 1'000'000);
  text.pop_back();  // 'Z'
  if (text.compare(text.size() - 7, 7, ".000000") == 0) text.resize(text.size() - 7);
  const int minutes = (*offset < 0 ? -*offset : *offset) / 60;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", *offset < 0 ? '-' : '+', minutes / 60,
                minutes % 60);
  return text + buf;
}

}  // namespace bpmc::oncall
