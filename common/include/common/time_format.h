#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bpmc {

// Parses an RFC 3339 date-time ("2026-11-25T10:00:00.123Z", "...+03:00"), the
// form JavaScript's Date.toISOString() produces. 'T'/'t'/' ' separate date and
// time; 'Z'/'z' or a numeric offset is required. Fractions beyond microseconds
// are truncated. Returns microseconds since the Unix epoch (UTC), or nullopt.
// Pure and thread-safe.
std::optional<int64_t> ParseRfc3339Micros(std::string_view text);

// Formats microseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.ffffffZ".
std::string FormatRfc3339Micros(int64_t micros);

}  // namespace bpmc
