#pragma once

// Helpers shared by the intake parsers (intake_*.cpp). Not a public header.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "webhook_receiver/intake.h"

namespace bpmc::webhook_receiver::intake {

using Json = nlohmann::json;

// Longest dedup key accepted (PagerDuty's limit for dedup_key).
inline constexpr size_t kMaxDedupKey = 255;

// Thrown inside a parser and turned into an IntakeError by Run(); never
// escapes the public functions.
struct Refusal {
  std::string message;
  std::string field;
  int status = 400;
};

// Parses `body` as JSON (UTF-8 checked by nlohmann) or throws Refusal.
Json ParseBody(std::string_view body);
// ParseBody, and the result must be a JSON object.
Json ParseObject(std::string_view body);

// Runs `parse`, converting Refusal and any JSON type error into IntakeError.
template <typename F>
IntakeResult Run(F&& parse) {
  try {
    return parse();
  } catch (const Refusal& r) {
    return IntakeError{r.message, r.field, r.status};
  } catch (const nlohmann::json::exception& e) {
    return IntakeError{std::string("malformed payload: ") + e.what(), ""};
  }
}

// `s` without NUL characters (PostgreSQL text cannot hold them).
std::string Clean(std::string s);

// The text of a scalar: strings as they are, numbers and booleans in JSON
// form, null/absent/objects/arrays as "". Cleaned.
std::string Text(const Json& obj, const char* key);

// A required or optional string member; throws Refusal naming `field` when
// present but not a string (or absent and required).
std::optional<std::string> OptString(const Json& obj, const char* key, const std::string& field);
std::string ReqString(const Json& obj, const char* key, const std::string& field);

// A JSON object of strings -> map; non-string values are refused (`strict`)
// or kept in their JSON text form. Absent or null -> empty.
std::map<std::string, std::string> StringMap(const Json& obj, const char* key,
                                             const std::string& field, bool strict);

// An RFC 3339 member -> micros; Refusal when present and unparseable (or
// absent and required). Go's zero time ("0001-01-01T00:00:00Z") -> nullopt.
std::optional<int64_t> OptTime(const Json& obj, const char* key, const std::string& field);

// Epoch milliseconds given as a number or a numeric string -> micros.
std::optional<int64_t> EpochMillis(const Json& obj, const char* key);

// Lowercase hex of the first 8 bytes of SHA-256(`text`).
std::string ShortHash(std::string_view text);

// Sets the view fields every parser fills alike: source name, status.
void Start(IncomingAlert* a, Source source, bool firing);

// A label name made of [A-Za-z0-9_] (others become '_'), not starting with a digit.
std::string LabelName(std::string_view raw);

// Checks and stores the dedup key (non-empty, at most kMaxDedupKey bytes).
void SetDedupKey(IncomingAlert* a, std::string key, const std::string& field);

}  // namespace bpmc::webhook_receiver::intake
