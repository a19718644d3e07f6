#pragma once
// bpmc::http value types: one request, one response, the JSON error shape.
// These headers never include CivetWeb; http/src/server.cpp is the only code
// of the project that touches it.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bpmc::http {

// A request as a route's handler sees it: headers complete, body fully read
// (within the route's limit). Value type.
struct Request {
  std::string method;
  std::string path;                            // without the query string
  std::string query;                           // raw query string, without '?'
  std::map<std::string, std::string> headers;  // names lowercased; a repeated header keeps the last
  std::string body;
  // The client address: the TCP peer, or the rightmost untrusted address of
  // X-Forwarded-For when the peer is one of `trusted_proxies` (ClientAddress).
  std::string remote_ip;
  std::string peer_ip;       // the TCP peer itself
  std::string principal;     // who the route's authenticate function said this is ("" when public)
  std::string principal_id;  // their stable id (a users.id UUID), "" when none
  std::string principal_role;  // their role ("admin", ..., "user"), "" when none

  // Header value by lowercase name, or "".
  std::string Header(const std::string& lowercase_name) const {
    auto it = headers.find(lowercase_name);
    return it == headers.end() ? "" : it->second;
  }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // A body too large to build whole (/metrics: tens of MB). When set, `body`
  // is ignored: the server sends the headers, then calls `stream` with a
  // `write` that sends each piece as one chunk (Transfer-Encoding: chunked)
  // and returns false once the client is gone (stream may then stop early).
  std::function<void(const std::function<bool(std::string_view)>& write)> stream;

  // The value of extra header `name` (exact case), or "".
  std::string Header(std::string_view name) const;
};

// A response with a plain-text (or the given) body.
Response Text(int status, std::string body, std::string content_type = "text/plain");

// JSON string literal of `s` (quotes included), escaped as RFC 8259 requires.
std::string JsonQuote(std::string_view s);

// The one error body of both binaries: {"error": msg, "message": msg, "field": field}.
// "message" is what the seed's registerUsage client prints on failure.
std::string ErrorBody(std::string_view message, std::string_view field);

// An error response with ErrorBody and the given extra headers.
Response Error(int status, std::string_view message, std::string_view field = "",
               std::vector<std::pair<std::string, std::string>> headers = {});

// Decodes a query string into key -> value (percent-decoding, '+' as space).
// Later duplicates win.
std::map<std::string, std::string> ParseQuery(std::string_view query);

// Percent-decoding with '+' as space; malformed escapes are kept as they are.
std::string PercentDecode(std::string_view s);

}  // namespace bpmc::http
