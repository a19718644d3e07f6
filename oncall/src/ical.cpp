#include "oncall/ical.h"

#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>

#include "common/ids.h"
#include "common/time.h"
#include "oncall/schedule.h"

namespace bpmc::oncall {
namespace {

using Seconds = std::chrono::seconds;
constexpr std::string_view kSignatureContext = "bpmc-ical\n";
constexpr size_t kMaxLineOctets = 75;
// An observance per offset period: a zone changing twice a year has ~4 in a feed.
constexpr int kMaxObservances = 200;

const date::time_zone* FindZone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return nullptr;
  }
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// "YYYYMMDDTHHMMSS" of `seconds` counted from the (local or UTC) epoch.
std::string BasicDateTime(int64_t seconds) {
  const int64_t day = FloorDiv(seconds, 86400);
  const int64_t sod = seconds - day * 86400;
  const Civil c = CivilFromDays(day);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld%02u%02uT%02lld%02lld%02lld",
                static_cast<long long>(std::clamp<int64_t>(c.year, 0, 9999)), c.month, c.day,
                static_cast<long long>(sod / 3600), static_cast<long long>(sod / 60 % 60),
                static_cast<long long>(sod % 60));
  return buf;
}

std::string UtcDateTime(int64_t micros) {
  return BasicDateTime(FloorDiv(micros, kMicrosPerSecond)) + "Z";
}

// "+0300", "-0330", "+053328" (seconds only when there are any).
std::string UtcOffset(int64_t seconds) {
  const char sign = seconds < 0 ? '-' : '+';
  const int64_t a = seconds < 0 ? -seconds : seconds;
  char buf[16];
  if (a % 60 != 0)
    std::snprintf(buf, sizeof buf, "%c%02lld%02lld%02lld", sign, static_cast<long long>(a / 3600),
                  static_cast<long long>(a / 60 % 60), static_cast<long long>(a % 60));
  else
    std::snprintf(buf, sizeof buf, "%c%02lld%02lld", sign, static_cast<long long>(a / 3600),
                  static_cast<long long>(a / 60 % 60));
  return buf;
}

// "DTSTART;TZID=Europe/Berlin:20261207T090000" for `micros` (whole seconds).
// A local time that occurs twice (fall back) means its first occurrence to a
// client (RFC 5545 section 3.3.5), so an instant in the second one is written
// in UTC instead.
std::string DateTimeProperty(const char* name, const date::time_zone* zone, const std::string& tzid,
                             int64_t micros) {
  const int64_t secs = FloorDiv(micros, kMicrosPerSecond);
  const auto info = zone->get_info(date::sys_seconds{Seconds{secs}});
  const int64_t local = secs + info.offset.count();
  const auto back = zone->to_sys(date::local_seconds{Seconds{local}}, date::choose::earliest);
  if (back.time_since_epoch().count() != secs)
    return std::string(name) + ":" + BasicDateTime(secs) + "Z";
  return std::string(name) + ";TZID=" + tzid + ":" + BasicDateTime(local);
}

