#pragma once

#include <civetweb.h>

#include <string>
#include <string_view>

#include "common/http_response.h"

namespace bpmc::exporter {

using bpmc::WriteResponse;  // common/http_response.h

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
