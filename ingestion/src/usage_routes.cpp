#include "ingestion/usage_routes.h"

#include <string>
#include <utility>

#include "common/ids.h"
#include "common/time.h"
#include "identity/users.h"  // BearerToken
#include "ingestion/event.h"

namespace bpmc::ingestion {
namespace {

// The body is JSON within its limit and the key valid (the HTTP layer checked).
http::Response Ingest(const UsageRouteOptions& o, const http::Request& req, bool batch) {
  if (o.shutting_down && o.shutting_down->load())
    return http::Error(503, "shutting down", "", {{"Retry-After", "1"}, {"Connection", "close"}});
  // 400/413: parse and validate.
  ParseOptions options;
  options.now_us = o.clock->NowMicros();
  options.min_timestamp_us = (options.now_us / kMicrosPerDay - o.retention_days) * kMicrosPerDay;
  std::vector<UsageEvent> events;
  if (batch) {
    auto parsed = ParseUsageBatch(req.body, options);
    if (auto* err = std::get_if<RequestError>(&parsed))
      return http::Error(err->http_status, err->message, err->field);
    events = std::move(std::get<std::vector<UsageEvent>>(parsed));
  } else {
    auto parsed = ParseUsageEvent(req.body, options);
    if (auto* err = std::get_if<RequestError>(&parsed))
      return http::Error(err->http_status, err->message, err->field);
    events.push_back(std::move(std::get<UsageEvent>(parsed)));
  }
  // 422: connectors must exist.
  for (size_t i = 0; i < events.size(); ++i) {
    if (!o.directory->ConnectorExists(events[i].connector)) {
      const std::string field =
          batch ? "[" + std::to_string(i) + "].connector" : std::string("connector");
      return http::Error(422, "unknown connector '" + events[i].connector + "'", field);
    }
  }
  for (UsageEvent& e : events) {
    if (e.id.empty()) e.id = NewUuidV7(options.now_us);
    e.api_key_id = req.principal;
  }
  http::Response ok;
  ok.status = 201;
  ok.body = batch ? "{\"accepted\":" + std::to_string(events.size()) + "}"
                  : "{\"id\":\"" + events[0].id + "\"}";
  if (o.discard) return ok;
  const Writer::Result r = o.writer->Submit(std::move(events));
  switch (r.outcome) {
    case Writer::Outcome::kStored:
      return ok;
    case Writer::Outcome::kSpoolFull:
      return http::Error(503, "database unavailable and spool full; retry later", "",
                         {{"Retry-After", "5"}});
    case Writer::Outcome::kRejected:
      // Keys and connectors were checked above (docs/INGESTION.md explains why
      // connector_usage has no foreign keys): a refusal here is a server fault.
      return http::Error(500, "the database refused the events");
    case Writer::Outcome::kConflict: {
      // docs/INGESTION.md: an event id names one event; nothing is stored.
      const std::string field =
          batch ? "[" + std::to_string(r.event_index) + "].event_id" : std::string("event_id");
      return http::Error(409,
                         "event_id already names a different event (its " + r.difference +
                             " differs); send a new event_id for a new event",
                         field);
    }
    case Writer::Outcome::kUnavailable:
    case Writer::Outcome::kShuttingDown:
      break;
  }
  return http::Error(503, "cannot store events now; retry later", "", {{"Retry-After", "5"}});
}

}  // namespace

http::AuthResult AuthenticateApiKey(identity::Directory& directory, const http::Request& request) {
  const std::string authorization = request.Header("authorization");
  const std::string_view key = identity::BearerToken(authorization);
  if (key.empty()) return http::AuthResult::Unauthorized("missing bearer API key");
  const std::optional<std::string> api_key_id = directory.ApiKeyId(key);
  if (!api_key_id && !directory.loaded()) {
    // Started while PostgreSQL was down: no key can be checked yet.
    return http::AuthResult::Unavailable("cannot verify API keys yet; retry later");
  }
  if (!api_key_id)
    return http::AuthResult::Unauthorized("unknown or revoked API key",
                                          "Bearer error=\"invalid_token\"");
  return http::AuthResult::Ok(*api_key_id);
}

std::vector<http::Route> UsageRoutes(const UsageRouteOptions& options) {
  std::vector<http::Route> out;
  for (const bool batch : {false, true}) {
    http::Route r;
    r.name = batch ? "usage_batch" : "usage";
    r.path = batch ? "/v1/connector/usage/batch" : "/v1/connector/usage";
    r.methods = {"POST"};
    r.authenticate = [dir = options.directory](const http::Request& req) {
      return AuthenticateApiKey(*dir, req);
    };
    r.require_json = true;
    r.max_body_bytes = batch ? options.max_batch_body_bytes : options.max_event_body_bytes;
    r.handler = [options, batch](const http::Request& req) { return Ingest(options, req, batch); };
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace bpmc::ingestion
