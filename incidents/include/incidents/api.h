#pragma once
// The HTTP routes of incidents and on-call (docs/INCIDENTS.md):
//   GET  /api/v1/incidents[?status=&limit=&before=]   list, newest first
//   GET  /api/v1/incidents/{id}                       one, with alerts, pages and timeline
//   GET  /api/v1/incidents/{id}/report                post-incident report (markdown)
//   POST /api/v1/incidents/{id}/ack | /resolve        acknowledge, resolve
//   POST /api/v1/incidents/{id}/notes  {"text": ...}  a note in the timeline
//   GET  /api/v1/oncall[?at=&schedule=]               who is on call (oncall::AnswerOnCallRequest)
//   GET  /ack/{token}   a page with an "Acknowledge" button (link scanners only GET);
//   POST /ack/{token}   acknowledges with a signed, unexpired link from a page.
// /api/v1 routes take a platform user's bearer token: admin, manager and support
// read; admin and support acknowledge, resolve and write notes; role user is
// refused (incidents name other customers' connectors).

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_response.h"
#include "incidents/engine.h"

struct mg_connection;

namespace bpmc::incidents {

struct Caller {
  std::string name, role;
};
// The caller of an Authorization header value, or nullopt (missing, unknown, disabled).
using Authenticator = std::function<std::optional<Caller>(std::string_view authorization)>;

using HttpCall = bpmc::ApiRequest;  // common/http_response.h
struct HttpAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string extra_headers;  // "Name: value\r\n" lines
};

class Api {
 public:
  // `engine` must outlive the Api. Thread-safe.
  Api(Engine& engine, Authenticator authenticate);

  // True when `path` is one of the routes above.
  static bool Owns(std::string_view path);
  // The answer to one call of an owned path.
  HttpAnswer Answer(const HttpCall& call);
  // CivetWeb glue: answers and returns true for an owned path, else returns
  // false without touching the connection.
  bool Handle(mg_connection* conn, std::string_view method, std::string_view uri);

 private:
  HttpAnswer Incidents(const HttpCall& call, const Caller& caller);
  HttpAnswer AckLink(const HttpCall& call);
  Engine& engine_;
  Authenticator authenticate_;
};

// The value of `name` in a query string ("a=1&b=x%20y"), percent-decoded; nullopt when absent.
std::optional<std::string> QueryValue(std::string_view query, std::string_view name);

}  // namespace bpmc::incidents
