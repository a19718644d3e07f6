#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace bpmc::exporter {

// A fully read HTTP request as the service hands it to a Route. Value type.
struct HttpRequest {
  std::string method;
  std::string path;   // without the query string
  std::string query;  // raw query string, without '?'
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string remote_ip;

  // Header value by lowercase name, or "".
  std::string Header(const std::string& lowercase_name) const {
    auto it = headers.find(lowercase_name);
    return it == headers.end() ? "" : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// A group of endpoints served by the exporter besides ingestion (billing
// events, analytics, audit). Implementations are thread-safe: Handle runs on
// any HTTP worker thread. They never throw: failures become 4xx/5xx values.
class Route {
 public:
  virtual ~Route() = default;
  // True when this route serves `path` (any method).
  virtual bool Matches(const std::string& path) const = 0;
  // A short fixed name for metrics ("billing", "analytics", ...).
  virtual std::string Name() const = 0;
  virtual HttpResponse Handle(const HttpRequest& request) = 0;
};

// Decodes a query string into key -> value (percent-decoding, '+' as space).
// Later duplicates win.
std::map<std::string, std::string> ParseQuery(const std::string& query);

// {"error": msg, "message": msg, "field": field} as an HttpResponse.
HttpResponse JsonError(int status, const std::string& message, const std::string& field);

}  // namespace bpmc::exporter
