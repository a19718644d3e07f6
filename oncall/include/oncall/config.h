#pragma once
// Parsing the on-call sections of the receiver's YAML: `people:`,
// `schedules:`, `overrides:` and `escalation_policies:` (docs/ONCALL.md).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oncall/model.h"

namespace YAML {
class Node;
}

namespace bpmc::oncall {

// A place where the on-call config names one of the receiver's channels.
struct ChannelUse {
  std::string key;   // key path, e.g. "escalation_policies.primary.levels[0].targets[1].channel"
  std::string name;  // the channel name, opaque here
  // Set when a person's contact method sends through the channel: the channel
  // must then be of this type. Unset for escalation targets (any type).
  std::optional<ContactType> as_type;
};

// Returns "" when the channel use is valid, else the reason
// ("unknown channel 'ops-slak'"). Supplied by the receiver, which owns channels.
using ChannelCheck = std::function<std::string(const ChannelUse&)>;

// Reads the top-level keys people, schedules, overrides and escalation_policies
// of `root` (other keys are left to the caller; a missing key is an empty
// section) into *out and validates them: unknown keys, bad values, unknown
// time zones, and references to unknown people or schedules are errors. On
// failure returns false and sets *error to "<key path>: <reason>", for example
// "schedules.primary.layers[1].handoff: must be HH:MM or HH:MM:SS". Secrets
// (address_env / address_file) are read here. Thread-safe.
bool ParseOnCallConfig(const YAML::Node& root, OnCallConfig* out, std::string* error);

// The same, and `check` is asked about every channel the config names; its
// first complaint fails the parse, named by the key that uses the channel.
bool ParseOnCallConfig(const YAML::Node& root, const ChannelCheck& check, OnCallConfig* out,
                       std::string* error);

// Every channel the config names, in config order (for a caller that checks
// them itself).
std::vector<ChannelUse> ChannelUses(const OnCallConfig& config);

// "30m", "45s", "1h30m", "2d", "250ms", "0": a sum of <digits><unit> terms,
// units d, h, m, s, ms. Returns microseconds, or nullopt (negative values,
// bare numbers other than "0", unknown units, overflow).
std::optional<int64_t> ParseDurationMicros(std::string_view text);

}  // namespace bpmc::oncall
