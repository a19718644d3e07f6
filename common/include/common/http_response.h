#pragma once

#include <string_view>

struct mg_connection;  // CivetWeb

namespace bpmc {

// Writes a complete HTTP/1.1 response (status line, Content-Type,
// Content-Length, Cache-Control: no-store, `extra_headers` — each ending in
// "\r\n" — and the body) with ONE mg_write call: a response written in parts
// stalls ~40 ms per request on keep-alive connections (Nagle + delayed ACK).
void WriteResponse(mg_connection* conn, int status, std::string_view content_type,
                   std::string_view body, std::string_view extra_headers = {});

}  // namespace bpmc
