#include "oncall/schedule.h"

#include <date/tz.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "common/time.h"

namespace bpmc::oncall {
namespace {

using Micros = std::chrono::microseconds;
constexpr int64_t kUnbounded0 = std::numeric_limits<int64_t>::min();
constexpr int64_t kUnbounded1 = std::numeric_limits<int64_t>::max();

// [start, end); the extreme values stand for "unbounded".
struct Interval {
  int64_t start = kUnbounded0;
  int64_t end = kUnbounded1;
};

Interval Intersect(Interval a, Interval b) {
  return {std::max(a.start, b.start), std::min(a.end, b.end)};
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// nullptr for an unknown zone. The system tzdata is read once, on first use.
const date::time_zone* FindZone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Local wall-clock time of `t` as microseconds since the local epoch.
int64_t UtcToLocal(const date::time_zone* zone, int64_t t) {
  const auto info = zone->get_info(date::sys_time<Micros>{Micros{t}});
  return t + std::chrono::duration_cast<Micros>(info.offset).count();
}

// The instant of local calendar `day` (days since 1970-01-01) at `seconds`
// past midnight: a skipped local time maps to the moment of the change, a
// repeated one to its first occurrence.
int64_t LocalToUtc(const date::time_zone* zone, int64_t day, int64_t seconds) {
  const date::local_time<Micros> local{Micros{day * kMicrosPerDay + seconds * kMicrosPerSecond}};
  return std::chrono::duration_cast<Micros>(
             zone->to_sys(local, date::choose::earliest).time_since_epoch())
      .count();
}

int64_t LocalDayOf(const date::time_zone* zone, int64_t t) {
  return FloorDiv(UtcToLocal(zone, t), kMicrosPerDay);
}

// 0 = Sunday; 1970-01-01 was a Thursday.
int WeekdayOf(int64_t day) { return static_cast<int>((day % 7 + 7 + 4) % 7); }

// The start of turn k (k = 0 is the first handoff).
int64_t HandoffAt(const Layer& layer, const date::time_zone* zone, int64_t k) {
  if (layer.shift_days > 0)
    return LocalToUtc(zone, layer.start_day + k * layer.shift_days, layer.handoff_seconds);
  return LocalToUtc(zone, layer.start_day, layer.handoff_seconds) + k * layer.shift_micros;
}

// The turn under way at t, or -1 before the first handoff. Estimated from the
// local calendar, then corrected against the real handoff instants (DST).
int64_t TurnAt(const Layer& layer, const date::time_zone* zone, int64_t t) {
  const int64_t first = HandoffAt(layer, zone, 0);
  if (t < first) return -1;
  int64_t k = 0;
  if (layer.shift_days > 0) {
    const int64_t day =
        FloorDiv(UtcToLocal(zone, t) - layer.handoff_seconds * kMicrosPerSecond, kMicrosPerDay);
    k = std::max<int64_t>(0, FloorDiv(day - layer.start_day, layer.shift_days));
  } else {
    k = (t - first) / layer.shift_micros;
  }
  while (k > 0 && HandoffAt(layer, zone, k) > t) --k;
  while (HandoffAt(layer, zone, k + 1) <= t) ++k;
  return k;
}

// The layer's restriction windows near t, merged where they touch. A window
// lasts under 7 days, so those that contain t or border the gap around it
// start within 8 local days of t.
std::vector<Interval> WindowsAround(const Layer& layer, const date::time_zone* zone, int64_t t) {
  std::vector<Interval> windows;
  const int64_t today = LocalDayOf(zone, t);
  for (int64_t day = today - 8; day <= today + 8; ++day) {
    for (const Restriction& r : layer.restrictions) {
      if (r.kind == Restriction::Kind::kWeekly && WeekdayOf(day) != r.weekday) continue;
      const int64_t start = LocalToUtc(zone, day, r.start_seconds);
      windows.push_back({start, start + r.duration_micros});
    }
  }
  std::sort(windows.begin(), windows.end(),
            [](const Interval& a, const Interval& b) { return a.start < b.start; });
  std::vector<Interval> merged;
  for (const Interval& w : windows) {
    if (!merged.empty() && w.start <= merged.back().end)
      merged.back().end = std::max(merged.back().end, w.end);
    else
      merged.push_back(w);
  }
  return merged;
}

// The merged restriction window that contains t (*inside = true), or else the
// gap between windows around t.
Interval WindowOrGap(const Layer& layer, const date::time_zone* zone, int64_t t, bool* inside) {
  Interval gap;
  for (const Interval& w : WindowsAround(layer, zone, t)) {
    if (w.start <= t && t < w.end) {
      *inside = true;
      return w;
    }
    if (w.end <= t)
      gap.start = std::max(gap.start, w.end);
    else
      gap.end = std::min(gap.end, w.start);
  }
  *inside = false;
  return gap;
}

// Who a single layer puts on call at t ("" = nobody), and the span over which
// that holds.
struct LayerState {
  std::string person;
  Interval span;
};

LayerState EvaluateLayer(const Layer& layer, const date::time_zone* zone, int64_t t) {
  LayerState state;
  if (layer.participants.empty()) return state;
  const int64_t k = TurnAt(layer, zone, t);
  if (k < 0) {  // not started: nobody until the first handoff, whatever the windows
    state.span.end = HandoffAt(layer, zone, 0);
    return state;
  }
  if (!layer.restrictions.empty()) {
    bool inside = false;
    state.span = WindowOrGap(layer, zone, t, &inside);
    if (!inside) return state;  // the layer is off: nobody
  }
  state.span = Intersect(state.span, {HandoffAt(layer, zone, k), HandoffAt(layer, zone, k + 1)});
  state.person =
      layer.participants[static_cast<size_t>(k % static_cast<int64_t>(layer.participants.size()))];
  return state;
}

OnCallShift ToShift(std::string person, Interval span) {
  OnCallShift shift;
  shift.person = std::move(person);
  if (span.start != kUnbounded0) shift.start_micros = span.start;
  if (span.end != kUnbounded1) shift.end_micros = span.end;
  return shift;
}

// The answer of the layers alone: the top layer with someone on call wins, and
// it holds while neither it nor any layer above it changes.
OnCallShift FromLayers(const Schedule& schedule, const date::time_zone* zone, int64_t t) {
  Interval span;
  for (size_t i = schedule.layers.size(); i-- > 0;) {
    const LayerState state = EvaluateLayer(schedule.layers[i], zone, t);
    span = Intersect(span, state.span);
    if (!state.person.empty()) {
      OnCallShift shift = ToShift(state.person, span);
      shift.layer = static_cast<int>(i);
      shift.layer_name = schedule.layers[i].name;
      return shift;
    }
  }
  return ToShift("", span);
}

// The override in force at t, if any: the last one listed that covers t,
// cut where an override listed after it begins or ends.
std::optional<OnCallShift> FromOverrides(const std::vector<const Override*>& mine, int64_t t) {
  for (size_t w = mine.size(); w-- > 0;) {
    if (!(mine[w]->from_micros <= t && t < mine[w]->to_micros)) continue;
    Interval span{mine[w]->from_micros, mine[w]->to_micros};
    for (size_t j = w + 1; j < mine.size(); ++j) {
      if (mine[j]->from_micros > t) span.end = std::min(span.end, mine[j]->from_micros);
      if (mine[j]->to_micros <= t) span.start = std::max(span.start, mine[j]->to_micros);
    }
    OnCallShift shift = ToShift(mine[w]->person, span);
    shift.from_override = true;
    return shift;
  }
  return std::nullopt;
}

// Cuts the layers' answer at the nearest override edges around t.
void CutAtOverrides(const std::vector<const Override*>& mine, int64_t t, OnCallShift* shift) {
  for (const Override* o : mine) {
    if (o->from_micros > t && (!shift->end_micros || o->from_micros < *shift->end_micros))
      shift->end_micros = o->from_micros;
    if (o->to_micros <= t && (!shift->start_micros || o->to_micros > *shift->start_micros))
      shift->start_micros = o->to_micros;
  }
}

}  // namespace

OnCallShift WhoIsOnCall(const Schedule& schedule, const std::vector<Override>& overrides,
                        int64_t at_micros) {
  const date::time_zone* zone = FindZone(schedule.time_zone);
  if (zone == nullptr) return {};
  std::vector<const Override*> mine;
  for (const Override& o : overrides)
    if (o.schedule == schedule.id && o.from_micros < o.to_micros) mine.push_back(&o);
  if (auto shift = FromOverrides(mine, at_micros)) return *shift;
  OnCallShift shift = FromLayers(schedule, zone, at_micros);
  CutAtOverrides(mine, at_micros, &shift);
  return shift;
}

std::optional<int> UtcOffsetSeconds(const std::string& time_zone, int64_t at_micros) {
  const date::time_zone* zone = FindZone(time_zone);
  if (zone == nullptr) return std::nullopt;
  return static_cast<int>((UtcToLocal(zone, at_micros) - at_micros) / kMicrosPerSecond);
}

bool IsKnownTimeZone(const std::string& name) { return FindZone(name) != nullptr; }

}  // namespace bpmc::oncall
