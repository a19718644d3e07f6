#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/ids.h"  // kMaxConnectorChars
#include "common/request_error.h"

namespace bpmc::ingestion {

enum class EventStatus { kSuccess, kError };

// Column sizes of the seed's schema (VARCHAR(n) counts characters).
inline constexpr size_t kMaxOperationChars = 100;
inline constexpr size_t kMaxAccountChars = 100;
inline constexpr size_t kMaxErrorTypeChars = 100;
inline constexpr size_t kMaxErrorMessageChars = 4096;
inline constexpr double kMaxDurationMs = 86'400'000.0;  // one day
inline constexpr size_t kMaxBatchEvents = 10'000;

// One connector operation as the platform reports it. Value type.
struct UsageEvent {
  // Canonical lowercase UUID. From the request's `event_id`, or assigned by the
  // server (UUIDv7) when absent; the row's `id` and the idempotency key
  // together with `timestamp_us`.
  std::string id;
  std::string api_key_id;  // UUID of the key that sent it (set after auth)
  std::string connector;
  std::string operation;
  std::string make_account_id;
  int64_t timestamp_us = 0;  // microseconds since the Unix epoch, UTC
  EventStatus status = EventStatus::kSuccess;
  std::string error_type;     // empty when absent
  std::string error_message;  // empty when absent
  std::optional<double> duration_ms;

  bool operator==(const UsageEvent& o) const {
    return id == o.id && api_key_id == o.api_key_id && connector == o.connector &&
           operation == o.operation && make_account_id == o.make_account_id &&
           timestamp_us == o.timestamp_us && status == o.status && error_type == o.error_type &&
           error_message == o.error_message && duration_ms == o.duration_ms;
  }
};

struct ParseOptions {
  int64_t now_us = 0;                             // the server's current time
  int64_t max_future_us = 24LL * 3600 * 1000000;  // timestamp may be at most this far ahead
  int64_t min_timestamp_us = INT64_MIN;           // older events are refused (retention)
  size_t max_batch_events = kMaxBatchEvents;
};

// Parses and validates one event object (the body of POST /v1/connector/usage).
// Unknown keys are ignored; `null` for an optional key means absent;
// `make_account_id` may be a JSON string or integer (Make account ids are
// numeric). `id` is left empty when the body has no `event_id`; `api_key_id`
// is left empty. Pure and thread-safe.
std::variant<UsageEvent, RequestError> ParseUsageEvent(std::string_view body,
                                                       const ParseOptions& options);

// Parses a JSON array of events (POST /v1/connector/usage/batch). All or
// nothing: the first bad item's error names its index, e.g. "[3].timestamp".
// More than `max_batch_events` items is a 413; an empty array is a 400.
std::variant<std::vector<UsageEvent>, RequestError> ParseUsageBatch(std::string_view body,
                                                                    const ParseOptions& options);

// Compact, versioned binary encoding of a complete event (including `id` and
// `api_key_id`) for the spool. Decode returns false on any malformed input.
std::string EncodeEventRecord(const UsageEvent& event);
bool DecodeEventRecord(std::string_view record, UsageEvent* event);

}  // namespace bpmc::ingestion
