#pragma once
// "Who is on call at T": a pure function of a schedule, the overrides and T.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "oncall/model.h"

namespace bpmc::oncall {

// The answer for one schedule at one instant. It holds unchanged over
// [start, end): boundaries are the winning layer's handoffs, the edges of
// overrides and of restriction windows, and the moments a higher layer starts
// or stops covering. An unset bound means "unbounded" (before a layer's first
// handoff, say).
struct OnCallShift {
  std::string person;  // person id; "" when nobody is on call
  std::optional<int64_t> start_micros;
  std::optional<int64_t> end_micros;
  int layer = -1;          // index of the winning layer; -1 for an override or nobody
  std::string layer_name;  // its name, "" with layer -1
  bool from_override = false;
};

// Who is on call in `schedule` at `at_micros`. `overrides` may hold those of
// every schedule; only the ones naming schedule.id apply, and among
// overlapping ones the later entry wins. Handoffs are computed in the
// schedule's time zone from the system tzdata (/usr/share/zoneinfo), so a
// daily 09:00 handoff stays at 09:00 local time across DST changes. A local
// time that does not exist (spring forward) maps to the moment of the change;
// an ambiguous one (fall back) to its first occurrence. Pure and thread-safe.
// Precondition: `schedule` was validated by ParseOnCallConfig (an unknown time
// zone yields nobody on call, unbounded).
OnCallShift WhoIsOnCall(const Schedule& schedule, const std::vector<Override>& overrides,
                        int64_t at_micros);

// The zone's UTC offset at `at_micros`, in seconds (nullopt for an unknown zone).
std::optional<int> UtcOffsetSeconds(const std::string& time_zone, int64_t at_micros);

// True if `name` is a time zone of the system tzdata.
bool IsKnownTimeZone(const std::string& name);

}  // namespace bpmc::oncall