class Writer {
 public:
  void Line(std::string_view line) { out_ += FoldICalLine(line); }
  void Text(std::string_view name, std::string_view value) {
    Line(std::string(name) + ":" + EscapeICalText(value));
  }
  void Raw(const std::string& folded) { out_ += folded; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

void BeginCalendar(Writer& w, std::string_view name, std::string_view zone) {
  w.Line("BEGIN:VCALENDAR");
  w.Line("VERSION:2.0");
  w.Line("PRODID:-//BPM Centr//bpmc-receiver on-call//EN");
  w.Line("CALSCALE:GREGORIAN");
  w.Line("METHOD:PUBLISH");
  w.Text("X-WR-CALNAME", name);
  if (!zone.empty()) w.Text("X-WR-TIMEZONE", zone);
  // How often clients should fetch again (Outlook and Google mostly decide themselves).
  w.Line("REFRESH-INTERVAL;VALUE=DURATION:PT1H");
  w.Line("X-PUBLISHED-TTL:PT1H");
}

std::string PersonName(const OnCallConfig& config, const std::string& id) {
  auto it = config.people.find(id);
  return it == config.people.end() || it->second.name.empty() ? id : it->second.name;
}

std::string ScheduleName(const Schedule& s) { return s.name.empty() ? s.id : s.name; }

void Event(Writer& w, const OnCallConfig& config, const Schedule& schedule,
           const date::time_zone* zone, const FeedShift& shift, int64_t now_micros) {
  w.Line("BEGIN:VEVENT");
  w.Text("UID", std::to_string(FloorDiv(shift.start_micros, kMicrosPerSecond)) + "-" + schedule.id +
                    "@oncall.bpmc");
  w.Line("DTSTAMP:" + UtcDateTime(now_micros));
  w.Line(DateTimeProperty("DTSTART", zone, schedule.time_zone, shift.start_micros));
  w.Line(DateTimeProperty("DTEND", zone, schedule.time_zone, shift.end_micros));
  const std::string person = PersonName(config, shift.person);
  w.Text("SUMMARY", "On call: " + ScheduleName(schedule) + " (" + person + ")");
  std::string description = "Schedule: " + ScheduleName(schedule) + " (" + schedule.id +
                            ")\nOn call: " + person + " (" + shift.person + ")\n";
  if (shift.from_override)
    description += "Override";
  else
    description += "Layer: " + (shift.layer_name.empty() ? "#" + std::to_string(shift.layer)
                                                         : shift.layer_name);
  w.Text("DESCRIPTION", description);
  w.Text("CATEGORIES", "On call");
  // A shift is not a meeting: it does not make the person busy.
  w.Line("TRANSP:TRANSPARENT");
  w.Line("END:VEVENT");
}

}  // namespace

FeedWindow DefaultFeedWindow(int64_t now_micros) {
  return {now_micros - kFeedDaysBack * kMicrosPerDay, now_micros + kFeedDaysAhead * kMicrosPerDay};
}

std::vector<FeedShift> FeedShifts(const Schedule& schedule, const std::vector<Override>& overrides,
                                  FeedWindow window) {
  std::vector<FeedShift> out;
  int64_t t = window.from_micros;
  while (t < window.to_micros && out.size() < kMaxFeedShiftsPerSchedule) {
    const OnCallShift s = WhoIsOnCall(schedule, overrides, t);
    const int64_t end = s.end_micros.value_or(window.to_micros);
    if (!s.person.empty()) {
      FeedShift f;
      f.schedule = schedule.id;
      f.person = s.person;
      f.start_micros = s.start_micros.value_or(window.from_micros);
      f.end_micros = end;
      f.layer = s.layer;
      f.layer_name = s.layer_name;
      f.from_override = s.from_override;
      out.push_back(std::move(f));
    }
    if (end <= t) break;  // cannot happen for a valid schedule; never loop forever
    t = end;
  }
  return out;
}

std::string ScheduleFeed(const OnCallConfig& config, const std::string& schedule_id,
                         FeedWindow window, int64_t now_micros) {
  const Schedule& schedule = config.schedules.at(schedule_id);
  const std::vector<FeedShift> shifts = FeedShifts(schedule, config.overrides, window);
  Writer w;
  BeginCalendar(w, "On call: " + ScheduleName(schedule), schedule.time_zone);
  const date::time_zone* zone = FindZone(schedule.time_zone);
  if (zone != nullptr) {
    int64_t lo = window.from_micros, hi = window.to_micros;
    for (const FeedShift& s : shifts) {
      lo = std::min(lo, s.start_micros);
      hi = std::max(hi, s.end_micros);
    }
    w.Raw(VTimeZone(schedule.time_zone, lo, hi));
    for (const FeedShift& s : shifts) Event(w, config, schedule, zone, s, now_micros);
  }
  w.Line("END:VCALENDAR");
  return w.Take();
}

std::string PersonFeed(const OnCallConfig& config, const std::string& person_id, FeedWindow window,
                       int64_t now_micros) {
  struct Zone {
    int64_t lo, hi;
  };
  std::map<std::string, Zone> zones;
  std::vector<FeedShift> mine;
  for (const auto& [id, schedule] : config.schedules) {
    if (FindZone(schedule.time_zone) == nullptr) continue;
    for (FeedShift& s : FeedShifts(schedule, config.overrides, window)) {
      if (s.person != person_id) continue;
      auto [it, added] = zones.try_emplace(schedule.time_zone, Zone{s.start_micros, s.end_micros});
      it->second.lo = std::min(it->second.lo, s.start_micros);
      it->second.hi = std::max(it->second.hi, s.end_micros);
      mine.push_back(std::move(s));
    }
  }
  Writer w;
  BeginCalendar(w, "On call: " + PersonName(config, person_id),
                zones.size() == 1 ? zones.begin()->first : "");
  for (const auto& [name, z] : zones) w.Raw(VTimeZone(name, z.lo, z.hi));
  for (const FeedShift& s : mine) {
    const Schedule& schedule = config.schedules.at(s.schedule);
    Event(w, config, schedule, FindZone(schedule.time_zone), s, now_micros);
  }
  w.Line("END:VCALENDAR");
  return w.Take();
}

std::string FoldICalLine(std::string_view line) {
  std::string out;
  out.reserve(line.size() + line.size() / 70 * 3 + 2);
  size_t limit = kMaxLineOctets;  // the first line; continuations carry a space
  while (line.size() > limit) {
    size_t cut = limit;
    // Never between the bytes of one character: back up to a lead byte.
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    if (cut == 0) cut = limit;  // not UTF-8 at all: cut anyway
    out.append(line.substr(0, cut));
    out += "\r\n ";
    line.remove_prefix(cut);
    limit = kMaxLineOctets - 1;
  }
  out.append(line);
  out += "\r\n";
  return out;
}

std::string EscapeICalText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case ';':
        out += "\\;";
        break;
      case ',':
        out += "\\,";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) break;
        out += c;
    }
  }
  return out;
}

