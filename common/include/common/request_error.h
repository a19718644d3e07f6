#pragma once

#include <string>
#include <string_view>

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

// A key the client sent, as an error's field: at most 64 bytes (then "..."),
// so that an error never echoes a 10,000-character key back. Pure.
inline std::string ClientKeyField(std::string_view key) {
  constexpr size_t kMax = 64;
  if (key.size() <= kMax) return std::string(key);
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(key[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return std::string(key.substr(0, cut)) + "...";
}

}  // namespace bpmc
