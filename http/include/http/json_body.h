#pragma once
// What the two JSON body parsers of the exporter share, the usage events
// (ingestion) and the billing events (billing): the one answer to a body
// simdjson could not parse, and the collection of an object's known keys.
//
// Header-only on purpose: bpmc::http does not link simdjson. Include it only
// from a target that links simdjson::simdjson itself (ingestion and billing do).

#include <optional>

#include "common/request_error.h"
#include "simdjson.h"

namespace bpmc::http {

// nullopt for SUCCESS; otherwise 413 "body is too large" when the parser ran
// out of capacity or memory, else a 400 naming what is wrong with the body.
// The field is always "" (the whole body). Pure.
inline std::optional<RequestError> JsonSyntaxError(simdjson::error_code err) {
  auto body_error = [](int status, const char* message) {
    return RequestError{status, message, std::string()};
  };
  switch (err) {
    case simdjson::SUCCESS:
      return std::nullopt;
    case simdjson::UTF8_ERROR:
      return body_error(400, "body is not valid UTF-8");
    case simdjson::EMPTY:
      return body_error(400, "body is empty");
    case simdjson::DEPTH_ERROR:
      return body_error(400, "body is nested too deeply");
    case simdjson::NUMBER_ERROR:
      return body_error(400, "body is not valid JSON: malformed or out-of-range number");
    case simdjson::CAPACITY:
    case simdjson::MEMALLOC:
      return body_error(413, "body is too large");
    default:
      return body_error(400, "body is not valid JSON");
  }
}

// The known keys of one JSON object, each at most once: values[k] is the value
// of key k when seen[k]. `N` is the number of known keys. Lives on the stack:
// no allocation (the usage parser is the hot path of ingestion).
template <int N>
struct KnownKeys {
  simdjson::dom::element values[N];
  bool seen[N] = {};

  // The value of `key`, or nullptr when the key is absent.
  const simdjson::dom::element* Get(int key) const { return seen[key] ? &values[key] : nullptr; }

  // Reads the keys of `obj`; `key_of` maps a key to 0..N-1, or -1 for one to
  // ignore. Returns the first known key that appears twice (so duplicates are
  // found before any value is checked), or -1.
  template <typename KeyOf>
  int Collect(simdjson::dom::object obj, KeyOf key_of) {
    for (const simdjson::dom::key_value_pair& kv : obj) {
      const int key = key_of(kv.key);
      if (key < 0) continue;
      if (seen[key]) return key;
      seen[key] = true;
      values[key] = kv.value;
    }
    return -1;
  }
};

}  // namespace bpmc::http
