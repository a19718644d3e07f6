#include "common/http_response.h"

#include <civetweb.h>

#include <string>

namespace bpmc {

void WriteResponse(mg_connection* conn, int status, std::string_view content_type,
                   std::string_view body, std::string_view extra_headers) {
  std::string out;
  out.reserve(160 + body.size() + extra_headers.size());
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ");
  out.append(mg_get_response_code_text(conn, status));
  out.append("\r\nContent-Type: ").append(content_type);
  out.append("\r\nContent-Length: ").append(std::to_string(body.size()));
  out.append("\r\nCache-Control: no-store\r\n");
  out.append(extra_headers);
  out.append("\r\n");
  out.append(body);
  mg_write(conn, out.data(), out.size());
}

}  // namespace bpmc
