#pragma once
// The on-call shifts as an iCalendar feed (RFC 5545) that Google Calendar and
// Outlook subscribe to (docs/ONCALL.md, "Calendar feeds"): one schedule, or
// every shift of one person across schedules. Pure functions of the on-call
// config (with the stored overrides merged in by the caller), so the feed says
// what GET /api/v1/oncall says; and the signature of a feed's URL.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "oncall/model.h"

namespace bpmc::oncall {

// The instants a feed covers: [from, to).
struct FeedWindow {
  int64_t from_micros = 0;
  int64_t to_micros = 0;
};
inline constexpr int64_t kFeedDaysBack = 7;
inline constexpr int64_t kFeedDaysAhead = 60;
// At most this many shifts per schedule in one feed (a schedule of 15-minute
// restriction windows would otherwise make a huge answer); later ones are left out.
inline constexpr size_t kMaxFeedShiftsPerSchedule = 5000;

// kFeedDaysBack days before `now_micros` to kFeedDaysAhead days after it.
FeedWindow DefaultFeedWindow(int64_t now_micros);

// One answer of WhoIsOnCall with somebody on call, as an event.
struct FeedShift {
  std::string schedule;  // schedule id
  std::string person;    // person id
  int64_t start_micros = 0;
  int64_t end_micros = 0;
  int layer = -1;  // -1 for an override
  std::string layer_name;
  bool from_override = false;
};

// The shifts of `schedule` that overlap `window`, in time order: exactly the
// successive answers of WhoIsOnCall(schedule, overrides, t) from window.from,
// each with its own start and end (a shift that began before the window keeps
// its real start); an unbounded start or end is cut at the window's edge. Times
// when nobody is on call have no shift. At most kMaxFeedShiftsPerSchedule. Pure.
std::vector<FeedShift> FeedShifts(const Schedule& schedule, const std::vector<Override>& overrides,
                                  FeedWindow window);

// The VCALENDAR of one schedule (schedule_id must be in config.schedules):
// a VTIMEZONE of its zone and one VEVENT per FeedShift, SUMMARY "On call:
// <schedule name> (<person name>)", DTSTART/DTEND in the schedule's zone
// (TZID), UID "<start unix seconds>-<schedule id>@oncall.bpmc" (stable: an
// edit of who covers a shift updates the event in the client instead of
// adding one), DTSTAMP `now_micros`. CRLF line ends, lines folded at 75
// octets. Pure.
std::string ScheduleFeed(const OnCallConfig& config, const std::string& schedule_id,
                         FeedWindow window, int64_t now_micros);

// The same for every shift of `person_id` (which must be in config.people) in
// every schedule (sorted by schedule id, then start); a VTIMEZONE per zone used.
std::string PersonFeed(const OnCallConfig& config, const std::string& person_id, FeedWindow window,
                       int64_t now_micros);

// --- Building blocks, exposed for the table tests. ----------------------

// A content line folded as RFC 5545 section 3.1 says: CRLF after at most 75
// octets, continuation lines start with one space; a multi-byte UTF-8 character
// is never split. Returns the folded line with its final CRLF.
std::string FoldICalLine(std::string_view line);

// A TEXT value escaped (section 3.3.11): backslash, semicolon, comma and
// newline escaped; CR and other control characters dropped.
std::string EscapeICalText(std::string_view text);

// The VTIMEZONE component (folded, CRLF) of `time_zone` for instants in
// [from, to): one STANDARD or DAYLIGHT observance per offset period of the tz
// database that overlaps it (a zone without changes in the window, such as
// Europe/Moscow since 2014, gets a single STANDARD). "" for an unknown zone.
std::string VTimeZone(const std::string& time_zone, int64_t from_micros, int64_t to_micros);

// --- Signed feed URLs. ------------------------------------------------------

// The path of a feed: "/api/v1/oncall/ical/schedule/<id>.ics" or
// "/api/v1/oncall/ical/person/<id>.ics", the id as it is (the HTTP layer gives
// handlers decoded paths); FeedUrlPath is the same, percent-encoded for a URL.
inline constexpr std::string_view kFeedPathPrefix = "/api/v1/oncall/ical/";
enum class FeedKind { kSchedule, kPerson };
std::string FeedPath(FeedKind kind, std::string_view id);
std::string FeedUrlPath(FeedKind kind, std::string_view id);

// The signature of a decoded feed path: base64url (43 characters) of
// HMAC-SHA256(secret, "bpmc-ical\n" + path). Pure.
std::string FeedSignature(std::string_view secret, std::string_view path);

// True when `sig` is FeedSignature(secret, path), compared in constant time;
// always false with an empty secret.
bool VerifyFeedSignature(std::string_view secret, std::string_view path, std::string_view sig);

// The kind and id of a decoded feed path, or false (not under kFeedPathPrefix,
// no ".ics", empty id).
bool ParseFeedPath(std::string_view path, FeedKind* kind, std::string* id);

}  // namespace bpmc::oncall
