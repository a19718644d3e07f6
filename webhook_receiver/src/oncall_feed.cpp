#include "oncall_feed.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/pii.h"
#include "oncall/ical.h"

namespace bpmc::webhook_receiver {
namespace {

using Json = nlohmann::json;

// What a calendar client may do with the answer: keep it private, show it as a
// calendar, never send the URL (a credential) on as a Referer.
const std::vector<std::pair<std::string, std::string>> kFeedHeaders = {
    {"Cache-Control", "private, max-age=300"},
    {"X-Robots-Tag", "noindex"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Content-Type-Options", "nosniff"},
};

std::string SignedUrl(const incidents::IncidentsConfig& c, oncall::FeedKind kind,
                      const std::string& id) {
  return c.public_url + oncall::FeedUrlPath(kind, id) +
         "?sig=" + oncall::FeedSignature(c.ical_feed_secret, oncall::FeedPath(kind, id));
}

}  // namespace

OnCallFeed::OnCallFeed(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("bpmc_receiver_oncall_feed_requests_total")
                    .Help("Requests for the on-call calendar feeds and their signed links, by "
                          "feed (schedule, person, links) and result (ok, bad_signature, "
                          "not_found, disabled, forbidden, unavailable).")
                    .Register(registry)) {}

void OnCallFeed::Count(const char* feed, const char* result) {
  requests_.Add({{"feed", feed}, {"result", result}}).Increment();
}

http::Response OnCallFeed::Feed(const http::Request& req, incidents::Engine& engine,
                                const Clock& clock) {
  const incidents::IncidentsConfig& c = engine.options().config;
  oncall::FeedKind kind = oncall::FeedKind::kSchedule;
  std::string id;
  const bool parsed = oncall::ParseFeedPath(req.path, &kind, &id);
  const char* feed = !parsed                               ? "unknown"
                     : kind == oncall::FeedKind::kSchedule ? "schedule"
                                                           : "person";
  if (c.ical_feed_secret.empty()) {
    Count(feed, "disabled");
    return http::Error(404, "calendar feeds are not configured (incidents.ical_feed_secret_env)");
  }
  // The signature first: without it nobody learns whether an id exists.
  const auto sig = http::ParseQuery(req.query)["sig"];
  if (!oncall::VerifyFeedSignature(c.ical_feed_secret, req.path, sig)) {
    Count(feed, "bad_signature");
    return http::Error(403,
                       sig.empty() ? "a signed feed URL is required (GET /api/v1/oncall/ical-links)"
                                   : "the feed URL's signature is not valid",
                       "sig");
  }
  const std::string field = kind == oncall::FeedKind::kSchedule ? "schedule" : "person";
  if (!parsed) {  // signed but not a feed path: cannot happen with our own links
    Count(feed, "not_found");
    return http::Error(404, "no such feed", "path");
  }
  try {
    const oncall::OnCallConfig config = engine.OnCallWithOverrides();
    const int64_t now = clock.NowMicros();
    const oncall::FeedWindow window = oncall::DefaultFeedWindow(now);
    std::string body;
    if (kind == oncall::FeedKind::kSchedule) {
      if (!config.schedules.count(id)) {
        Count(feed, "not_found");
        return http::Error(404, "no such schedule", field);
      }
      body = oncall::ScheduleFeed(config, id, window, now);
    } else {
      if (!config.people.count(id)) {
        Count(feed, "not_found");
        return http::Error(404, "no such person", field);
      }
      body = oncall::PersonFeed(config, id, window, now);
    }
    Count(feed, "ok");
    http::Response r = http::Text(200, std::move(body), "text/calendar; charset=utf-8");
    r.headers = kFeedHeaders;
    return r;
  } catch (const std::exception& e) {
    spdlog::warn("calendar feed: {}", ScrubPii(e.what()));
    Count(feed, "unavailable");
    if (engine.options().count_failure) engine.options().count_failure("oncall_feed");
    return http::Error(503, "the database is unavailable; retry later", "", {{"Retry-After", "5"}});
  }
}

http::Response OnCallFeed::Links(const http::Request& req, incidents::Engine& engine) {
  const std::string& role = req.principal_role;
  if (role != "admin" && role != "manager" && role != "support") {
    Count("links", "forbidden");
    return http::Error(403, "role '" + role + "' may not see on-call feeds");
  }
  const incidents::IncidentsConfig& c = engine.options().config;
  if (c.ical_feed_secret.empty()) {
    Count("links", "disabled");
    return http::Error(404, "calendar feeds are not configured", "incidents.ical_feed_secret_env");
  }
  const oncall::OnCallConfig& config = engine.options().oncall;
  Json schedules = Json::array(), people = Json::array();
  for (const auto& [id, s] : config.schedules)
    schedules.push_back({{"id", id},
                         {"name", s.name.empty() ? id : s.name},
                         {"time_zone", s.time_zone},
                         {"url", SignedUrl(c, oncall::FeedKind::kSchedule, id)}});
  for (const auto& [id, p] : config.people)
    people.push_back({{"id", id},
                      {"name", p.name.empty() ? id : p.name},
                      {"url", SignedUrl(c, oncall::FeedKind::kPerson, id)}});
  Count("links", "ok");
  http::Response r = http::Text(200, Json{{"schedules", schedules}, {"people", people}}.dump(),
                                "application/json");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace bpmc::webhook_receiver
