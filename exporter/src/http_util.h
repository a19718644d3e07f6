#pragma once

#include <civetweb.h>

#include <string>
#include <string_view>

namespace bpmc::exporter {

// Writes a complete HTTP/1.1 response with one mg_write call (a response
// written in parts stalls ~40 ms per request on keep-alive connections).
inline void WriteResponse(mg_connection* conn, int status, std::string_view content_type,
                          std::string_view body, std::string_view extra_headers = {}) {
  const char* reason = mg_get_response_code_text(conn, status);
  std::string out;
  out.reserve(160 + body.size());
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(reason);
  out.append("\r\nContent-Type: ").append(content_type);
  out.append("\r\nContent-Length: ").append(std::to_string(body.size()));
  out.append("\r\nCache-Control: no-store\r\n");
  out.append(extra_headers);
  out.append("\r\n");
  out.append(body);
  mg_write(conn, out.data(), out.size());
}

// JSON string literal of `s` (quotes included), escaping as RFC 8259 requires.
inline std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

// {"error": msg, "message": msg, "field": field}. "message" is what the
// seed's registerUsage client prints on failure.
inline std::string ErrorBody(std::string_view message, std::string_view field) {
  return "{\"error\":" + JsonQuote(message) + ",\"message\":" + JsonQuote(message) +
         ",\"field\":" + JsonQuote(field) + "}";
}

}  // namespace bpmc::exporter
