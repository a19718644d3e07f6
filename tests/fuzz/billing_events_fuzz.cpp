// libFuzzer harness for POST /v1/billing/events bodies: any byte string through
// ParseBillingEvents (depth check, simdjson, per-event rules). Refusals are
// 400/413/422 with a message; accepted events carry a minified body no longer
// than the input and at most max_batch_events of them.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "billing/billing.h"

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "billing_events_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  bpmc::billing::BillingParseOptions options;
  options.now_us = 1'795'600'800'000'000;  // 2026-11-25T10:00:00Z
  options.max_batch_events = 8;
  const auto r = bpmc::billing::ParseBillingEvents(body, options);
  if (const auto* e = std::get_if<bpmc::RequestError>(&r)) {
    if (e->http_status != 400 && e->http_status != 413 && e->http_status != 422)
      Die("unexpected HTTP status");
    if (e->message.empty()) Die("empty error message");
    return 0;
  }
  const auto& req = std::get<bpmc::billing::BillingRequest>(r);
  if (req.events.empty() || req.events.size() > options.max_batch_events) Die("bad batch size");
  for (const auto& e : req.events) {
    if (e.body.empty() || e.body.size() > size) Die("stored body is empty or grew");
    if (e.event_id.empty()) Die("accepted event without event_id");
  }
  return 0;
}
