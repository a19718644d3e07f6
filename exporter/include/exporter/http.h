#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "http/route.h"
#include "http/types.h"

namespace bpmc::exporter {

// The request and response of the shared HTTP layer (http/include/http/types.h).
using HttpRequest = http::Request;
using HttpResponse = http::Response;

// A group of endpoints served by the exporter besides ingestion (billing
// events, analytics, audit). Service wires each into the bpmc::http route
// table, whose middleware authenticates (Authenticate, before the body is
// read), checks the content type and the body limit before Handle runs.
// Implementations are thread-safe: every method runs on any HTTP worker
// thread. They never throw: failures become 4xx/5xx values.
class Route {
 public:
  virtual ~Route() = default;
  // True when this route serves `path` (any method).
  virtual bool Matches(const std::string& path) const = 0;
  // A short fixed name for metrics ("billing", "analytics", ...).
  virtual std::string Name() const = 0;
  virtual HttpResponse Handle(const HttpRequest& request) = 0;
  // The credentials of a request whose body is not read yet (headers, query,
  // address). The default refuses everyone (fail closed): routes whose
  // credentials are checked elsewhere say so where they are wired.
  virtual http::AuthResult Authenticate(const HttpRequest& request);
  // The middleware refused `request` before Handle (405, 429, 401, 503, 415,
  // 413, 408): for a route's own refusal counters. Default: nothing.
  virtual void OnRefusal(const HttpRequest& request, const HttpResponse& response);
};

// Decodes a query string into key -> value (percent-decoding, '+' as space).
// Later duplicates win.
inline std::map<std::string, std::string> ParseQuery(const std::string& query) {
  return http::ParseQuery(query);
}

// {"error": msg, "message": msg, "field": field} as an HttpResponse.
inline HttpResponse JsonError(int status, const std::string& message, const std::string& field) {
  return http::Error(status, message, field);
}

}  // namespace bpmc::exporter
