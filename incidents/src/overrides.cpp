#include "incidents/overrides.h"

#include <set>
#include <utility>

#include "common/json_depth.h"
#include "common/time_format.h"
#include "sql.h"

namespace bpmc::incidents {
namespace {

using Json = nlohmann::json;

constexpr int64_t kMicrosPerDay = 86'400'000'000;

RequestError Bad(std::string field, std::string message) {
  return RequestError{400, std::move(message), std::move(field)};
}

// A required string field of `j`, or the error naming it.
std::variant<std::string, RequestError> Text(const Json& j, const char* key) {
  if (!j.contains(key)) return Bad(key, "is required");
  if (!j[key].is_string()) return Bad(key, "must be a string");
  return j[key].get<std::string>();
}

std::variant<int64_t, RequestError> Instant(const Json& j, const char* key) {
  auto text = Text(j, key);
  if (auto* e = std::get_if<RequestError>(&text)) return *e;
  const auto us = ParseRfc3339Micros(std::get<std::string>(text));
  if (!us)
    return Bad(key, "must be an RFC 3339 time with an offset, like 2026-12-11T18:00:00+03:00");
  return *us;
}

constexpr const char* kColumns =
    "id, schedule, person, reason, created_by, cancelled_by, " BPMC_US(
        "starts_at") " AS starts_us, " BPMC_US("ends_at") " AS ends_us, " BPMC_US("created_at") " AS "
                                                                                             "created_us";

Json OverrideJson(const pqxx::row& r) {
  Json j = {{"id", r["id"].as<int64_t>()},
            {"schedule", r["schedule"].as<std::string>()},
            {"person", r["person"].as<std::string>()},
            {"from", FormatRfc3339Micros(r["starts_us"].as<int64_t>())},
            {"to", FormatRfc3339Micros(r["ends_us"].as<int64_t>())},
            {"reason", r["reason"].as<std::string>()},
            {"created_by", r["created_by"].as<std::string>()},
            {"created_at", FormatRfc3339Micros(r["created_us"].as<int64_t>())}};
  if (!r["cancelled_by"].is_null()) j["cancelled_by"] = r["cancelled_by"].as<std::string>();
  return j;
}

}  // namespace

std::variant<OverrideRequest, RequestError> ParseOverrideRequest(std::string_view body,
                                                                 const oncall::OnCallConfig& config,
                                                                 int64_t now_us) {
  if (auto deep = FindTooDeep(body)) return Bad(*deep, "is nested too deeply");
  const Json j = Json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return Bad("", "the body is not valid JSON");
  if (!j.is_object()) return Bad("", "the body must be a JSON object");
  static const std::set<std::string> kKeys = {"schedule", "person", "from", "to", "reason"};
  for (const auto& [k, v] : j.items())
    if (!kKeys.count(k)) return Bad(ClientKeyField(k), "unknown field");
  OverrideRequest r;
  auto schedule = Text(j, "schedule");
  if (auto* e = std::get_if<RequestError>(&schedule)) return *e;
  r.override.schedule = std::get<std::string>(schedule);
  if (!config.schedules.count(r.override.schedule))
    return Bad("schedule", "unknown schedule '" + r.override.schedule.substr(0, 64) + "'");
  auto person = Text(j, "person");
  if (auto* e = std::get_if<RequestError>(&person)) return *e;
  r.override.person = std::get<std::string>(person);
  if (!config.people.count(r.override.person))
    return Bad("person", "unknown person '" + r.override.person.substr(0, 64) + "'");
  auto from = Instant(j, "from");
  if (auto* e = std::get_if<RequestError>(&from)) return *e;
  auto to = Instant(j, "to");
  if (auto* e = std::get_if<RequestError>(&to)) return *e;
  r.override.from_micros = std::get<int64_t>(from);
  r.override.to_micros = std::get<int64_t>(to);
  if (r.override.to_micros <= r.override.from_micros) return Bad("to", "must be later than from");
  if (r.override.to_micros <= now_us) return Bad("to", "must be in the future");
  if (r.override.to_micros - r.override.from_micros > kMaxOverrideDays * kMicrosPerDay)
    return Bad("to", "an override lasts at most " + std::to_string(kMaxOverrideDays) + " days");
  if (j.contains("reason")) {
    if (!j["reason"].is_string()) return Bad("reason", "must be a string");
    r.reason = j["reason"].get<std::string>();
    if (r.reason.size() > kMaxOverrideReason)
      return Bad("reason", "at most " + std::to_string(kMaxOverrideReason) + " bytes");
  }
  return r;
}

Json InsertOverride(pqxx::work& txn, const OverrideRequest& r, const std::string& by,
                    int64_t now_us) {
  const pqxx::row row = txn.exec_params1(
      std::string("INSERT INTO oncall_overrides (schedule, person, starts_at, ends_at, reason,"
                  " created_by, created_at) VALUES ($1, $2, " BPMC_TS("$3") ", " BPMC_TS(
                      "$4") ", $5, $6, " BPMC_TS("$7") ") RETURNING ") +
          kColumns,
      r.override.schedule, r.override.person, r.override.from_micros, r.override.to_micros,
      r.reason, by, now_us);
  return OverrideJson(row);
}

Json ListOverrides(pqxx::work& txn, bool all, int64_t now_us) {
  Json list = Json::array();
  const std::string where = all ? "TRUE" : "cancelled_at IS NULL AND ends_at > " BPMC_TS("$1");
  for (const auto& r : txn.exec_params(
           std::string("SELECT ") + kColumns + " FROM oncall_overrides WHERE " + where +
               (all ? " AND $1::bigint IS NOT NULL" : "") + " ORDER BY id DESC LIMIT 1000",
           now_us))
    list.push_back(OverrideJson(r));
  return list;
}

std::optional<Json> CancelOverride(pqxx::work& txn, int64_t id, const std::string& by,
                                   int64_t now_us) {
  txn.exec_params("UPDATE oncall_overrides SET cancelled_at = " BPMC_TS("$3") ", cancelled_by = $2"
                  " WHERE id = $1 AND cancelled_at IS NULL",
                  id, by, now_us);
  const pqxx::result r = txn.exec_params(
      std::string("SELECT ") + kColumns + " FROM oncall_overrides WHERE id = $1", id);
  if (r.empty()) return std::nullopt;
  return OverrideJson(r[0]);
}

oncall::OnCallConfig WithStoredOverrides(pqxx::work& txn, const oncall::OnCallConfig& base,
                                         int64_t since_us) {
  const pqxx::result rows = txn.exec_params(
      "SELECT schedule, person, " BPMC_US("starts_at") ", " BPMC_US(
          "ends_at") " FROM oncall_overrides"
                     " WHERE cancelled_at IS NULL AND ends_at > " BPMC_TS("$1") " ORDER BY id",
      since_us);
  oncall::OnCallConfig out = base;
  for (const auto& r : rows) {
    oncall::Override o{r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<int64_t>(),
                       r[3].as<int64_t>()};
    if (out.schedules.count(o.schedule) && out.people.count(o.person))
      out.overrides.push_back(std::move(o));
  }
  return out;
}

}  // namespace bpmc::incidents
