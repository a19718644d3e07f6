#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bpmc::webhook_receiver {

// The seed's three alert types, as AlertView::severity spells them.
inline constexpr const char* kCritical = "critical";
inline constexpr const char* kWarning = "warning";
inline constexpr const char* kInfo = "info";

// Maps a severity word from any source to "critical", "warning" or "info",
// case-insensitively, or nullopt when the word is not known:
//   critical: critical crit fatal emergency emerg alert page error err high
//             p1 sev1 sev-1 urgent disaster
//   warning:  warning warn medium moderate major minor p2 p3 sev2 sev3 sev-2 sev-3
//   info:     info informational notice debug low none ok success p4 p5 sev4 sev5
// ("error" is critical: Sentry, Datadog and PagerDuty use it for what pages.) Pure.
std::optional<std::string> NormalizeSeverity(std::string_view raw);

// NormalizeSeverity, or `default_severity` (config `default_severity`, itself
// one of the three) when the word is unknown or empty. Pure.
std::string ClassifySeverity(std::string_view raw, const std::string& default_severity);

}  // namespace bpmc::webhook_receiver
