#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bpmc {

// How deeply any JSON body we accept may nest: objects and arrays each count one
// level, so `{"a":[1]}` is 2 deep. Every intake checks this before parsing,
// because nlohmann::json's dump, copy and compare recurse once per level and
// CivetWeb handlers run on ~100 KB stacks (a 2,000-deep body crashed the
// receiver). 32 is far above any payload our peers send (Alertmanager's is 3).
inline constexpr int kMaxJsonDepth = 32;

// Scans `text` once, without recursion, and returns the JSON path of the first
// container nested deeper than `max_depth` levels (the path of the member or
// element that opens it, e.g. "details.a.b" or "alerts[0].labels"; "" when the
// body itself is too deep, which only happens for max_depth 0), or nullopt when
// nothing is. Object keys appear as sent (escapes not decoded), at most 64 bytes
// each. `text` need not be valid JSON: the parser that runs next judges that;
// this only bounds the nesting a parser will see. Pure; O(size) time, O(max_depth) memory.
std::optional<std::string> FindTooDeep(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace bpmc
