#pragma once
// On-call overrides made through the API (docs/ONCALL.md, "Overrides through
// the API"), beside the YAML `overrides:`: "bob covers the primary schedule
// from Friday 18:00 to Monday 09:00". Stored in `oncall_overrides`
// (migrations/0004_oncall_overrides.sql) and checked like the YAML ones.
//   POST   /api/v1/overrides {"schedule", "person", "from", "to", "reason"?}  201 {"override"}
//   GET    /api/v1/overrides[?all=1]   not yet ended (all: also ended and cancelled)
//   DELETE /api/v1/overrides/{id}      cancel (kept, with who cancelled it)
// Admin and support write; manager reads too; role user gets 403 (the Api).
// The escalation and GET /api/v1/oncall see the YAML overrides first and the
// stored ones after them, oldest first: where overrides of one schedule
// overlap, the later entry wins.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/request_error.h"
#include "oncall/model.h"

namespace bpmc::incidents {

inline constexpr int64_t kMaxOverrideDays = 90;
// How far back the escalation looks for stored overrides: a step evaluated late
// (the receiver was down) is paged to whoever was on call when it was due.
inline constexpr int64_t kOverrideLookbackMicros = 86'400'000'000;
inline constexpr size_t kMaxOverrideReason = 500;

struct OverrideRequest {
  oncall::Override override;
  std::string reason;  // optional, at most kMaxOverrideReason bytes
};

// Pure: the POST body, checked against `config` at `now_us`: schedule and
// person must exist, from and to RFC 3339 with an offset, from < to, to in
// the future, at most kMaxOverrideDays long. Errors name the field (400).
std::variant<OverrideRequest, RequestError> ParseOverrideRequest(std::string_view body,
                                                                 const oncall::OnCallConfig& config,
                                                                 int64_t now_us);

// Stores one; returns its JSON ({"id", "schedule", "person", "from", "to",
// "reason", "created_by", "created_at", "cancelled_by"?}).
nlohmann::json InsertOverride(pqxx::work& txn, const OverrideRequest& r, const std::string& by,
                              int64_t now_us);
// Not yet ended and not cancelled (or every one, newest first, at most 1000).
nlohmann::json ListOverrides(pqxx::work& txn, bool all, int64_t now_us);
// Cancels one; nullopt when there is no such override. Cancelling twice is a no-op.
std::optional<nlohmann::json> CancelOverride(pqxx::work& txn, int64_t id, const std::string& by,
                                             int64_t now_us);
// `base` with the stored overrides that end after `since_us` appended (the
// YAML ones stay first). Overrides of schedules or people no longer in the
// config are skipped.
oncall::OnCallConfig WithStoredOverrides(pqxx::work& txn, const oncall::OnCallConfig& base,
                                         int64_t since_us);

}  // namespace bpmc::incidents
