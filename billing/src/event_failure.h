#pragma once
// An error inside one billing event and the JSON path it is reported under:
// shared by the parser (billing_parser.cpp) and the store (billing_store.cpp),
// whose refusals (409/422) name a key of the event the same way.

#include <cstdint>
#include <string>
#include <string_view>

namespace bpmc::billing {

// `field` is relative to the event ("" = the event itself).
struct Failure {
  int http_status = 400;
  std::string message;
  std::string field;
};

// A 400 whose message is the field followed by `what` (" is required").
inline Failure Fail(std::string_view field, std::string_view what) {
  Failure f;
  f.field.assign(field.data(), field.size());
  f.message = f.field;
  f.message.append(what);
  return f;
}

// "[3].price.currency", "[3]", "price.currency" or "": `field` of the event at
// `index` of a batch (index < 0 for a single event).
inline std::string FieldPath(int64_t index, const std::string& field) {
  if (index < 0) return field;
  std::string out = "[" + std::to_string(index) + "]";
  if (!field.empty()) out += "." + field;
  return out;
}

}  // namespace bpmc::billing
