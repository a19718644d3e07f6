// The on-call calendar feeds of bpmc-receiver (docs/ONCALL.md, "Calendar
// feeds") against a real PostgreSQL: a staff user gets the signed URLs, a
// calendar client (python3-icalendar, as /usr/bin/python3 runs it) reads the
// feed, and for 30 days its events are exactly what GET /api/v1/oncall
// answers at every handoff, an override made through POST /api/v1/overrides
// included. Unsigned or badly signed URLs get 403 whatever the id; every fetch
// is audited without the signature and counted.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>
#include <set>
#include <tuple>

#include "common/clock.h"
#include "common/time_format.h"
#include "identity/users.h"
#include "oncall/ical.h"
#include "receiver_test_util.h"
#include "testing/pg_cluster.h"
#include "webhook_receiver/service.h"

namespace bpmc::webhook_receiver {
namespace {

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kDay = 86400 * kSecond;
constexpr const char* kSecret = "feed-secret-0123456789abcdef";

// A Berlin rotation of three with a weekend layer on top (restriction windows
// make handoffs that are not the rotation's), and a Moscow weekly one.
const char* kOnCall = R"(
incidents:
  ical_feed_secret_env: BPMC_TEST_ICAL_SECRET
people:
  ann: {name: "Ann Petrova, SRE", contact_methods: [{type: slack, channel: ops-slack}]}
  bob: {name: Bob, contact_methods: [{type: slack, channel: ops-slack}]}
  cid: {name: Сид, contact_methods: [{type: slack, channel: ops-slack}]}
  dan: {name: Dan, contact_methods: [{type: slack, channel: ops-slack}]}
schedules:
  berlin:
    name: Primary Berlin
    time_zone: Europe/Berlin
    layers:
      - {name: days, rotation: daily, handoff: "09:00", start: 2026-01-05, participants: [ann, bob, cid]}
      - name: weekends
        rotation: weekly
        handoff: "18:00"
        start: 2026-01-09
        participants: [dan, ann]
        restrictions: [{type: weekly, day: saturday, start: "08:00", duration: 36h}]
  moscow:
    name: Москва
    time_zone: Europe/Moscow
    layers:
      - {rotation: weekly, handoff: "10:00", start: 2026-01-05, participants: [cid, dan]}
)";

// Parses an .ics file with python3-icalendar and prints one line per event:
// "<start unix>|<end unix>|<uid>|<summary>", sorted; exits 3 on a line longer
// than 75 octets or a line break other than CRLF.
const char* kParser = R"PY(
import sys
from icalendar import Calendar
data = open(sys.argv[1], 'rb').read()
body = data[:-2] if data.endswith(b'\r\n') else sys.exit(3)
for line in body.split(b'\r\n'):
    if len(line) > 75 or b'\n' in line or b'\r' in line:
        sys.exit(3)
    line.decode('utf-8')
cal = Calendar.from_ical(data)
out = []
for ev in cal.walk('VEVENT'):
    start = ev.decoded('dtstart')
    end = ev.decoded('dtend')
    assert start.tzinfo is not None and end.tzinfo is not None
    out.append('%d|%d|%s|%s' % (start.timestamp(), end.timestamp(), ev['uid'], ev['summary']))
tz = [str(c['tzid']) for c in cal.walk('VTIMEZONE')]
print('TZ|' + ','.join(tz))
for line in sorted(out):
    print(line)
)PY";

struct Event {
  int64_t start = 0, end = 0;  // unix seconds
  std::string uid, summary;
  bool operator<(const Event& o) const {
    return std::tie(start, end, summary) < std::tie(o.start, o.end, o.summary);
  }
};

class OnCallFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("BPMC_TEST_ICAL_SECRET", kSecret, 1);
    auto& cluster = bpmc::testing::SharedCluster();
    url_ = cluster.ConnectionString(cluster.CreateDatabase());
    pqxx::connection conn(url_);
    ApplySchema(conn, webhook_receiver::DatabaseSchema());
    admin_ = *identity::CreateUser(conn, "olga", identity::Role::kAdmin, "");
    std::string yaml = test::TestConfigYaml();
    // The test config's own on-call sections are replaced by these.
    yaml = yaml.substr(0, yaml.find("# Routes' policies must exist."));
    yaml += R"(
