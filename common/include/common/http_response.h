#pragma once

#include <cstddef>
#include <string>
#include <string_view>

struct mg_connection;  // CivetWeb

namespace bpmc {

// Writes a complete HTTP/1.1 response (status line, Content-Type,
// Content-Length, Cache-Control: no-store, `extra_headers` — each ending in
// "\r\n" — and the body) with ONE mg_write call: a response written in parts
// stalls ~40 ms per request on keep-alive connections (Nagle + delayed ACK).
void WriteResponse(mg_connection* conn, int status, std::string_view content_type,
                   std::string_view body, std::string_view extra_headers = {});

// What a JSON API handler needs from one request.
struct ApiRequest {
  std::string method, path, query, authorization, body;
  // Content-Length announced, or the client sent, more than max_body bytes; `body` is then
  // incomplete. Answer 413 with "Connection: close" (the rest is still on the wire).
  bool body_too_large = false;
};

// Reads the query string, the Authorization header and the body (at most
// `max_body` bytes) of the request being handled on `conn`.
ApiRequest ReadApiRequest(mg_connection* conn, std::string_view method, std::string_view path,
                          size_t max_body);

}  // namespace bpmc