std::string VTimeZone(const std::string& time_zone, int64_t from_micros, int64_t to_micros) {
  const date::time_zone* zone = FindZone(time_zone);
  if (zone == nullptr) return "";
  Writer w;
  w.Line("BEGIN:VTIMEZONE");
  w.Text("TZID", time_zone);
  const int64_t from = FloorDiv(from_micros, kMicrosPerSecond);
  const int64_t to = FloorDiv(to_micros, kMicrosPerSecond);
  date::sys_info info = zone->get_info(date::sys_seconds{Seconds{from}});
  for (int n = 0; n < kMaxObservances; ++n) {
    const int64_t begin = info.begin.time_since_epoch().count();
    // The offset before this period: its own for the zone's first period.
    int64_t before = info.offset.count();
    // The tz database's first period starts at the dawn of time: no DTSTART there.
    const bool first = begin < -4'000'000'000LL;
    if (!first) before = zone->get_info(info.begin - Seconds{1}).offset.count();
    w.Line(info.save == std::chrono::minutes{0} ? "BEGIN:STANDARD" : "BEGIN:DAYLIGHT");
    // DTSTART is the local time of the change, on the clock before it.
    w.Line("DTSTART:" + (first ? std::string("19700101T000000") : BasicDateTime(begin + before)));
    w.Line("TZOFFSETFROM:" + UtcOffset(before));
    w.Line("TZOFFSETTO:" + UtcOffset(info.offset.count()));
    if (!info.abbrev.empty()) w.Text("TZNAME", info.abbrev);
    w.Line(info.save == std::chrono::minutes{0} ? "END:STANDARD" : "END:DAYLIGHT");
    const int64_t end = info.end.time_since_epoch().count();
    if (end >= to || end <= begin) break;
    info = zone->get_info(info.end);
  }
  w.Line("END:VTIMEZONE");
  return w.Take();
}

std::string FeedPath(FeedKind kind, std::string_view id) {
  return std::string(kFeedPathPrefix) + (kind == FeedKind::kSchedule ? "schedule/" : "person/") +
         std::string(id) + ".ics";
}

std::string FeedUrlPath(FeedKind kind, std::string_view id) {
  std::string encoded;
  for (unsigned char c : id) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      encoded += buf;
    }
  }
  return FeedPath(kind, encoded);
}

std::string FeedSignature(std::string_view secret, std::string_view path) {
  std::string data(kSignatureContext);
  data.append(path);
  return Base64UrlEncode(HmacSha256(secret, data));
}

bool VerifyFeedSignature(std::string_view secret, std::string_view path, std::string_view sig) {
  if (secret.empty()) return false;
  return ConstantTimeEquals(sig, FeedSignature(secret, path));
}

bool ParseFeedPath(std::string_view path, FeedKind* kind, std::string* id) {
  if (path.substr(0, kFeedPathPrefix.size()) != kFeedPathPrefix) return false;
  path.remove_prefix(kFeedPathPrefix.size());
  constexpr std::string_view kSchedule = "schedule/", kPerson = "person/", kIcs = ".ics";
  if (path.substr(0, kSchedule.size()) == kSchedule) {
    *kind = FeedKind::kSchedule;
    path.remove_prefix(kSchedule.size());
  } else if (path.substr(0, kPerson.size()) == kPerson) {
    *kind = FeedKind::kPerson;
    path.remove_prefix(kPerson.size());
  } else {
    return false;
  }
  if (path.size() <= kIcs.size() || path.substr(path.size() - kIcs.size()) != kIcs) return false;
  *id = std::string(path.substr(0, path.size() - kIcs.size()));
  return true;
}

}  // namespace bpmc::oncall
