#pragma once

#include <string>

#include "http/route.h"
#include "http/types.h"

namespace bpmc::http {

// A group of endpoints behind one path test (the exporter's billing events,
// analytics, audit). The binary wires each into the route table (route.h),
// whose middleware authenticates (Authenticate, before the body is read),
// checks the content type and the body limit before Handle runs.
// Implementations are thread-safe: every method runs on any HTTP worker
// thread. They never throw: failures become 4xx/5xx values.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  // True when this endpoint serves `path` (any method).
  virtual bool Matches(const std::string& path) const = 0;
  // A short fixed name for metrics ("billing", "analytics", ...).
  virtual std::string Name() const = 0;
  virtual Response Handle(const Request& request) = 0;
  // The credentials of a request whose body is not read yet (headers, query,
  // address). The default refuses everyone (fail closed).
  virtual AuthResult Authenticate(const Request& request);
  // The middleware refused `request` before Handle (405, 429, 401, 503, 415,
  // 413, 408): for an endpoint's own refusal counters. Default: nothing.
  virtual void OnRefusal(const Request& request, const Response& response);
};

}  // namespace bpmc::http