escalation_policies:
  primary:
    levels: [{delay: 30m, targets: [{schedule: berlin}]}]
)";
    ReceiverConfig config = test::MustLoad(yaml + kOnCall);
    config.listen = "127.0.0.1:0";
    config.database_url = url_;
    ServiceDeps deps;
    deps.start_delivery = false;
    std::string error;
    service_ = Service::Start(config, deps, &error);
    ASSERT_TRUE(service_) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", service_->port());
    client_->set_read_timeout(30, 0);
  }
  void TearDown() override {
    if (service_) service_->Shutdown();
  }
  httplib::Headers Admin() { return {{"Authorization", "Bearer " + admin_}}; }

  // The path and query of a signed URL from GET /api/v1/oncall/ical-links.
  std::string FeedUrl(const std::string& list, const std::string& id) {
    auto r = client_->Get("/api/v1/oncall/ical-links", Admin());
    EXPECT_EQ(r->status, 200) << r->body;
    const nlohmann::json links = nlohmann::json::parse(r->body);
    for (const auto& e : links[list])
      if (e["id"] == id) {
        const std::string url = e["url"];
        return url.substr(url.find("/api/"));
      }
    ADD_FAILURE() << "no link for " << id << ": " << r->body;
    return "";
  }

  // The feed as python3-icalendar reads it.
  std::vector<Event> Parse(const std::string& ics, std::string* zones) {
    const std::string dir = ::testing::TempDir();
    const std::string script = dir + "/bpmc_ical_parse.py", file = dir + "/bpmc_feed.ics";
    std::ofstream(script) << kParser;
    std::ofstream(file, std::ios::binary) << ics;
    FILE* p = popen(("/usr/bin/python3 " + script + " " + file).c_str(), "r");
    EXPECT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    size_t n = 0;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int status = pclose(p);
    EXPECT_EQ(status, 0) << "python3-icalendar could not read the feed:\n" << out << ics;
    std::vector<Event> events;
    size_t at = 0;
    while (at < out.size()) {
      const size_t nl = out.find('\n', at);
      const std::string line = out.substr(at, nl - at);
      at = nl == std::string::npos ? out.size() : nl + 1;
      if (line.rfind("TZ|", 0) == 0) {
        *zones = line.substr(3);
        continue;
      }
      Event e;
      const size_t a = line.find('|'), b = line.find('|', a + 1), c = line.find('|', b + 1);
      e.start = std::stoll(line.substr(0, a));
      e.end = std::stoll(line.substr(a + 1, b - a - 1));
      e.uid = line.substr(b + 1, c - b - 1);
      e.summary = line.substr(c + 1);
      events.push_back(e);
    }
    return events;
  }

  // GET /api/v1/oncall's answers from `from` for `days`, at every handoff, as events.
  std::set<Event> FromApi(const std::string& schedule, int64_t from, int64_t days) {
    std::set<Event> out;
    int64_t t = from;
    for (int i = 0; i < 500 && t < from + days * kDay; ++i) {
      auto r = client_->Get("/api/v1/oncall?schedule=" + schedule + "&at=" + FormatRfc3339Micros(t),
                            Admin());
      EXPECT_EQ(r->status, 200) << r->body;
      const auto s = nlohmann::json::parse(r->body)["schedules"][0];
      const auto& on = s["on_call"];
      if (on.is_null()) break;
      Event e;
      e.start = *ParseRfc3339Micros(on["start"].get<std::string>()) / kSecond;
      e.end = *ParseRfc3339Micros(on["end"].get<std::string>()) / kSecond;
      e.summary = "On call: " + s["name"].get<std::string>() + " (" +
                  on["person"]["name"].get<std::string>() + ")";
      out.insert(e);
      t = e.end * kSecond;
    }
    return out;
  }

  int64_t Rows(const std::string& where) {
    return test::Count(url_, "SELECT count(*) FROM audit_log WHERE " + where);
  }

  std::string url_, admin_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(OnCallFeedTest, EventsMatchTheOnCallApiForThirtyDaysWithAnApiOverride) {
  const int64_t now = SystemClock::Get().NowMicros();
  // dan covers the day after tomorrow from 10:00 to 15:30 UTC.
  const int64_t day = (now / kDay + 2) * kDay;
  const nlohmann::json cover = {
      {"schedule", "berlin"},
      {"person", "dan"},
      {"from", FormatRfc3339Micros(day + 10 * 3600 * kSecond)},
      {"to", FormatRfc3339Micros(day + 15 * 3600 * kSecond + 1800 * kSecond)}};
  auto made = client_->Post("/api/v1/overrides", Admin(), cover.dump(), "application/json");
  ASSERT_EQ(made->status, 201) << made->body;

  const std::string path = FeedUrl("schedules", "berlin");
  ASSERT_EQ(path.rfind("/api/v1/oncall/ical/schedule/berlin.ics?sig=", 0), 0u) << path;
  auto r = client_->Get(path);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/calendar; charset=utf-8");
  EXPECT_EQ(r->get_header_value("Referrer-Policy"), "no-referrer");
  std::string zones;
  const std::vector<Event> events = Parse(r->body, &zones);
  EXPECT_EQ(zones, "Europe/Berlin");
  ASSERT_GT(events.size(), 30u);

  // Every handoff of the next 30 days, as the API tells it, is an event of the
  // feed, and no event of those days is missing from the API.
  const int64_t from = now / kSecond, to = from + 30 * 86400;
  const std::set<Event> api = FromApi("berlin", now, 30);
  std::set<Event> feed;
  for (const Event& e : events)
    if (e.end > from && e.start < to) feed.insert(e);
  std::set<Event> api_in_range;
  for (const Event& e : api)
    if (e.end > from && e.start < to) api_in_range.insert(e);
  EXPECT_GT(api_in_range.size(), 30u);  // days, weekends and the override
  std::vector<std::string> diff;
  for (const Event& e : api_in_range)
    if (!feed.count(e)) diff.push_back("API only: " + std::to_string(e.start) + " " + e.summary);
  for (const Event& e : feed)
    if (!api_in_range.count(e))
      diff.push_back("feed only: " + std::to_string(e.start) + " " + e.summary);
  EXPECT_TRUE(diff.empty()) << ::testing::PrintToString(diff);
  // The override is there, and the feed starts a week back.
  const Event dan{(day + 10 * 3600 * kSecond) / kSecond,
                  (day + 15 * 3600 * kSecond + 1800 * kSecond) / kSecond, "",
                  "On call: Primary Berlin (Dan)"};
  EXPECT_TRUE(feed.count(dan)) << r->body;
  EXPECT_LE(events.front().start, from - 7 * 86400 + 86400);
  std::set<std::string> uids;
  for (const Event& e : events) uids.insert(e.uid);
  EXPECT_EQ(uids.size(), events.size());
  // Fetched again: the same UIDs (calendar clients update, not duplicate).
  auto again = client_->Get(path);
  std::vector<Event> second = Parse(again->body, &zones);
  std::set<std::string> uids_again;
  for (const Event& e : second) uids_again.insert(e.uid);
  EXPECT_EQ(uids_again, uids);

  // A person's feed: dan's override and weekends in Berlin, his Moscow weeks.
  auto person = client_->Get(FeedUrl("people", "dan"));
  ASSERT_EQ(person->status, 200) << person->body;
  const std::vector<Event> mine = Parse(person->body, &zones);
  EXPECT_EQ(zones, "Europe/Berlin,Europe/Moscow");
  EXPECT_EQ(std::count_if(
                mine.begin(), mine.end(),
                [&](const Event& e) { return e.start == dan.start && e.summary == dan.summary; }),
            1);
  for (const Event& e : mine) EXPECT_NE(e.summary.find("(Dan)"), std::string::npos) << e.summary;
}

