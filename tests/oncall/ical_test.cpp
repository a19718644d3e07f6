// The iCalendar feed of on-call shifts (oncall/ical.h): line folding and TEXT
// escaping as RFC 5545 says, VTIMEZONEs from the tz database (Europe/Moscow
// without DST, Europe/Berlin across both changes), events that are exactly
// the answers of WhoIsOnCall, and the feed URLs' signatures.
#include "oncall/ical.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "oncall/schedule.h"
#include "oncall_test_util.h"

namespace bpmc::oncall {
namespace {

using test::kHour;
using test::MustParse;
using test::T;

// The physical lines of a folded text; fails on a bare LF or a missing final CRLF.
std::vector<std::string> PhysicalLines(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t crlf = text.find("\r\n", at);
    EXPECT_NE(crlf, std::string::npos) << "no final CRLF";
    if (crlf == std::string::npos) break;
    out.push_back(text.substr(at, crlf - at));
    EXPECT_EQ(out.back().find('\n'), std::string::npos) << out.back();
    at = crlf + 2;
  }
  return out;
}

// The content lines of a folded text (continuations joined).
std::vector<std::string> Unfold(const std::string& text) {
  std::vector<std::string> out;
  for (const std::string& l : PhysicalLines(text)) {
    if (!l.empty() && l[0] == ' ' && !out.empty())
      out.back() += l.substr(1);
    else
      out.push_back(l);
  }
  return out;
}

// The content lines that start with `prefix`.
std::vector<std::string> Values(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  for (const std::string& l : Unfold(text))
    if (l.rfind(prefix, 0) == 0) out.push_back(l);
  return out;
}

bool Utf8Valid(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

TEST(FoldICalLineTest, Table) {
  const std::string cyr = "Дежурство";  // 2-byte characters
  const struct {
    std::string line;
    size_t physical_lines;
  } cases[] = {
      {"", 1},
      {"SUMMARY:short", 1},
      {std::string(75, 'a'), 1},
      {std::string(76, 'a'), 2},
      {std::string(75 + 74, 'a'), 2},
      {std::string(75 + 75, 'a'), 3},
      // A 2-byte character at octets 75-76 goes to the next line whole.
      {std::string(74, 'a') + "Ж" + "b", 2},
      {std::string(73, 'a') + "€€", 2},          // 3-byte characters
      {std::string(74, 'a') + "😀" + "tail", 2},  // a 4-byte one
      {"SUMMARY:" + cyr + cyr + cyr + cyr + cyr + cyr + cyr + cyr + cyr + cyr, 3},
  };
  for (const auto& c : cases) {
    const std::string folded = FoldICalLine(c.line);
    const std::vector<std::string> lines = PhysicalLines(folded);
    EXPECT_EQ(lines.size(), c.physical_lines) << c.line;
    for (size_t i = 0; i < lines.size(); ++i) {
      EXPECT_LE(lines[i].size(), 75u) << c.line;
      EXPECT_TRUE(Utf8Valid(lines[i])) << "split character in: " << c.line;
      if (i > 0) EXPECT_EQ(lines[i][0], ' ');
    }
    const std::vector<std::string> unfolded = Unfold(folded);
    ASSERT_EQ(unfolded.size(), 1u);
    EXPECT_EQ(unfolded[0], c.line);
  }
}

TEST(EscapeICalTextTest, Table) {
  const struct {
    std::string in, out;
  } cases[] = {
      {"plain", "plain"},
      {"a,b;c", "a\\,b\\;c"},
      {"back\\slash", "back\\\\slash"},
      {"two\nlines", "two\\nlines"},
      {"crlf\r\nend", "crlf\\nend"},
      {std::string("bell\a and nul ") + '\0' + "x", "bell and nul x"},
      {"tab\tkept", "tab\tkept"},
      {"Петрова, Анна", "Петрова\\, Анна"},
  };
  for (const auto& c : cases) EXPECT_EQ(EscapeICalText(c.in), c.out) << c.in;
}

TEST(VTimeZoneTest, MoscowHasOneFixedStandardObservance) {
  const std::string tz =
      VTimeZone("Europe/Moscow", T("2026-11-30T00:00:00Z"), T("2027-02-05T00:00:00Z"));
  const std::vector<std::string> lines = Unfold(tz);
  const std::vector<std::string> expected = {
      "BEGIN:VTIMEZONE",
      "TZID:Europe/Moscow",
      "BEGIN:STANDARD",
      "DTSTART:20141026T020000",  // the last change of the zone, on the clock before it
      "TZOFFSETFROM:+0400",
      "TZOFFSETTO:+0300",
      "TZNAME:MSK",
      "END:STANDARD",
      "END:VTIMEZONE"};
  EXPECT_EQ(lines, expected) << tz;
}

TEST(VTimeZoneTest, BerlinHasEveryChangeOfTheWindow) {
  // Summer 2026 to spring 2027: CEST, CET from 2026-10-25, CEST from 2027-03-28.
  const std::string tz =
      VTimeZone("Europe/Berlin", T("2026-10-01T00:00:00Z"), T("2027-04-01T00:00:00Z"));
  const std::vector<std::string> expected = {"BEGIN:VTIMEZONE",    "TZID:Europe/Berlin",
                                             "BEGIN:DAYLIGHT",     "DTSTART:20260329T020000",
                                             "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200",
                                             "TZNAME:CEST",        "END:DAYLIGHT",
                                             "BEGIN:STANDARD",     "DTSTART:20261025T030000",
                                             "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
                                             "TZNAME:CET",         "END:STANDARD",
                                             "BEGIN:DAYLIGHT",     "DTSTART:20270328T020000",
                                             "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200",
                                             "TZNAME:CEST",        "END:DAYLIGHT",
                                             "END:VTIMEZONE"};
  EXPECT_EQ(Unfold(tz), expected) << tz;
  EXPECT_EQ(VTimeZone("Mars/Olympus", 0, kHour), "");
  // A zone that never changed: one observance from the epoch.
  EXPECT_EQ(Values(VTimeZone("UTC", 0, kHour), "DTSTART"),
            std::vector<std::string>{"DTSTART:19700101T000000"});
}

const char* kYaml = R"(
people:
  ann: {name: "Ann Petrova, SRE", contact_methods: [{type: email, address: ann@example.com}]}
  bob: {name: Bob, contact_methods: [{type: email, address: bob@example.com}]}
  ivan: {name: Иван Иванов, contact_methods: [{type: email, address: ivan@example.com}]}
schedules:
  berlin:
    name: Primary; Berlin
    time_zone: Europe/Berlin
    layers:
      - {name: days, rotation: daily, handoff: "09:00", start: 2027-03-26, participants: [ann, bob]}
  moscow:
    name: Дежурные Москва
    time_zone: Europe/Moscow
    layers:
      - {name: weeks, rotation: weekly, handoff: "10:00", start: 2026-12-07, participants: [ivan, ann]}
overrides:
  - {schedule: berlin, person: ivan, from: "2027-03-29T12:00:00Z", to: "2027-03-29T14:00:00Z"}
)";

TEST(ScheduleFeedTest, BerlinAcrossSpringForwardWithAnOverride) {
  const OnCallConfig config = MustParse(kYaml);
  const FeedWindow window{T("2027-03-27T00:00:00Z"), T("2027-03-30T00:00:00Z")};
  const std::string feed = ScheduleFeed(config, "berlin", window, T("2027-03-20T10:00:00Z"));
  EXPECT_EQ(Values(feed, "DTSTART;TZID"),
            (std::vector<std::string>{
                "DTSTART;TZID=Europe/Berlin:20270326T090000",  // started before the window
                "DTSTART;TZID=Europe/Berlin:20270327T090000",
                "DTSTART;TZID=Europe/Berlin:20270328T090000",  // 23 hours after the last one
                "DTSTART;TZID=Europe/Berlin:20270329T090000",  // bob, until the override
                "DTSTART;TZID=Europe/Berlin:20270329T140000",  // ivan's override
                "DTSTART;TZID=Europe/Berlin:20270329T160000",  // the rest of bob's turn
            }))
      << feed;
  EXPECT_EQ(Values(feed, "DTEND;TZID"), (std::vector<std::string>{
                                            "DTEND;TZID=Europe/Berlin:20270327T090000",
                                            "DTEND;TZID=Europe/Berlin:20270328T090000",
                                            "DTEND;TZID=Europe/Berlin:20270329T090000",
                                            "DTEND;TZID=Europe/Berlin:20270329T140000",
                                            "DTEND;TZID=Europe/Berlin:20270329T160000",
                                            "DTEND;TZID=Europe/Berlin:20270330T090000",
                                        }))
      << feed;
  EXPECT_EQ(Values(feed, "SUMMARY"), (std::vector<std::string>{
                                         "SUMMARY:On call: Primary\\; Berlin (Ann Petrova\\, SRE)",
                                         "SUMMARY:On call: Primary\\; Berlin (Bob)",
                                         "SUMMARY:On call: Primary\\; Berlin (Ann Petrova\\, SRE)",
                                         "SUMMARY:On call: Primary\\; Berlin (Bob)",
                                         "SUMMARY:On call: Primary\\; Berlin (Иван Иванов)",
                                         "SUMMARY:On call: Primary\\; Berlin (Bob)",
                                     }));
  // The 09:00 of the 28th is before the change: the VTIMEZONE covers both offsets.
  EXPECT_EQ(Values(feed, "DTSTART"),
            (std::vector<std::string>{"DTSTART:20261025T030000", "DTSTART:20270328T020000",
                                      "DTSTART;TZID=Europe/Berlin:20270326T090000",
                                      "DTSTART;TZID=Europe/Berlin:20270327T090000",
                                      "DTSTART;TZID=Europe/Berlin:20270328T090000",
                                      "DTSTART;TZID=Europe/Berlin:20270329T090000",
                                      "DTSTART;TZID=Europe/Berlin:20270329T140000",
                                      "DTSTART;TZID=Europe/Berlin:20270329T160000"}));
  const std::vector<std::string> lines = Unfold(feed);
  EXPECT_EQ(lines.front(), "BEGIN:VCALENDAR");
  EXPECT_EQ(lines.back(), "END:VCALENDAR");
  EXPECT_EQ(Values(feed, "DTSTAMP").size(), 6u);
  EXPECT_EQ(Values(feed, "DTSTAMP")[0], "DTSTAMP:20270320T100000Z");
  for (const std::string& l : PhysicalLines(feed)) EXPECT_LE(l.size(), 75u) << l;
}

TEST(ScheduleFeedTest, UidsAreStableAcrossWindowsAndEdits) {
  OnCallConfig config = MustParse(kYaml);
  const std::string a =
      ScheduleFeed(config, "berlin", {T("2027-03-27T00:00:00Z"), T("2027-03-30T00:00:00Z")},
                   T("2027-03-20T10:00:00Z"));
  // A day later, a wider window, and bob's turn of the 27th covered by ivan.
  config.overrides.push_back(
      {"berlin", "ivan", T("2027-03-27T08:00:00Z"), T("2027-03-28T07:00:00Z")});
  const std::string b =
      ScheduleFeed(config, "berlin", {T("2027-03-20T00:00:00Z"), T("2027-04-30T00:00:00Z")},
                   T("2027-03-21T10:00:00Z"));
  const std::vector<std::string> uids_a = Values(a, "UID");
  const std::vector<std::string> uids_b = Values(b, "UID");
  ASSERT_EQ(uids_a.size(), 6u);
  EXPECT_EQ(uids_a[1], "UID:1806134400-berlin@oncall.bpmc");  // 2027-03-27T08:00:00Z
  for (const std::string& uid : uids_a)
    EXPECT_NE(std::find(uids_b.begin(), uids_b.end(), uid), uids_b.end()) << uid << "\n" << b;
  EXPECT_NE(b.find("SUMMARY:On call: Primary\\; Berlin (Иван Иванов)\r\nDESCRIPTION"),
            std::string::npos);
  // One UID per event.
  std::set<std::string> unique(uids_b.begin(), uids_b.end());
  EXPECT_EQ(unique.size(), uids_b.size());
}

TEST(ScheduleFeedTest, EventsAreTheAnswersOfWhoIsOnCall) {
  const OnCallConfig config = MustParse(kYaml);
  for (const char* id : {"berlin", "moscow"}) {
    const Schedule& s = config.schedules.at(id);
    const FeedWindow window = DefaultFeedWindow(T("2027-03-10T00:00:00Z"));
    const std::vector<FeedShift> shifts = FeedShifts(s, config.overrides, window);
    ASSERT_FALSE(shifts.empty()) << id;
    for (size_t i = 0; i < shifts.size(); ++i) {
      const OnCallShift w = WhoIsOnCall(s, config.overrides, shifts[i].start_micros);
      EXPECT_EQ(w.person, shifts[i].person);
      EXPECT_EQ(w.start_micros.value_or(0), shifts[i].start_micros);
      EXPECT_EQ(w.end_micros.value_or(0), shifts[i].end_micros);
      if (i > 0) EXPECT_EQ(shifts[i - 1].end_micros, shifts[i].start_micros);
    }
    EXPECT_GE(shifts.back().end_micros, window.to_micros);
  }
}

TEST(ScheduleFeedTest, MoscowWeeklyInLocalTime) {
  const OnCallConfig config = MustParse(kYaml);
  const std::string feed =
      ScheduleFeed(config, "moscow", {T("2026-12-01T00:00:00Z"), T("2026-12-20T00:00:00Z")},
                   T("2026-12-01T00:00:00Z"));
  EXPECT_EQ(Values(feed, "DTSTART;TZID"),
            (std::vector<std::string>{"DTSTART;TZID=Europe/Moscow:20261207T100000",
                                      "DTSTART;TZID=Europe/Moscow:20261214T100000"}));
  EXPECT_EQ(Values(feed, "X-WR-TIMEZONE"), std::vector<std::string>{"X-WR-TIMEZONE:Europe/Moscow"});
  EXPECT_EQ(Values(feed, "BEGIN").size(), 5u);  // VCALENDAR, VTIMEZONE, STANDARD, 2 x VEVENT
  EXPECT_EQ(Values(feed, "TZOFFSETTO"), std::vector<std::string>{"TZOFFSETTO:+0300"});
  // Before the first handoff nobody is on call: no event.
  EXPECT_EQ(Values(feed, "SUMMARY")[0], "SUMMARY:On call: Дежурные Москва (Иван Иванов)");
}

TEST(ScheduleFeedTest, SecondOccurrenceOfAnAmbiguousTimeIsWrittenInUtc) {
  OnCallConfig config = MustParse(kYaml);
  // 02:30 CET on 2026-10-25 (the clock went back at 03:00 CEST): the second 02:30.
  config.overrides.push_back(
      {"berlin", "bob", T("2026-10-25T01:30:00Z"), T("2026-10-25T03:00:00Z")});
  config.schedules["berlin"].layers.clear();
  const std::string feed =
      ScheduleFeed(config, "berlin", {T("2026-10-24T00:00:00Z"), T("2026-10-26T00:00:00Z")},
                   T("2026-10-20T00:00:00Z"));
  EXPECT_EQ(Values(feed, "DTSTART:20261025T01"),
            std::vector<std::string>{"DTSTART:20261025T013000Z"});
  EXPECT_EQ(Values(feed, "DTEND"),
            std::vector<std::string>{"DTEND;TZID=Europe/Berlin:20261025T040000"});
}

TEST(PersonFeedTest, EveryScheduleWithItsOwnZone) {
  const OnCallConfig config = MustParse(kYaml);
  const std::string feed =
      PersonFeed(config, "ivan", {T("2026-12-01T00:00:00Z"), T("2027-03-31T00:00:00Z")},
                 T("2026-12-01T00:00:00Z"));
  EXPECT_EQ(Values(feed, "TZID"),
            (std::vector<std::string>{"TZID:Europe/Berlin", "TZID:Europe/Moscow"}));
  const std::vector<std::string> summaries = Values(feed, "SUMMARY");
  ASSERT_FALSE(summaries.empty());
  // Berlin's override first (schedules by id), then ivan's Moscow weeks.
  EXPECT_EQ(summaries[0], "SUMMARY:On call: Primary\\; Berlin (Иван Иванов)");
  for (size_t i = 1; i < summaries.size(); ++i)
    EXPECT_EQ(summaries[i], "SUMMARY:On call: Дежурные Москва (Иван Иванов)");
  EXPECT_EQ(summaries.size(), 1u + 9u);  // every other week of 17
  EXPECT_EQ(Values(feed, "X-WR-CALNAME"),
            std::vector<std::string>{"X-WR-CALNAME:On call: Иван Иванов"});
  // Nobody's feed is still a valid, empty calendar.
  const std::string none =
      PersonFeed(config, "bob", {T("2020-01-01T00:00:00Z"), T("2020-02-01T00:00:00Z")}, 0);
  EXPECT_EQ(Unfold(none).back(), "END:VCALENDAR");
  EXPECT_TRUE(Values(none, "BEGIN:VEVENT").empty());
}

TEST(FeedSignatureTest, SignsTheDecodedPath) {
  const std::string secret = "0123456789abcdef-secret";
  const std::string path = FeedPath(FeedKind::kSchedule, "berlin");
  EXPECT_EQ(path, "/api/v1/oncall/ical/schedule/berlin.ics");
  const std::string sig = FeedSignature(secret, path);
  EXPECT_EQ(sig.size(), 43u);
  EXPECT_TRUE(VerifyFeedSignature(secret, path, sig));
  EXPECT_FALSE(VerifyFeedSignature(secret, FeedPath(FeedKind::kPerson, "berlin"), sig));
  EXPECT_FALSE(VerifyFeedSignature(secret, path, sig.substr(0, 42)));
  EXPECT_FALSE(VerifyFeedSignature(secret, path, ""));
  EXPECT_FALSE(VerifyFeedSignature("other-secret-0123456", path, sig));
  EXPECT_FALSE(VerifyFeedSignature("", path, FeedSignature("", path)));
  EXPECT_EQ(FeedUrlPath(FeedKind::kPerson, "ann b/ж"),
            "/api/v1/oncall/ical/person/ann%20b%2F%D0%B6.ics");
}

TEST(ParseFeedPathTest, Table) {
  const struct {
    std::string path;
    bool ok;
    FeedKind kind;
    std::string id;
  } cases[] = {
      {"/api/v1/oncall/ical/schedule/primary.ics", true, FeedKind::kSchedule, "primary"},
      {"/api/v1/oncall/ical/person/ann.b.ics", true, FeedKind::kPerson, "ann.b"},
      {"/api/v1/oncall/ical/person/a/b.ics", true, FeedKind::kPerson, "a/b"},
      {"/api/v1/oncall/ical/person/.ics", false, FeedKind::kPerson, ""},
      {"/api/v1/oncall/ical/person/ann", false, FeedKind::kPerson, ""},
      {"/api/v1/oncall/ical/team/ann.ics", false, FeedKind::kPerson, ""},
      {"/api/v1/oncall/ical/", false, FeedKind::kPerson, ""},
      {"/api/v1/oncall", false, FeedKind::kPerson, ""},
  };
  for (const auto& c : cases) {
    FeedKind kind = FeedKind::kSchedule;
    std::string id;
    EXPECT_EQ(ParseFeedPath(c.path, &kind, &id), c.ok) << c.path;
    if (!c.ok) continue;
    EXPECT_EQ(kind, c.kind) << c.path;
    EXPECT_EQ(id, c.id) << c.path;
  }
}

}  // namespace
}  // namespace bpmc::oncall
