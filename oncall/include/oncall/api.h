#pragma once
// GET /api/v1/oncall: who is on call now or at a given time, per schedule;
// GET /api/v1/oncall/policies: the escalation policies.
// The receiver routes the request here and writes the answer as it is.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/clock.h"
#include "oncall/model.h"

namespace bpmc::oncall {

// The body for instant `at_micros`, for every schedule (sorted by id) or only
// `schedule_id` (which must exist):
//   {"at": "<RFC 3339 UTC>", "schedules": [{"id", "name", "time_zone",
//     "on_call": null | {"person": {"id", "name"}, "layer": <index or null>,
//       "layer_name": <string or null>, "override": <bool>,
//       "start": <RFC 3339 UTC or null>, "end": ..., "start_local": <RFC 3339
//       with the zone's offset or null>, "end_local": ...}}]}
// "on_call" is null when nobody is on call. Pure.
nlohmann::json OnCallJson(const OnCallConfig& config, int64_t at_micros,
                          const std::string& schedule_id = "");

struct OnCallHttpAnswer {
  int status = 200;     // 200, or 400 (bad `at`), 404 (unknown schedule)
  nlohmann::json body;  // OnCallJson, or {"error": "..."}
};

// The answer to GET /api/v1/oncall[?at=RFC3339][&schedule=ID]: the query
// values as decoded by the caller (unset when absent). Without `at` the
// instant is clock.NowMicros(). Thread-safe if `config` is not changed.
OnCallHttpAnswer AnswerOnCallRequest(const OnCallConfig& config,
                                     const std::optional<std::string>& at,
                                     const std::optional<std::string>& schedule,
                                     const Clock& clock);

// The body of GET /api/v1/oncall/policies: every escalation policy of `config`,
// sorted by id:
//   {"policies": [{"id", "name", "repeat", "ack_timeout_seconds": <number or null>,
//     "levels": [{"level": <index from 0>, "delay_seconds": <number>,
//       "targets": [{"type": "schedule" | "person" | "channel", "id", "name"}]}]}]}
// A schedule's or person's name is its display name (the id when it is unknown);
// a channel's name is its id. ack_timeout_seconds is null when acknowledgements do
// not time out. No contact addresses. Pure.
nlohmann::json PoliciesJson(const OnCallConfig& config);

// `micros` as RFC 3339 in `time_zone` with its offset, e.g.
// "2026-03-29T09:00:00+02:00" (fraction only when not whole seconds).
// nullopt for an unknown zone.
std::optional<std::string> FormatLocalRfc3339(const std::string& time_zone, int64_t micros);

}  // namespace bpmc::oncall
