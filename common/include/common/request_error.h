#pragma once

#include <string>

namespace bpmc {

// A client error, as every parser and handler of both binaries reports it:
// the HTTP status, a message, and the JSON path of the offending field
// ("timestamp", "[12].duration_ms", "details.a.a", "" for the whole body). The
// HTTP layer renders it as {"error","message","field"} (http::Error).
struct RequestError {
  int http_status = 400;
  std::string message;
  std::string field;
};

}  // namespace bpmc
