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

ApiRequest ReadApiRequest(mg_connection* conn, std::string_view method, std::string_view path,
                          size_t max_body) {
  const mg_request_info* ri = mg_get_request_info(conn);
  ApiRequest r;
  r.method = std::string(method);
  r.path = std::string(path);
  r.query = ri->query_string ? ri->query_string : "";
  const char* authorization = mg_get_header(conn, "Authorization");
  r.authorization = authorization ? authorization : "";
  if (ri->content_length > static_cast<long long>(max_body)) {
    r.body_too_large = true;
    return r;
  }
  char buf[8192];
  for (int n; r.body.size() <= max_body && (n = mg_read(conn, buf, sizeof buf)) > 0;)
    r.body.append(buf, static_cast<size_t>(n));
  r.body_too_large = r.body.size() > max_body;
  return r;
}

}  // namespace bpmc
