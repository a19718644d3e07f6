// libFuzzer harness for the analytics query string: any bytes as the raw query
// (`from=...&to=...&granularity=...`) through ParseQuery (percent-decoding) and
// ParseAnalyticsQuery, as GET /api/v1/analytics/* takes them. Refusals are 400
// naming a parameter; accepted queries have a known granularity.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "analytics/analytics.h"
#include "http/endpoint.h"

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "analytics_query_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string query(reinterpret_cast<const char*>(data), size);
  const auto params = bpmc::http::ParseQuery(query);
  const auto r = bpmc::analytics::ParseAnalyticsQuery(params, 1'795'600'800'000'000, 30);
  if (const auto* e = std::get_if<bpmc::RequestError>(&r)) {
    if (e->http_status != 400) Die("unexpected HTTP status");
    if (e->message.empty() || e->field.empty()) Die("an error that names no parameter");
  }
  return 0;
}
