// libFuzzer harness: any byte string through both request parsers; every
// accepted event must survive the spool encoding unchanged, and its timestamp
// FormatRfc3339Micros/ParseRfc3339Micros. The same bytes are
// also fed to DecodeEventRecord, whose accepted inputs must re-encode to
// themselves (the encoding is canonical).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "common/time_format.h"
#include "ingestion/event.h"

namespace {

using bpmc::RequestError;
using bpmc::ingestion::DecodeEventRecord;
using bpmc::ingestion::EncodeEventRecord;
using bpmc::ingestion::UsageEvent;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "event_parser_fuzz: %s\n", what);
  std::abort();
}

void CheckError(const bpmc::RequestError& e) {
  if (e.http_status != 400 && e.http_status != 413) Die("unexpected HTTP status");
  if (e.message.empty()) Die("empty error message");
}

void CheckRoundTrip(bpmc::ingestion::UsageEvent event) {
  if (event.connector.empty() || event.operation.empty() || event.make_account_id.empty()) {
    Die("accepted event without a required field");
  }
  if (bpmc::ParseRfc3339Micros(bpmc::FormatRfc3339Micros(event.timestamp_us)) !=
      event.timestamp_us) {
    Die("timestamp does not survive Format/Parse");
  }
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {  // also with the fields the server fills in
      event.id = "0190a6b2-7d1c-7abc-8def-0123456789ab";
      event.api_key_id = "00000000-0000-4000-8000-000000000000";
    }
    const std::string record = EncodeEventRecord(event);
    bpmc::ingestion::UsageEvent decoded;
    if (!DecodeEventRecord(record, &decoded)) Die("DecodeEventRecord refused its own record");
    if (!(decoded == event)) Die("record round trip changed the event");
    if (EncodeEventRecord(decoded) != record) Die("re-encoding differs");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  bpmc::ingestion::ParseOptions options;
  options.now_us = 1'795'600'800'000'000;            // 2026-11-25T10:00:00Z
  options.min_timestamp_us = 1'700'000'000'000'000;  // 2023-11-14
  options.max_batch_events = 8;

  auto one = bpmc::ingestion::ParseUsageEvent(input, options);
  if (auto* e = std::get_if<bpmc::ingestion::UsageEvent>(&one)) {
    CheckRoundTrip(std::move(*e));
  } else {
    CheckError(std::get<bpmc::RequestError>(one));
  }

  auto batch = bpmc::ingestion::ParseUsageBatch(input, options);
  if (auto* events = std::get_if<std::vector<UsageEvent>>(&batch)) {
    if (events->empty() || events->size() > options.max_batch_events) Die("bad batch size");
    for (UsageEvent& e : *events) CheckRoundTrip(std::move(e));
  } else {
    CheckError(std::get<bpmc::RequestError>(batch));
  }

  bpmc::ingestion::UsageEvent decoded;
  if (DecodeEventRecord(input, &decoded) && EncodeEventRecord(decoded) != input) {
    Die("a record that decodes does not re-encode to itself");
  }
  return 0;
}