TEST_F(OnCallFeedTest, SignatureFirstThenTheId) {
  const std::string good = FeedUrl("schedules", "berlin");
  const std::string sig = good.substr(good.find("?sig=") + 5);
  auto code = [&](const std::string& path) {
    auto r = client_->Get(path);
    EXPECT_TRUE(r);
    return r ? r->status : 0;
  };
  auto field = [&](const std::string& path) {
    return nlohmann::json::parse(client_->Get(path)->body).value("field", "");
  };
  EXPECT_EQ(code(good), 200);
  EXPECT_EQ(code("/api/v1/oncall/ical/schedule/berlin.ics"), 403);
  EXPECT_EQ(field("/api/v1/oncall/ical/schedule/berlin.ics"), "sig");
  EXPECT_EQ(code("/api/v1/oncall/ical/schedule/berlin.ics?sig=" + sig.substr(1)), 403);
  // Another id with berlin's signature: 403 whether it exists or not.
  EXPECT_EQ(code("/api/v1/oncall/ical/schedule/moscow.ics?sig=" + sig), 403);
  EXPECT_EQ(code("/api/v1/oncall/ical/schedule/nowhere.ics?sig=" + sig), 403);
  EXPECT_EQ(code("/api/v1/oncall/ical/person/berlin.ics?sig=" + sig), 403);
  // A valid signature of an id that does not exist (say, removed from the config): 404.
  const std::string gone = oncall::FeedPath(oncall::FeedKind::kSchedule, "gone");
  EXPECT_EQ(code(gone + "?sig=" + oncall::FeedSignature(kSecret, gone)), 404);
  EXPECT_EQ(field(gone + "?sig=" + oncall::FeedSignature(kSecret, gone)), "schedule");
  // Links need a platform user.
  EXPECT_EQ(code("/api/v1/oncall/ical-links"), 401);
  // The feed needs no bearer token, and a POST is refused.
  EXPECT_EQ(client_->Post(good, "", "text/plain")->status, 405);

  // Audited without the signature; counted.
  EXPECT_GE(Rows("endpoint = '/api/v1/oncall/ical/schedule/berlin.ics' AND allowed AND "
                 "params->>'sig' LIKE 'sha256:%'"),
            1);
  EXPECT_EQ(Rows("params::text LIKE '%" + sig + "%'"), 0);
  EXPECT_EQ(Rows("endpoint LIKE '/api/v1/oncall/ical/%' AND NOT allowed AND status = 403"), 6);
  const std::string m = client_->Get("/metrics")->body;
  EXPECT_NE(
      m.find(
          "bpmc_receiver_oncall_feed_requests_total{feed=\"schedule\",result=\"bad_signature\"} 5"),
      std::string::npos)
      << m;
  EXPECT_NE(
      m.find("bpmc_receiver_oncall_feed_requests_total{feed=\"schedule\",result=\"not_found\"} 2"),
      std::string::npos);
  EXPECT_NE(m.find("bpmc_receiver_oncall_feed_requests_total{feed=\"links\",result=\"ok\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace bpmc::webhook_receiver
